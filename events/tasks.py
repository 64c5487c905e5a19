"""Background jobs on procrastinate (same PostgreSQL). Start a worker with `make worker`.

- case_timer_check: scheduled by the workflow (transaction.on_commit) for the yellow and
  the red moment of every step it starts; records the alert once.
- case_alert_sweep: every 10 minutes, the safety net that raises any alert the scheduled
  jobs missed (worker down, deadlines moved by calendar changes). Idempotent.
- indicator_snapshot_daily: at 01:30 stores the previous day's indicators.
- stalled_jobs_retry: every 5 minutes puts back the jobs of workers that died mid-job
  (killed, out of memory, machine lost): procrastinate leaves them "doing" for ever.
  Every job here is idempotent, so running one again is safe.
- case_photo_orphans_sweep: every hour removes photo files that no case photo row names
  (a report whose transaction failed after its files were written), when old enough.
"""

import datetime as dt
import logging

from django.utils import timezone
from procrastinate.contrib.django import app
from procrastinate.exceptions import ConnectorException

from events import photos, services
from events.calendar import calendar_coverage

logger = logging.getLogger(__name__)


@app.task(name="events.case_timer_check")
def case_timer_check(*, case_id: int, step_started_at: str, level: str) -> bool:
    history = services.case_alert_raise(
        case_id=case_id, level=level, step_started_at=dt.datetime.fromisoformat(step_started_at)
    )
    return history is not None


@app.periodic(cron="*/10 * * * *")
@app.task(name="events.case_alert_sweep", queueing_lock="events.case_alert_sweep")
def case_alert_sweep(timestamp: int) -> int:
    # The real time, not the scheduled one: a late run must see what is overdue now.
    return services.case_alerts_sweep()


@app.periodic(cron="30 1 * * *")
@app.task(name="events.indicator_snapshot_daily", queueing_lock="events.indicator_snapshot_daily")
def indicator_snapshot_daily(timestamp: int) -> int:
    today = timezone.localdate(dt.datetime.fromtimestamp(timestamp, tz=dt.UTC))
    snapshots = services.indicator_snapshot_take(day=today - dt.timedelta(days=1))
    for coverage in calendar_coverage(years=[today.year, today.year + 1]):
        if coverage.needs_attention:
            logger.warning(coverage.message)
    return len(snapshots)


# A worker beats every 10 s (procrastinate's update_heartbeat_interval); three missed beats
# mean it is gone. Its jobs are retried, never those of a live worker, however long they run.
STALLED_AFTER_SECONDS = 30


@app.periodic(cron="*/5 * * * *")
# No `lock`: a run killed mid-way would hold it and block every later run, the very runs that
# would put it back. Two runs at once are harmless: a job is put back by one of them only.
@app.task(name="events.stalled_jobs_retry", queueing_lock="events.stalled_jobs_retry")
async def stalled_jobs_retry(
    timestamp: int, seconds_since_heartbeat: float = STALLED_AFTER_SECONDS, queue: str | None = None
) -> list[int]:
    """Put the jobs of dead workers (of every queue, or of `queue`) back in the queue (status
    todo, attempts + 1, a "deferred_for_retry" event); returns their ids."""
    stalled = await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=seconds_since_heartbeat, queue=queue)
    retried = []
    for job in stalled:
        try:
            await app.job_manager.retry_job(job)
        except ConnectorException:  # no longer "doing": another run put it back first
            continue
        assert job.id is not None
        retried.append(job.id)
    if retried:
        logger.warning("re-queued %d job(s) of stopped workers: %s", len(retried), retried)
    return retried


@app.periodic(cron="17 * * * *")
@app.task(name="events.case_photo_orphans_sweep", queueing_lock="events.case_photo_orphans_sweep")
def case_photo_orphans_sweep(timestamp: int) -> int:
    return photos.photo_orphans_sweep()
