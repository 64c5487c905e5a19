"""综合评价 read from copied columns (docs/performance.md §7) and limited to the viewer's scope (L3).

The first test keeps the former formulation (漏报 by a correlated subquery over the merged
reports, the history joined to cases for the place) as the reference, and checks that the
queries on the copied columns give exactly its tables on a varied dataset.
"""

import datetime as dt
from typing import Any

import pytest
from django.contrib.gis.geos import MultiPolygon, Point, Polygon
from django.db.models import Count, OuterRef, Q, Subquery

from accounts.models import Role
from events import indicators, services
from events.indicators import DISTRICT, IndicatorScope, indicator_scope_for
from events.models import Case, CaseHistory
from geodata.models import Community, Grid, GridAssignment
from tests.events.factories import POINT_NW, POINT_SW, jpeg, local
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

OTHER_BOX = (106.5, 29.5, 106.51, 29.51)  # the world's other street
POINT_OTHER = Point(106.505, 29.505, srid=4326)
POINT_NE = Point(POINT_NW.x + 0.002, POINT_NW.y, srid=4326)


def _old_region_indicators(*, start, end, level, as_of) -> list[dict[str, Any]]:
    """The formulation before the copied columns: the reference."""
    group = f"{indicators.LEVELS[level]}_id"
    rows: dict[Any, dict[str, Any]] = {}
    closing = indicators._closing_counts(Case.objects.all(), group, start=start, end=end, as_of=as_of)
    indicators._collect(rows, closing, group)
    earliest_source = (
        Case.objects.filter(Q(pk=OuterRef("pk")) | Q(merged_into=OuterRef("pk")))
        .order_by("reported_at", "id")
        .values("source")[:1]
    )
    filed = (
        Case.objects.filter(filed_at__gte=start, filed_at__lt=end)
        .annotate(earliest=Subquery(earliest_source))
        .values(group)
        .annotate(
            filed=Count("id"),
            missed=Count("id", filter=Q(earliest__in=[Case.Source.HOTLINE, Case.Source.PUBLIC])),
        )
        .order_by()
    )
    indicators._collect(rows, filed, group)
    history = CaseHistory.objects.filter(created_at__gte=start, created_at__lt=end)
    indicators._collect(rows, indicators._handling_counts(history, f"case__{group}"), f"case__{group}")
    model = Case._meta.get_field(indicators.LEVELS[level]).related_model
    names = {obj.pk: (obj.code, obj.name) for obj in model._default_manager.filter(pk__in=list(rows))}
    return indicators._finish(rows, names, "region")


