"""The dashboard's incident counts per grid read from the rollups give the answers of events_case."""

import datetime as dt
import itertools

import pytest

from accounts.models import Role
from events import services
from events.models import Case
from events.workflow import State
from maps import selectors, statistics
from maps.access import Scope
from tests.events.factories import CategoryFactory, local
from tests.factories import UserFactory
from tests.maps.helpers import cases, centre

pytestmark = pytest.mark.django_db

PERIODS = [
    (dt.date(2026, 11, 1), dt.date(2026, 11, 30)),  # a whole month
    (dt.date(2026, 11, 2), dt.date(2026, 11, 29)),  # inside one month, both edges mid-month
    (dt.date(2026, 10, 17), dt.date(2026, 11, 16)),  # the last 30 days
    (dt.date(2024, 3, 15), dt.date(2026, 8, 20)),  # partial years and months at both ends
    (dt.date(2021, 11, 16), dt.date(2026, 11, 16)),  # 5 years
    (dt.date(2025, 1, 1), dt.date(2025, 12, 31)),  # a whole year
    (dt.date(2024, 12, 31), dt.date(2026, 1, 1)),  # a year and a day at each end
]


@pytest.fixture
def history(world):
    """120 cases over 2024-2027 in the four grids, every fifth voided or merged, some near midnight."""
    times = itertools.cycle([(0, 5), (9, 0), (23, 55), (16, 30)])
    states = itertools.cycle([State.REPORTED, State.CLOSED, State.VOIDED, State.DISPATCHED, State.FILED])
    made = []
    for n in range(120):
        hour, minute = next(times)
        at = local(2024 + n % 3, 1 + (n * 5) % 12, 1 + (n * 7) % 28, hour, minute)
        made += cases(world.grids[n % 4], 1, state=next(states), reported_at=at, category=world.category)
    # edges of November 2026 and of the years
    for at in (local(2026, 10, 31, 23, 59), local(2026, 11, 1, 0, 0), local(2026, 11, 30, 23, 59)):
        made += cases(world.grid_sw, 1, reported_at=at, category=world.category)
    made += cases(world.grid_sw, 1, reported_at=local(2026, 12, 1, 0, 0), category=world.category)
    main, duplicate = cases(world.grids[1], 2, reported_at=local(2026, 11, 16, 9, 0), category=world.category)
    Case.objects.filter(pk=duplicate.pk).update(state=State.MERGED, merged_into=main, merged_at=local(2026, 11, 16))
    return made


def expected(*, first: dt.date, last: dt.date, cases=None) -> dict[int, int]:
    """Counted in Python from the rows, independently of both product paths."""
    start, end = selectors.CaseFilter(first_day=first, last_day=last).bounds
    counted: dict[int, int] = {}
    for case in cases if cases is not None else Case.objects.all():
        if start <= case.reported_at < end and case.state not in (State.VOIDED, State.MERGED):
            counted[case.grid_id] = counted.get(case.grid_id, 0) + 1
    return counted


@pytest.mark.parametrize(("first", "last"), PERIODS)
def test_rollup_counts_equal_the_direct_count_for_every_period(world, history, first, last):
    for user in (world.planner, world.operator, UserFactory(role=Role.ADMIN)):
        rolled = selectors.incident_counts(user=user, scope=Scope(), first_day=first, last_day=last)
        direct = selectors.incident_counts_direct(user=user, scope=Scope(), first_day=first, last_day=last)
        assert rolled == direct == expected(first=first, last=last)


def test_a_period_starting_and_ending_mid_month_is_exact(world, history):
    november = selectors.incident_counts(
        user=world.planner, scope=Scope(), first_day=dt.date(2026, 11, 1), last_day=dt.date(2026, 11, 30)
    )
    # 31 October 23:59 and 1 December 00:00 lie outside; 1 November 00:00 and 30 November 23:59 inside
    assert november == expected(first=dt.date(2026, 11, 1), last=dt.date(2026, 11, 30))
    in_sw = [
        c
        for c in Case.objects.filter(grid=world.grid_sw, reported_at__gte=local(2026, 11, 1))
        if c.reported_at < local(2026, 12, 1) and c.state not in (State.VOIDED, State.MERGED)
    ]
    assert november[world.grid_sw.pk] == len(in_sw) >= 2
    one_day = selectors.incident_counts(
        user=world.planner, scope=Scope(), first_day=dt.date(2026, 11, 30), last_day=dt.date(2026, 11, 30)
    )
    assert one_day == {world.grid_sw.pk: 1}
    # the merged duplicate of 16 November is not an incident; its main case is
    sixteenth = selectors.incident_counts(
        user=world.planner, scope=Scope(), first_day=dt.date(2026, 11, 16), last_day=dt.date(2026, 11, 16)
    )
    assert (
        sixteenth[world.grids[1].pk]
        == expected(first=dt.date(2026, 11, 16), last=dt.date(2026, 11, 16))[world.grids[1].pk]
    )


