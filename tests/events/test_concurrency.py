"""Races on real, separate database connections (one per thread).

A third connection (the test's own) first holds the lock the racers need, and releases it
only once PostgreSQL reports every racer waiting for it, so the racers really run at the
same moment; then the database decides.
"""

import threading
import time

import pytest
from django.db import connection, transaction

from events import services, workflow
from events.models import Case, CaseHistory, CaseNumberCounter
from events.workflow import Action, State
from tests.events.factories import POINT_SW, local

pytestmark = pytest.mark.django_db(transaction=True)


def run_racers(calls):
    """Start one thread per call; return the threads and a list of (result | exception) per call."""
    outcomes: list = [None] * len(calls)

    def run(index, call):
        try:
            outcomes[index] = call()
        except Exception as error:  # the outcome is asserted by the test
            outcomes[index] = error
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    return threads, outcomes


def wait_until_blocked(count: int, timeout: float = 20.0) -> None:
    """Poll pg_stat_activity until `count` backends of this database wait for a lock."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while True:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            (waiting,) = cursor.fetchone()
            if waiting >= count:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"only {waiting} of {count} connections reached the lock")


def test_two_dispatchers_at_the_same_moment_exactly_one_succeeds(world):
    case = services.case_report(
        actor=world.grid_worker,
        source=Case.Source.GRID_WORKER,
        category=world.category,
        location=POINT_SW,
        description="垃圾成堆",
        at=local(2026, 11, 16, 9, 0),
    )
    services.case_file(case=case, actor=world.operator, auto_dispatch=False, at=local(2026, 11, 16, 9, 10))
    second_dispatcher = type(world.dispatcher).objects.create(
        username="dispatcher2", role="dispatcher", street=world.street
    )
    at = local(2026, 11, 16, 9, 20)

    with transaction.atomic():
        Case.objects.select_for_update().get(pk=case.pk)  # hold the row while both racers start
        threads, outcomes = run_racers(
            [
                lambda: services.case_dispatch(
                    case=case.pk, actor=world.dispatcher, department=world.sanitation, at=at
                ),
                lambda: services.case_dispatch(case=case.pk, actor=second_dispatcher, department=world.greening, at=at),
            ]
        )
        wait_until_blocked(2)
    for thread in threads:
        thread.join(timeout=30)

    winners = [o for o in outcomes if isinstance(o, Case)]
    losers = [o for o in outcomes if isinstance(o, workflow.TransitionNotAllowed)]
    assert (len(winners), len(losers)) == (1, 1), outcomes
    assert losers[0].state == State.DISPATCHED
    dispatches = CaseHistory.objects.filter(case=case, action=Action.DISPATCH)
    assert dispatches.count() == 1
    case.refresh_from_db()
    assert case.state == State.DISPATCHED
    assert case.current_department == winners[0].current_department
    assert dispatches.get().department == case.current_department


def test_case_numbers_stay_unique_when_many_reports_arrive_at_once(world):
    racers = 6
    at = local(2026, 11, 16, 9, 0)
    prefix = "E010220261116"

    def report(i):
        return lambda: services.case_report(
            actor=world.grid_worker,
            source=Case.Source.GRID_WORKER,
            category=world.category,
            location=POINT_SW,
            description=f"第{i}处垃圾",
            at=at,
        )

    with transaction.atomic():
        # An uncommitted counter row: every racer's UPSERT has to wait for this transaction.
        CaseNumberCounter.objects.create(prefix=prefix, last=0)
        threads, outcomes = run_racers([report(i) for i in range(racers)])
        wait_until_blocked(racers)
    for thread in threads:
        thread.join(timeout=30)

    assert all(isinstance(o, Case) for o in outcomes), outcomes
    numbers = sorted(o.number for o in outcomes)
    assert numbers == [f"{prefix}{serial:04d}" for serial in range(1, racers + 1)]
    assert sorted(Case.objects.values_list("number", flat=True)) == numbers
    assert CaseNumberCounter.objects.get(prefix=prefix).last == racers
