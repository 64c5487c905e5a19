"""The job worker killed (kill -9) in the middle of a job: the job runs again and its effect
happens once.

A real `manage.py procrastinate worker` runs a timer-alert job (events.case_timer_check)
that waits on the case's row lock, held by this test. The worker is killed while it waits;
its job stays "doing". The periodic task events.stalled_jobs_retry (get_stalled_jobs +
retry_job) puts it back, once; a restarted worker runs it; the alert is recorded exactly once.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.utils import timezone
from procrastinate.contrib.django.models import ProcrastinateJob

from accounts.models import Role
from events import services, tasks
from events.models import Case, CaseAlert, CaseHistory
from events.workflow import Action
from geodata.models import GridAssignment
from tests.events.factories import POINT_SW, CategoryFactory
from tests.factories import UserFactory, tiled_district
from tests.security.conftest import database_url

ROOT = Path(__file__).resolve().parents[2]
QUEUE = "security-killed-worker"
WAIT_SECONDS = 60

pytestmark = pytest.mark.django_db(transaction=True)


def _start_worker(name: str, log: Path) -> subprocess.Popen:
    """`manage.py procrastinate worker` on this test's queue only, against the test database."""
    env = {**os.environ, "GRIDMGMT_MODE": "test", "DATABASE_URL": database_url(), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "procrastinate",
            "worker",
            f"--queues={QUEUE}",
            f"--name={name}",
            "--concurrency=1",
            "--one-shot",
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def _waiting_on(watcher: psycopg.Connection, holder: psycopg.Connection, worker: subprocess.Popen, known=()) -> int:
    """The pid of a backend, other than `known`, waiting on `holder`'s lock (polls; fails if the worker exits)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        # A second waiter on a row lock queues behind the first one: blocked by it, not by the holder.
        blockers = [holder.info.backend_pid, *known]
        pids = {
            pid
            for (pid,) in watcher.execute(
                "SELECT pid FROM pg_stat_activity WHERE pg_blocking_pids(pid) && %s::int[]", [blockers]
            ).fetchall()
        } - set(known)
        if pids:
            assert len(pids) == 1
            return pids.pop()
        try:
            code = worker.wait(timeout=0.05)  # the poll interval; also notices a worker that stopped
        except subprocess.TimeoutExpired:
            continue
        raise AssertionError(f"the worker exited ({code}) without waiting on the lock")
    raise AssertionError("no worker waited on the lock")


@pytest.fixture
def overdue_case():
    """A grid worker's report from ten days ago, still waiting for 立案: its step is long overdue (red)."""
    district = tiled_district()
    worker = UserFactory(username="worker", role=Role.GRID_WORKER)
    GridAssignment.objects.create(grid=district["grids"][2], worker=worker, is_primary=True)
    case = services.case_report(
        actor=worker,
        source=Case.Source.GRID_WORKER,
        category=CategoryFactory(),
        location=POINT_SW,
        description="垃圾",
        at=timezone.now() - dt.timedelta(days=10),
    )
    return case


def _forget_jobs() -> None:
    # procrastinate's tables are not flushed between tests (its models are unmanaged)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM procrastinate_jobs WHERE queue_name = %s", [QUEUE])


@pytest.fixture
def queue():
    _forget_jobs()
    yield QUEUE
    _forget_jobs()


def _gone(watcher: psycopg.Connection, pid: int) -> bool:
    """Whether backend `pid` has ended (polls: a backend whose client vanished exits on its own)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if watcher.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone() == (0,):
            return True
        watcher.execute("SELECT pg_stat_clear_snapshot()")
    return False


def test_a_job_killed_mid_run_is_retried_and_its_alert_is_recorded_once(overdue_case, queue, tmp_path):
    case = overdue_case
    started = case.step_started_at.isoformat()
    job_id = tasks.case_timer_check.configure(queue=queue).defer(case_id=case.pk, step_started_at=started, level="red")
    workers: list[subprocess.Popen] = []
    try:
        with (
            psycopg.connect(database_url()) as holder,
            psycopg.connect(database_url(), autocommit=True) as watcher,
        ):
            holder.execute("SELECT id FROM events_case WHERE id = %s FOR UPDATE", [case.pk])

            # 1. A worker takes the job, which waits on the case's row lock
            first = _start_worker("worker-1", tmp_path / "worker-1.log")
            workers.append(first)
            orphan = _waiting_on(watcher, holder, first)
            job = ProcrastinateJob.objects.get(pk=job_id)
            assert (job.status, job.attempts) == ("doing", 0)
            killed_worker_id = job.worker_id
            assert killed_worker_id is not None

            # 2. kill -9 in the middle of the job: nothing recorded, the job stays "doing"
            os.kill(first.pid, signal.SIGKILL)
            assert first.wait(timeout=WAIT_SECONDS) == -signal.SIGKILL
            job.refresh_from_db()
            assert (job.status, job.worker_id) == ("doing", killed_worker_id)
            assert CaseAlert.objects.filter(case=case).count() == 0
            assert CaseHistory.objects.filter(case=case, action=Action.ALERT).count() == 0

            # 3. The periodic task events.stalled_jobs_retry puts it back. The killed worker beats
            # no more; the threshold of 0 s (production: 30 s) is sound here because no live
            # worker holds a job of this queue.
            retry = async_to_sync(tasks.stalled_jobs_retry.func)
            assert retry(timestamp=int(time.time()), seconds_since_heartbeat=0, queue=queue) == [job_id]
            job.refresh_from_db()
            assert (job.status, job.attempts) == ("todo", 1)
            assert retry(timestamp=int(time.time()), seconds_since_heartbeat=0, queue=queue) == []  # once only
            job.refresh_from_db()
            assert (job.status, job.attempts) == ("todo", 1)

            # 4. A restarted worker runs it again; it too waits on the lock, behind the killed
            # worker's orphaned backend. Releasing the lock lets the orphan find its client gone
            # (its transaction is rolled back) and the new worker finish the job.
            second = _start_worker("worker-2", tmp_path / "worker-2.log")
            workers.append(second)
            _waiting_on(watcher, holder, second, known={orphan})
            holder.rollback()
            assert second.wait(timeout=WAIT_SECONDS) == 0, (tmp_path / "worker-2.log").read_text()
            assert _gone(watcher, orphan)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait(timeout=WAIT_SECONDS)

    job.refresh_from_db()
    assert (job.status, job.attempts) == ("succeeded", 2)  # the killed attempt and the one that ran
    assert job.worker_id != killed_worker_id  # run by the restarted worker
    [alert] = CaseAlert.objects.filter(case=case)
    assert (alert.level, alert.step, alert.step_started_at) == ("red", "file", case.step_started_at)
    assert CaseHistory.objects.filter(case=case, action=Action.ALERT).count() == 1
    # The job run once more (a second retry, the sweep) records nothing more
    assert tasks.case_timer_check(case_id=case.pk, step_started_at=started, level="red") is False
    assert CaseAlert.objects.filter(case=case).count() == 1
    assert CaseHistory.objects.filter(case=case, action=Action.ALERT).count() == 1