def test_users_and_scopes_count_what_they_may_count(world, history):
    """Street and community users read the rollups of their place; department handlers and grid
    workers, whose cases are not a place, are counted from events_case — same answers as before."""
    first, last = dt.date(2024, 3, 15), dt.date(2026, 11, 16)
    community_user = UserFactory(role=Role.OPERATOR, community=world.community)
    for user in (world.operator, community_user, world.handler, world.grid_worker, world.outside_operator):
        for scope in (Scope(), Scope(street_id=world.street.pk), Scope(community_id=world.community.pk)):
            for narrowed in (scope, Scope(grid_ids=frozenset({world.grid_sw.pk, world.grids[0].pk}))):
                rolled = selectors.incident_counts(user=user, scope=narrowed, first_day=first, last_day=last)
                direct = selectors.incident_counts_direct(user=user, scope=narrowed, first_day=first, last_day=last)
                assert rolled == direct, (user.username, narrowed)
    # the other street's operator counts nothing here; a street that is not the user's gives nothing
    assert selectors.incident_counts(user=world.outside_operator, scope=Scope(), first_day=first, last_day=last) == {}
    assert (
        selectors.incident_counts(
            user=world.operator, scope=Scope(street_id=world.other_street.pk), first_day=first, last_day=last
        )
        == {}
    )
    assert selectors.incident_counts(user=world.operator, scope=Scope(), first_day=first, last_day=last) == expected(
        first=first, last=last
    )


def test_the_rollup_path_is_one_query_on_the_rollups_and_the_others_read_cases(
    world, history, django_assert_num_queries
):
    five_years = {"first_day": dt.date(2021, 11, 16), "last_day": dt.date(2026, 11, 16)}
    for user in (world.planner, world.operator):
        with django_assert_num_queries(1) as captured:
            selectors.incident_counts(user=user, scope=Scope(), **five_years)
        sql = captured.captured_queries[0]["sql"]
        assert "events_incident_year" in sql
        assert "events_case" not in sql
    for user, category_id in ((world.grid_worker, None), (world.handler, None), (world.planner, world.category.pk)):
        with django_assert_num_queries(1) as captured:
            selectors.incident_counts(user=user, scope=Scope(), category_id=category_id, **five_years)
        sql = captured.captured_queries[0]["sql"]
        assert "events_case" in sql
        assert "events_incident" not in sql


def test_grid_layer_values_are_the_same_with_and_without_the_rollups(world, history):
    """Only the category filter forces the direct count: with the one category every case has, both agree."""
    first, last = dt.date(2024, 3, 15), dt.date(2026, 11, 16)
    for layer in ("incident_density", "incident_rate"):
        plain = selectors.CaseFilter(first_day=first, last_day=last, state="all")
        by_category = selectors.CaseFilter(first_day=first, last_day=last, state="all", category_id=world.category.pk)
        rolled = selectors.grid_layer_values(user=world.planner, layer=layer, case_filter=plain, day=last)
        direct = selectors.grid_layer_values(user=world.planner, layer=layer, case_filter=by_category, day=last)
        assert rolled["values"] == direct["values"]
        assert rolled["classes"] == direct["classes"]
    density = selectors.grid_layer_values(user=world.planner, layer="incident_density", case_filter=plain, day=last)[
        "values"
    ]
    counted = expected(first=first, last=last)
    assert density == {str(g.pk): selectors._per_km2(counted.get(g.pk, 0), g.area_m2) for g in world.grids}
    # another category: nothing counted, on the direct path
    other = CategoryFactory(minor_code="09")
    empty = selectors.grid_layer_values(
        user=world.planner,
        layer="incident_density",
        case_filter=selectors.CaseFilter(first_day=first, last_day=last, category_id=other.pk),
        day=last,
    )
    assert set(empty["values"].values()) == {0.0}


def test_a_report_and_a_void_show_at_once(world):
    day = dt.date(2026, 11, 16)
    case = services.case_report(
        actor=world.grid_worker,
        source=Case.Source.GRID_WORKER,
        category=world.category,
        location=centre(world.grids[0]),
        description="井盖缺失",
        at=local(2026, 11, 16, 9, 0),
    )
    count = selectors.incident_counts(user=world.operator, scope=Scope(), first_day=day, last_day=day)
    assert count == {world.grids[0].pk: 1}
    services.case_void(case=case, actor=world.operator, reason="已修复", at=local(2026, 11, 16, 9, 30))
    assert selectors.incident_counts(user=world.operator, scope=Scope(), first_day=day, last_day=day) == {}


def test_hot_spots_count_from_the_rollups_as_from_the_cases(world, history):
    first, last = dt.date(2024, 3, 15), dt.date(2026, 11, 16)
    rolled = statistics.hot_spots(user=world.planner, scope=Scope(), first_day=first, last_day=last, permutations=99)
    direct = statistics.hot_spots(
        user=world.planner,
        scope=Scope(),
        first_day=first,
        last_day=last,
        permutations=99,
        category_id=world.category.pk,
    )
    assert [spot.as_row() for spot in rolled] == [spot.as_row() for spot in direct]
    assert {spot.as_row()["grid_id"]: spot.as_row()["incidents"] for spot in rolled} == {
        g.pk: expected(first=first, last=last).get(g.pk, 0) for g in world.grids
    }


def test_the_database_counts_the_same_states_as_the_dashboard(db):
    """The triggers' events_incident_counts and maps.selectors.NOT_INCIDENTS must not drift apart."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT s, events_incident_counts(s) FROM unnest(%s::text[]) AS s", [State.values])
        counted = dict(cursor.fetchall())
    assert counted == {state: state not in selectors.NOT_INCIDENTS for state in State.values}
    assert {state for state, counts in counted.items() if not counts} == {State.VOIDED, State.MERGED}