@pytest.fixture
def dataset(world):
    """Cases in the four grids of the world's street and in a grid of the other street, from
    every source, with merges (an earlier hotline report merged into a later grid-worker case,
    a chain of two merges), voids, reworks, a 回退, a deferral and open overdue cases."""
    w = world
    other_community = Community.objects.create(
        code="500104002001", name="另一社区", street=w.other_street, geom=MultiPolygon(Polygon.from_bbox(OTHER_BOX))
    )
    other_grid = Grid.objects.create(
        code="500104002001001",
        name="另一网格",
        community=other_community,
        geom=Polygon.from_bbox(OTHER_BOX),
        valid_from=dt.date(2020, 1, 1),
    )
    other_worker = UserFactory(username="worker_other", role=Role.GRID_WORKER)
    GridAssignment.objects.create(grid=other_grid, worker=other_worker, is_primary=True)
    other_shift = UserFactory(username="shift_other", role=Role.SHIFT_LEADER, street=w.other_street)
    GridAssignment.objects.create(grid=w.grids[0], worker=w.grid_worker)
    GridAssignment.objects.create(grid=w.grids[1], worker=w.grid_worker)

    def report(at, point, source=Case.Source.GRID_WORKER, *, outside=False):
        if source == Case.Source.GRID_WORKER:
            actor = other_worker if outside else w.grid_worker
        elif source == Case.Source.PUBLIC:
            actor = None
        else:
            actor = w.outside_operator if outside else w.operator
        return services.case_report(
            actor=actor, source=source, category=w.category, location=point, description="问题", at=at
        )

    def finish(case, day, *, rework=False, outside=False, close=True):
        worker = other_worker if outside else w.grid_worker
        services.case_handle(case=case, actor=w.handler, comment="处置", photos=[jpeg()], at=local(2026, 11, day, 11))
        if rework:
            services.case_check(
                case=case, actor=worker, passed=False, comment="未完成", photos=[jpeg()], at=local(2026, 11, day, 14)
            )
            services.case_handle(
                case=case, actor=w.handler, comment="再处置", photos=[jpeg()], at=local(2026, 11, day, 16)
            )
        if close:
            services.case_check(case=case, actor=worker, passed=True, photos=[jpeg()], at=local(2026, 11, day + 1, 9))
            services.case_close(
                case=case, actor=other_shift if outside else w.shift_leader, at=local(2026, 11, day + 1, 10)
            )

    points = [POINT_SW, POINT_NW, POINT_NE, POINT_SW]
    sources = [Case.Source.GRID_WORKER, Case.Source.HOTLINE, Case.Source.PUBLIC, Case.Source.VIDEO]
    cases = []
    for n in range(8):
        day = 16 + n % 3
        case = report(local(2026, 11, day, 9, n), points[n % 4], sources[n % 4])
        if case.source in (Case.Source.HOTLINE, Case.Source.PUBLIC):
            services.case_verify(case=case, actor=w.grid_worker, confirmed=True, at=local(2026, 11, day, 9, 30))
        cases.append(case)
    # An earlier hotline report merged into a later grid-worker case: 漏报 for the latter.
    early = report(local(2026, 11, 16, 8, 0), POINT_SW, Case.Source.HOTLINE)
    services.case_merge(duplicate=early, into=cases[4], actor=w.operator, at=local(2026, 11, 16, 9, 50))
    # A chain: a public report merged into a video case, which is then merged into case 0.
    public = report(local(2026, 11, 16, 7, 0), POINT_SW, Case.Source.PUBLIC)
    services.case_merge(duplicate=public, into=cases[3], actor=w.operator, at=local(2026, 11, 16, 9, 55))
    services.case_merge(duplicate=cases[3], into=cases[0], actor=w.operator, at=local(2026, 11, 16, 9, 58))
    # A later public report merged into case 1 (hotline): the first report stays the hotline's.
    later = report(local(2026, 11, 18, 9, 0), POINT_NW, Case.Source.PUBLIC)
    services.case_merge(duplicate=later, into=cases[1], actor=w.operator, at=local(2026, 11, 18, 9, 5))
    for n, case in enumerate(cases):
        if n == 3:
            continue
        day = 16 + n % 3
        if n == 7:
            services.case_void(case=case, actor=w.operator, reason="非城市管理问题", at=local(2026, 11, day, 10))
            continue
        services.case_file(case=case, actor=w.operator, at=local(2026, 11, day, 10, n))
        if n == 2:
            services.case_return(case=case, actor=w.handler, reason="不属于环卫", at=local(2026, 11, day, 10, 30))
            services.case_dispatch(
                case=case, actor=w.dispatcher, department=w.greening, at=local(2026, 11, day, 10, 40)
            )
            continue
        if n == 5:
            services.case_defer(case=case, actor=w.leader, reason="待统一整治", at=local(2026, 11, day, 11))
            continue
        finish(case, day, rework=n % 2 == 0, close=n != 6)
    # The other street: a hotline case filed and closed, a grid-worker case left open.
    far = report(local(2026, 11, 16, 9, 0), POINT_OTHER, Case.Source.HOTLINE, outside=True)
    services.case_verify(case=far, actor=other_worker, confirmed=True, at=local(2026, 11, 16, 9, 30))
    services.case_file(case=far, actor=w.outside_operator, at=local(2026, 11, 16, 10))
    finish(far, 16, rework=True, outside=True)
    open_far = report(local(2026, 11, 17, 9, 0), POINT_OTHER, outside=True)
    services.case_file(case=open_far, actor=w.outside_operator, at=local(2026, 11, 17, 9, 20))
    start, end = indicators.period_bounds(first_day=dt.date(2026, 11, 16), last_day=dt.date(2026, 11, 19))
    return {
        "period": {"start": start, "end": end, "as_of": local(2026, 11, 25, 12, 0)},
        "cases": cases,
        "far": far,
        "other_community": other_community,
        "other_grid": other_grid,
        "other_worker": other_worker,
        "other_shift": other_shift,
    }


