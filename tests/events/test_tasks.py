"""Timer alerts (once per level and step), the daily snapshot, and the real procrastinate queue."""

import datetime as dt

import pytest
from django.utils import timezone
from procrastinate.contrib.django import app
from procrastinate.contrib.django.models import ProcrastinateJob

from events import services, tasks
from events.models import Case, CaseAlert, CaseHistory, IndicatorSnapshot
from events.workflow import Action, State
from tests.events.factories import POINT_SW, jpeg, local


def dispatched_case(world, at):
    case = services.case_report(
        actor=world.grid_worker,
        source=Case.Source.GRID_WORKER,
        category=world.category,
        location=POINT_SW,
        description="垃圾",
        at=at,
    )
    return services.case_file(case=case, actor=world.operator, at=at)


@pytest.mark.django_db
def test_alerts_are_recorded_once_per_level_and_step(world):
    # Dispatched Monday 10:00: 4 working hours -> deadline 16:00, yellow from 15:12
    case = dispatched_case(world, local(2026, 11, 16, 10, 0))
    assert (case.warn_at, case.deadline) == (local(2026, 11, 16, 15, 12), local(2026, 11, 16, 16, 0))
    started = case.step_started_at

    assert services.case_alert_raise(case_id=case.pk, level="yellow", at=local(2026, 11, 16, 15, 0)) is None
    yellow = services.case_alert_raise(case_id=case.pk, level="yellow", at=local(2026, 11, 16, 15, 12))
    assert (yellow.action, yellow.from_state, yellow.to_state, yellow.actor, yellow.actor_role) == (
        Action.ALERT,
        State.DISPATCHED,
        State.DISPATCHED,
        None,
        "system",
    )
    assert yellow.payload == {"level": "yellow", "step": "handle"}
    assert yellow.comment == "处置环节黄灯预警"
    assert yellow.department == world.sanitation
    # Re-running (a retried job, the sweep) changes nothing
    assert services.case_alert_raise(case_id=case.pk, level="yellow", at=local(2026, 11, 16, 15, 30)) is None
    assert services.case_alert_raise(case_id=case.pk, level="red", at=local(2026, 11, 16, 16, 0)) is None
    assert services.case_alert_raise(case_id=case.pk, level="red", at=local(2026, 11, 16, 16, 1)) is not None
    assert services.case_alerts_sweep(at=local(2026, 11, 16, 17, 0)) == 0
    assert list(CaseAlert.objects.filter(case=case).values_list("level", "step", "step_started_at")) == [
        ("red", "handle", started),
        ("yellow", "handle", started),
    ]
    assert CaseHistory.objects.filter(case=case, action=Action.ALERT).count() == 2
    case.refresh_from_db()
    assert case.state == State.DISPATCHED  # alerts never move the case

    # A job scheduled for the step that has ended does nothing
    services.case_handle(
        case=case, actor=world.handler, comment="已清运", photos=[jpeg()], at=local(2026, 11, 16, 17, 0)
    )
    assert (
        services.case_alert_raise(case_id=case.pk, level="red", step_started_at=started, at=local(2026, 11, 18, 9, 0))
        is None
    )
    assert CaseAlert.objects.filter(case=case).count() == 2


@pytest.mark.django_db
def test_sweep_raises_what_is_due_and_nothing_twice(world):
    early = dispatched_case(world, local(2026, 11, 16, 9, 0))  # deadline 15:00, yellow 14:12
    later = dispatched_case(world, local(2026, 11, 16, 14, 0))  # deadline Tue 09:00, yellow Mon 17:12
    assert services.case_alerts_sweep(at=local(2026, 11, 16, 14, 30)) == 1  # early: yellow
    assert services.case_alerts_sweep(at=local(2026, 11, 16, 15, 30)) == 1  # early: red
    assert services.case_alerts_sweep(at=local(2026, 11, 16, 15, 30)) == 0
    assert set(CaseAlert.objects.values_list("case", "level")) == {(early.pk, "yellow"), (early.pk, "red")}
    assert services.case_alerts_sweep(at=local(2026, 11, 17, 10, 0)) == 2  # later: yellow and red
    assert CaseAlert.objects.filter(case=later).count() == 2


