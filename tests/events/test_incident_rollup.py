"""Incident rollups (events.rollups): kept exact by the triggers of migration 0004 under every write."""

import datetime as dt
import itertools
import zoneinfo
from collections import Counter

import pytest
from django.db import connection, transaction
from django.db.models import Count
from django.db.models.functions import TruncDate

from events import rollups, services
from events.models import Case, IncidentDay, IncidentMonth, IncidentYear
from events.workflow import State
from tests.events.factories import POINT_NW, POINT_SW, CaseFactory, local

pytestmark = pytest.mark.django_db
SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")


def report(world, at, point=POINT_SW):
    return services.case_report(
        actor=world.grid_worker,
        source=Case.Source.GRID_WORKER,
        category=world.category,
        location=point,
        description="垃圾成堆",
        at=at,
    )


def direct_days() -> dict[tuple, int]:
    """Incidents per (local day, grid, community, street), counted from events_case by the ORM."""
    rows = (
        Case.objects.exclude(state__in=[State.VOIDED, State.MERGED])
        .annotate(day=TruncDate("reported_at", tzinfo=SHANGHAI))
        .values("day", "grid_id", "community_id", "street_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {(r["day"], r["grid_id"], r["community_id"], r["street_id"]): r["n"] for r in rows}


def rolled_up(model, field: str) -> dict[tuple, int]:
    return {
        (r[field], r["grid_id"], r["community_id"], r["street_id"]): r["incidents"]
        for r in model.objects.exclude(incidents=0).values(field, "grid_id", "community_id", "street_id", "incidents")
    }


def coarser(days: dict[tuple, int], to: str) -> dict[tuple, int]:
    out: Counter = Counter()
    for (day, *place), n in days.items():
        period = day.replace(day=1) if to == "month" else day.replace(month=1, day=1)
        out[(period, *place)] += n
    return {key: n for key, n in out.items() if n}


def assert_exact() -> dict[tuple, int]:
    """Every rollup table equals the direct count, and no rollup row is negative."""
    days = direct_days()
    assert rolled_up(IncidentDay, "day") == days
    assert rolled_up(IncidentMonth, "month") == coarser(days, "month")
    assert rolled_up(IncidentYear, "year") == coarser(days, "year")
    for model in (IncidentDay, IncidentMonth, IncidentYear):
        assert not model.objects.filter(incidents__lt=0).exists()
    return days


def test_reports_count_on_their_local_day_in_their_grid(world):
    grid_sw, grid_nw = world.grid_sw, world.grids[0]
    place = (world.community.pk, world.street.pk)
    report(world, local(2026, 11, 16, 9, 0))
    report(world, local(2026, 11, 16, 23, 59))
    report(world, local(2026, 11, 17, 0, 10))  # 16 November in UTC: counted on the 17th
    report(world, local(2026, 12, 31, 23, 30), point=POINT_NW)
    report(world, local(2027, 1, 1, 0, 30), point=POINT_NW)

    days = assert_exact()
    assert days == {
        (dt.date(2026, 11, 16), grid_sw.pk, *place): 2,
        (dt.date(2026, 11, 17), grid_sw.pk, *place): 1,
        (dt.date(2026, 12, 31), grid_nw.pk, *place): 1,
        (dt.date(2027, 1, 1), grid_nw.pk, *place): 1,
    }
    assert rolled_up(IncidentMonth, "month") == {
        (dt.date(2026, 11, 1), grid_sw.pk, *place): 3,
        (dt.date(2026, 12, 1), grid_nw.pk, *place): 1,
        (dt.date(2027, 1, 1), grid_nw.pk, *place): 1,
    }
    assert rolled_up(IncidentYear, "year") == {
        (dt.date(2026, 1, 1), grid_sw.pk, *place): 3,
        (dt.date(2026, 1, 1), grid_nw.pk, *place): 1,
        (dt.date(2027, 1, 1), grid_nw.pk, *place): 1,
    }


def test_void_and_merge_take_cases_out_and_other_steps_change_nothing(world):
    keep = report(world, local(2026, 11, 16, 9, 0))
    voided = report(world, local(2026, 11, 16, 9, 10))
    duplicate = report(world, local(2026, 11, 16, 9, 20))
    assert sum(assert_exact().values()) == 3

    services.case_void(case=voided, actor=world.operator, reason="非城市管理问题", at=local(2026, 11, 16, 9, 40))
    services.case_merge(duplicate=duplicate, into=keep, actor=world.operator, at=local(2026, 11, 16, 9, 50))
    days = assert_exact()
    assert days == {(dt.date(2026, 11, 16), world.grid_sw.pk, world.community.pk, world.street.pk): 1}

    before = list(IncidentDay.objects.order_by("pk").values_list("pk", "incidents"))
    services.case_file(case=keep, actor=world.operator, at=local(2026, 11, 16, 10, 0))  # and dispatches
    keep.refresh_from_db()
    assert keep.state == State.DISPATCHED
    assert list(IncidentDay.objects.order_by("pk").values_list("pk", "incidents")) == before


def test_re_attributing_cases_to_another_grid_moves_their_counts(world):
    """Grid redraws keep cases in their grid (geodata.grid_redraw); any SQL that moves them is counted too."""
    cases = [report(world, local(2026, 11, 16, 9, minute)) for minute in range(4)]
    new_grid = world.grids[1]
    moved = Case.objects.filter(pk__in=[c.pk for c in cases[:3]]).update(grid=new_grid)
    assert moved == 3
    days = assert_exact()
    assert days == {
        (dt.date(2026, 11, 16), world.grid_sw.pk, world.community.pk, world.street.pk): 1,
        (dt.date(2026, 11, 16), new_grid.pk, world.community.pk, world.street.pk): 3,
    }
    # a corrected report time moves the count to another day, month and year
    Case.objects.filter(pk=cases[3].pk).update(reported_at=local(2025, 12, 31, 20, 0))
    assert assert_exact()[(dt.date(2025, 12, 31), world.grid_sw.pk, world.community.pk, world.street.pk)] == 1


def test_a_rolled_back_report_leaves_no_count(world):
    report(world, local(2026, 11, 16, 9, 0))
    before = assert_exact()

    with pytest.raises(RuntimeError), transaction.atomic():
        report(world, local(2026, 11, 16, 9, 5))
        report(world, local(2026, 11, 18, 9, 5), point=POINT_NW)
        raise RuntimeError("the caller fails after the reports")

    assert assert_exact() == before
    assert not IncidentDay.objects.filter(day=dt.date(2026, 11, 18)).exists()


def test_bulk_loads_and_deletes_are_counted_set_based(world):
    states = itertools.cycle([State.REPORTED, State.CLOSED, State.VOIDED, State.VOIDED, State.DISPATCHED])
    Case.objects.bulk_create(
        [
            CaseFactory.build(
                grid=world.grids[i % 4],
                category=world.category,
                state=next(states),
                reported_at=local(2024 + i % 3, 1 + i % 12, 1 + i % 28, i % 24, 0),
            )
            for i in range(200)
        ]
    )
    days = assert_exact()
    assert sum(days.values()) == 120  # 3 of every 5 states are incidents

    Case.objects.filter(reported_at__year=2024).delete()  # cases without history may be deleted
    days = assert_exact()
    assert sum(days.values()) == Case.objects.exclude(state__in=[State.VOIDED, State.MERGED]).count() > 0


def test_rebuild_gives_the_tables_the_triggers_keep(world):
    for minute in range(3):
        report(world, local(2026, 11, 16, 9, minute))
    services.case_void(case=Case.objects.first(), actor=world.operator, reason="重复", at=local(2026, 11, 16, 10, 0))
    kept = (rolled_up(IncidentDay, "day"), rolled_up(IncidentMonth, "month"), rolled_up(IncidentYear, "year"))
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM events_incident_year")  # drift, as a load with triggers off would leave

    assert rollups.incident_rollups_rebuild() == len(kept[0])
    assert (rolled_up(IncidentDay, "day"), rolled_up(IncidentMonth, "month"), rolled_up(IncidentYear, "year")) == kept
    assert_exact()


# --- periods as days, months and years -----------------------------------------------------


def _days_of(pieces) -> Counter:
    """How often each day is counted by the signed pieces."""
    counted: Counter = Counter()
    for level, start, end, sign in pieces:
        period = start
        while period < end:
            if level == "day":
                following = period + dt.timedelta(days=1)
            elif level == "month":
                following = rollups._next_month(period)
            else:
                following = period.replace(year=period.year + 1)
            day = period
            while day < following:
                counted[day] += sign
                day += dt.timedelta(days=1)
            period = following
    return Counter({day: n for day, n in counted.items() if n})


@pytest.mark.parametrize(
    ("first", "last"),
    [
        (dt.date(2026, 11, 16), dt.date(2026, 11, 16)),  # one day
        (dt.date(2026, 11, 3), dt.date(2026, 11, 28)),  # inside one month
        (dt.date(2026, 11, 1), dt.date(2026, 11, 30)),  # a whole month
        (dt.date(2026, 10, 17), dt.date(2026, 11, 16)),  # 30 days over a month's end
        (dt.date(2026, 1, 1), dt.date(2026, 12, 31)),  # a whole year
        (dt.date(2021, 11, 16), dt.date(2026, 11, 16)),  # 5 years, mid-month at both ends
        (dt.date(2021, 1, 3), dt.date(2026, 12, 29)),  # edges just inside years
        (dt.date(2020, 12, 30), dt.date(2027, 1, 2)),  # edges just outside years
        (dt.date(2024, 2, 29), dt.date(2025, 3, 1)),  # leap day
        (dt.date(2025, 6, 30), dt.date(2025, 7, 1)),  # two days over a month's end
    ],
)
def test_period_pieces_count_each_day_of_the_period_exactly_once(first, last):
    pieces = rollups.period_pieces(first_day=first, last_day=last)
    wanted = Counter({first + dt.timedelta(days=n): 1 for n in range((last - first).days + 1)})
    assert _days_of(pieces) == wanted
    assert len(pieces) <= 5
    # whatever the length: at most about half a month of days at each edge, and a year of months
    for level, start, end, _ in pieces:
        if level == "day" and len(pieces) > 1:
            assert (end - start).days <= 16
        if level == "month":
            assert (end.year - start.year) * 12 + end.month - start.month <= 12


@pytest.mark.django_db(transaction=True)
def test_concurrent_writes_in_one_grid_and_day_lose_no_count(world):
    """Racers on their own connections wait for the same rollup row; each adds its own count."""
    from tests.events.test_concurrency import run_racers, wait_until_blocked

    first = report(world, local(2026, 11, 16, 9, 0))
    second = report(world, local(2026, 11, 16, 9, 1))
    day = dt.date(2026, 11, 16)
    with transaction.atomic():
        IncidentDay.objects.select_for_update().get(day=day, grid=world.grid_sw)  # hold the row the racers need
        threads, outcomes = run_racers(
            [
                lambda: report(world, local(2026, 11, 16, 10, 0)),
                lambda: CaseFactory(grid=world.grid_sw, category=world.category, reported_at=local(2026, 11, 16, 11)),
                lambda: services.case_void(
                    case=first.pk, actor=world.operator, reason="重复", at=local(2026, 11, 16, 12, 0)
                ),
            ]
        )
        wait_until_blocked(3)
    for thread in threads:
        thread.join(timeout=30)
    assert not [o for o in outcomes if isinstance(o, Exception)]
    assert assert_exact() == {(day, world.grid_sw.pk, world.community.pk, world.street.pk): 3}
    assert Case.objects.get(pk=second.pk).state == State.REPORTED