def test_new_queries_give_the_former_formulation_exactly(world, dataset):
    period = dataset["period"]
    for level in indicators.LEVELS:
        old = _old_region_indicators(level=level, **period)
        assert indicators.region_indicators(level=level, **period) == old
    [a, b] = indicators.region_indicators(level="street", **period)
    # The dataset exercises what changed: 漏报 through merges, history counts in two streets.
    assert (a["code"], a["filed"], a["missed"], a["handled"], a["reworks"]) == ("500104001", 6, 5, 7, 3)
    assert (b["code"], b["filed"], b["missed"], b["handled"], b["reworks"]) == ("500104002", 2, 1, 2, 1)
    # Each period boundary and as_of inside the data as well
    for first, last in ((16, 16), (17, 18), (19, 30)):
        start, end = indicators.period_bounds(first_day=dt.date(2026, 11, first), last_day=dt.date(2026, 11, last))
        for as_of in (local(2026, 11, 17, 10, 30), local(2026, 12, 1, 0, 0)):
            moved = {"start": start, "end": end, "as_of": as_of}
            for level in indicators.LEVELS:
                assert indicators.region_indicators(level=level, **moved) == _old_region_indicators(
                    level=level, **moved
                )


def test_merges_store_the_first_report_source(world, dataset):
    cases = {c.pk: c for c in Case.objects.all()}
    zero, one, three, four = (cases[dataset["cases"][n].pk] for n in (0, 1, 3, 4))
    assert four.source == Case.Source.GRID_WORKER and four.first_source == Case.Source.HOTLINE
    assert one.source == Case.Source.HOTLINE and one.first_source == Case.Source.HOTLINE  # the later one is not first
    assert three.first_source == Case.Source.PUBLIC  # merged itself, its own first report stays recorded
    # Case 0 counts its direct duplicate (the video case, reported after it) only, as before
    assert zero.first_source == Case.Source.GRID_WORKER
    # Cases nothing was merged into keep no copy
    merged_into = set(Case.objects.exclude(merged_into=None).values_list("merged_into_id", flat=True))
    assert set(Case.objects.exclude(first_source=None).values_list("pk", flat=True)) == merged_into


def test_every_history_row_carries_the_place_of_its_case(world, dataset):
    rows = CaseHistory.objects.select_related("case")
    assert rows.count() > 60
    mismatched = [
        h.pk
        for h in rows
        if (h.street_id, h.community_id, h.grid_id) != (h.case.street_id, h.case.community_id, h.case.grid_id)
    ]
    assert mismatched == []
    assert (
        CaseHistory.objects.filter(street=world.other_street).count()
        == CaseHistory.objects.filter(case__street=world.other_street).count()
        > 0
    )