@pytest.mark.django_db
def test_starting_a_step_queues_its_timer_jobs_on_commit(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        case = dispatched_case(world, local(2026, 11, 16, 10, 0))
    # report (立案 step), file (派遣 step), automatic dispatch (处置 step): three steps, two jobs each
    assert len(callbacks) == 3
    jobs = ProcrastinateJob.objects.filter(task_name="events.case_timer_check", args__case_id=case.pk)
    assert jobs.count() == 6
    handle_jobs = sorted(
        (job.scheduled_at, job.args["level"])
        for job in jobs
        if job.args["step_started_at"] == case.step_started_at.isoformat()
    )
    # report, file and dispatch share the moment here; the 处置 step's jobs are the latest ones
    assert handle_jobs[-2:] == [
        (local(2026, 11, 16, 15, 12), "yellow"),
        (local(2026, 11, 16, 16, 0, 1), "red"),
    ]
    assert {job.status for job in jobs} == {"todo"}


@pytest.mark.django_db
def test_nothing_is_queued_when_the_transition_is_refused(world, django_capture_on_commit_callbacks):
    case = dispatched_case(world, local(2026, 11, 16, 10, 0))
    before = ProcrastinateJob.objects.count()
    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(Exception):  # noqa: B017
        services.case_file(case=case, actor=world.operator, at=local(2026, 11, 16, 11, 0))
    assert callbacks == []
    assert ProcrastinateJob.objects.count() == before


@pytest.mark.django_db
def test_daily_snapshot_is_stored_once_per_day(world):
    case = dispatched_case(world, local(2026, 11, 16, 10, 0))
    first = services.indicator_snapshot_take(day=dt.date(2026, 11, 16))
    assert sorted(s.kind for s in first) == sorted(
        ["street", "community", "grid", "department", "grid_worker", "dispatcher", "operator"]
    )
    street = IndicatorSnapshot.objects.get(day=dt.date(2026, 11, 16), kind="street")
    assert street.rows[0]["filed"] == 1 and street.rows[0]["code"] == "500104001"
    services.case_handle(
        case=case, actor=world.handler, comment="已清运", photos=[jpeg()], at=local(2026, 11, 16, 11, 0)
    )
    services.indicator_snapshot_take(day=dt.date(2026, 11, 16))
    assert IndicatorSnapshot.objects.filter(day=dt.date(2026, 11, 16)).count() == 7
    department = IndicatorSnapshot.objects.get(day=dt.date(2026, 11, 16), kind="department").rows[0]
    assert (department["handled"], department["on_time_handle_rate"]) == (1, "100.00")


@pytest.mark.django_db
def test_periodic_task_functions_run_directly(world):
    now = timezone.now()
    case = dispatched_case(world, now - dt.timedelta(days=10))  # long overdue by now
    assert tasks.case_alert_sweep(int(now.timestamp())) == 2
    assert (
        tasks.case_timer_check(case_id=case.pk, step_started_at=case.step_started_at.isoformat(), level="red") is False
    )  # already recorded by the sweep
    assert tasks.indicator_snapshot_daily(int(now.timestamp())) == 7
    assert IndicatorSnapshot.objects.filter(day=timezone.localdate(now) - dt.timedelta(days=1)).count() == 7


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_queued_alert_jobs(world):
    # A step that started long ago: both of its jobs are due as soon as they are queued
    started = timezone.now() - dt.timedelta(days=10)
    case = dispatched_case(world, started)  # transaction=True: on_commit really queues the jobs
    due_jobs = ProcrastinateJob.objects.filter(task_name="events.case_timer_check", args__case_id=case.pk)
    assert due_jobs.count() == 6

    # As `manage.py procrastinate worker` does: the worker talks to PostgreSQL through psycopg
    with app.replace_connector(app.connector.get_worker_connector()):
        app.run_worker(wait=False, install_signal_handlers=False, listen_notify=False)

    assert set(due_jobs.values_list("status", flat=True)) == {"succeeded"}
    # Only the running 处置 step alerts; the jobs of the finished 立案/派遣 steps did nothing
    assert set(CaseAlert.objects.filter(case=case).values_list("step", "level")) == {
        ("handle", "yellow"),
        ("handle", "red"),
    }
    assert CaseHistory.objects.filter(case=case, action=Action.ALERT).count() == 2


def test_the_worker_defers_the_resilience_tasks_periodically():
    """R1 and R2: the stalled-job retry and the photo sweep run without anyone deferring them."""
    crons = {task.task.name: task.cron for task in app.periodic_registry.periodic_tasks.values()}
    assert crons["events.stalled_jobs_retry"] == "*/5 * * * *"
    assert crons["events.case_photo_orphans_sweep"] == "17 * * * *"
