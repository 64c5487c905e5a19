"""Background jobs on procrastinate (same PostgreSQL). Start a worker with `make worker`.

- case_timer_check: scheduled by the workflow (transaction.on_commit) for the yellow and
  the red moment of every step it starts; records the alert once.
- case_alert_sweep: every 10 minutes, the safety net that raises any alert the scheduled
  jobs missed (worker down, deadlines moved by calendar changes). Idempotent.
- indicator_snapshot_daily: at 01:30 stores the previous day's indicators.
"""

import datetime as dt
import logging

from django.utils import timezone
from procrastinate.contrib.django import app

from events import services
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