def test_scope_of_each_viewer(world, dataset):
    w = world
    community_operator = UserFactory(role=Role.OPERATOR, community=w.community)
    district_leader = UserFactory(role=Role.LEADER)
    admin = UserFactory(role=Role.ADMIN)
    assert indicator_scope_for(user=w.leader) == IndicatorScope(street_id=w.street.pk)
    assert indicator_scope_for(user=w.shift_leader) == IndicatorScope(street_id=w.street.pk)
    assert indicator_scope_for(user=dataset["other_shift"]) == IndicatorScope(street_id=w.other_street.pk)
    assert indicator_scope_for(user=community_operator) == IndicatorScope(community_id=w.community.pk)
    assert indicator_scope_for(user=w.handler) == IndicatorScope(department_id=w.sanitation.pk)
    assert indicator_scope_for(user=w.grid_worker) == IndicatorScope(nothing=True)
    assert indicator_scope_for(user=w.planner) == DISTRICT
    assert indicator_scope_for(user=district_leader) == DISTRICT
    assert indicator_scope_for(user=UserFactory(role=Role.SHIFT_LEADER)) == IndicatorScope(nothing=True)
    assert indicator_scope_for(user=admin) == DISTRICT


def _keys(rows):
    return {row["key"] for row in rows}


def test_a_street_sees_its_own_places_departments_and_people_only(world, dataset):
    w, period = world, dataset["period"]
    everything = indicators.all_tables(**period)
    mine = indicators.all_tables(**period, scope=IndicatorScope(street_id=w.street.pk))
    theirs = indicators.all_tables(**period, scope=IndicatorScope(street_id=w.other_street.pk))

    # Places: exactly the street's rows, with the district's figures for them
    assert _keys(everything["street"]) == {w.street.pk, w.other_street.pk}
    assert mine["street"] == [r for r in everything["street"] if r["key"] == w.street.pk]
    assert theirs["street"] == [r for r in everything["street"] if r["key"] == w.other_street.pk]
    assert mine["community"] == [r for r in everything["community"] if r["key"] == w.community.pk]
    assert theirs["grid"] == [r for r in everything["grid"] if r["key"] == dataset["other_grid"].pk]
    assert _keys(mine["grid"]) == {g.pk for g in w.grids} & _keys(everything["grid"])

    # Departments: the street's cases only (sanitation worked in both streets)
    [san_all] = [r for r in everything["department"] if r["key"] == w.sanitation.pk]
    [san_mine] = [r for r in mine["department"] if r["key"] == w.sanitation.pk]
    [san_theirs] = [r for r in theirs["department"] if r["key"] == w.sanitation.pk]
    for figure in ("due", "closed", "handled", "reworks", "dispatched"):
        assert san_mine[figure] + san_theirs[figure] == san_all[figure]
    assert san_theirs["handled"] == 2 and san_theirs["reworks"] == 1
    assert _keys(theirs["department"]) == {w.sanitation.pk}  # greening never worked there

    # People: the street's work only; the other street's operator and worker are not on our tables
    assert w.outside_operator.pk not in _keys(mine["operator"])
    assert _keys(theirs["operator"]) == {w.outside_operator.pk}
    assert dataset["other_worker"].pk not in _keys(mine["grid_worker"])
    assert _keys(theirs["grid_worker"]) == {dataset["other_worker"].pk}
    assert _keys(theirs["dispatcher"]) == {None}  # 自动派遣 only
    assert w.dispatcher.pk in _keys(mine["dispatcher"])


def test_a_community_a_department_and_a_grid_worker(world, dataset):
    w, period = world, dataset["period"]
    everything = indicators.all_tables(**period)
    community = indicators.all_tables(**period, scope=IndicatorScope(community_id=w.community.pk))
    assert community["street"] == [r for r in everything["street"] if r["key"] == w.street.pk]  # one community
    assert _keys(community["community"]) == {w.community.pk}

    department = indicators.all_tables(**period, scope=indicator_scope_for(user=w.handler))
    [san] = [r for r in everything["department"] if r["key"] == w.sanitation.pk]
    assert department["department"] == [san]
    assert all(department[kind] == [] for kind in department if kind != "department")

    nothing = indicators.all_tables(**period, scope=indicator_scope_for(user=w.grid_worker))
    assert all(rows == [] for rows in nothing.values())
