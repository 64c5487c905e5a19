"""Reads of the case lifecycle: scope, queues, timer lights, routing suggestions, duplicates."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from typing import Any, cast

from django.contrib.gis.geos import Point
from django.db import connection
from django.db.models import Case as When_
from django.db.models import CharField, Exists, OuterRef, Q, QuerySet, Value, When
from django.utils import timezone

from accounts.models import Role, User
from accounts.roles import is_district_leader
from events import workflow
from events.models import AreaClass, Case, CaseHistory, Category, GridAreaClass, RoutingRule
from geodata.models import Department, Facility, Grid, GridAssignment
from geodata.selectors import within_metres

DUPLICATE_RADIUS_M = 50.0
DUPLICATE_WINDOW = dt.timedelta(days=3)

# Routing tiers, strongest first.
TIER_FACILITY = 1
TIER_RULE = 2
TIER_GRID = 3


@dataclasses.dataclass(frozen=True)
class DepartmentSuggestion:
    department: Department
    tier: int
    reason: str
    matches: bool  # False for lower-priority rules, shown only as alternatives


@dataclasses.dataclass(frozen=True)
class Routing:
    suggestions: list[DepartmentSuggestion]  # ranked, one entry per department
    matched: list[Department]  # departments of the strongest tier that matched

    @property
    def automatic(self) -> Department | None:
        """The department to dispatch to without asking: only when exactly one matched."""
        return self.matched[0] if len(self.matched) == 1 else None


# --- scope ----------------------------------------------------------------------------------


def cases_visible_to(*, user: User) -> QuerySet[Case]:
    """Cases a user may open one by one: their street / community, their department, or their
    grids. Planners open none: they work on aggregates (cases_countable_by)."""
    cases = Case.objects.all()
    if user.is_superuser or user.role == Role.ADMIN:
        return cases
    if user.role == Role.PLANNER:
        return cases.none()
    if user.role == Role.DEPARTMENT_HANDLER:
        if user.department_id is None:
            return cases.none()
        involved = CaseHistory.objects.filter(case=OuterRef("pk"), department_id=user.department_id)
        return cases.filter(Q(current_department_id=user.department_id) | Exists(involved))
    if user.role == Role.GRID_WORKER:
        grids = GridAssignment.objects.filter(worker=user).values("grid_id")
        return cases.filter(Q(grid_id__in=grids) | Q(current_assignee=user) | Q(reporter=user))
    if user.community_id:
        return cases.filter(community_id=user.community_id)
    if user.street_id:
        return cases.filter(street_id=user.street_id)
    return cases if is_district_leader(user) else cases.none()


def cases_countable_by(*, user: User) -> QuerySet[Case]:
    """Cases a user may count in aggregates (map layers, statistics, building colours):
    the whole jurisdiction for planners, otherwise exactly the cases they may see."""
    if user.role == Role.PLANNER and not user.is_superuser:
        return Case.objects.all()
    return cases_visible_to(user=user)


def cases_countable_place(*, user: User) -> dict[str, int] | None:
    """When the cases `user` may count are exactly those of a place, that place as filters on
    the case's own columns ({} = the whole jurisdiction, else street_id or community_id); None
    when they depend on more than place (a department's work, a worker's grids and own cases).

    The incident rollups (events.rollups) answer only the first kind; this must follow
    cases_countable_by exactly.
    """
    if user.is_superuser or user.role in (Role.ADMIN, Role.PLANNER):
        return {}
    if user.role in (Role.DEPARTMENT_HANDLER, Role.GRID_WORKER):
        return None
    if user.community_id:
        return {"community_id": user.community_id}
    if user.street_id:
        return {"street_id": user.street_id}
    return {} if is_district_leader(user) else None


def user_in_case_scope(*, user: User, case: Case) -> bool:
    """Whether `user` may act on `case` as far as place and department go (the role is checked by the workflow)."""
    if user.role == Role.DEPARTMENT_HANDLER:
        return user.department_id is not None and user.department_id == case.current_department_id
    if user.role == Role.GRID_WORKER:
        return case.current_assignee_id == user.pk or (
            GridAssignment.objects.filter(grid_id=case.grid_id, worker=user).exists()
        )
    if user.community_id:
        return user.community_id == case.community_id
    if user.street_id:
        return user.street_id == case.street_id
    return is_district_leader(user)


def case_actions_for(*, case: Case, user: User) -> list[workflow.Action]:
    """The actions `user` may take on `case` now (for the buttons of a screen)."""
    if not user_in_case_scope(user=user, case=case):
        return []
    return workflow.actions_available(state=case.state, role=user.role)


# --- timer lights and overdue work ----------------------------------------------------------


def with_timer_light(queryset: QuerySet[Case], *, now: dt.datetime | None = None) -> QuerySet[Case]:
    """Annotate `timer_light`: "red" past the step deadline, "yellow" from 80 %, "green" below, "" without timer."""
    now = now or timezone.now()
    return queryset.annotate(
        timer_light=When_(
            When(Q(deadline__isnull=True) | ~Q(state__in=workflow.TIMED_STATES), then=Value("")),
            When(deadline__lt=now, then=Value("red")),
            When(warn_at__lte=now, then=Value("yellow")),
            default=Value("green"),
            output_field=CharField(),
        )
    )


def timer_light_of(*, case: Case, now: dt.datetime | None = None) -> str:
    """The timer light of a case held in memory (one just written): the rule of with_timer_light, no query."""
    if case.deadline is None or case.state not in workflow.TIMED_STATES:
        return ""
    now = now or timezone.now()
    if case.deadline < now:
        return "red"
    if case.warn_at is not None and case.warn_at <= now:
        return "yellow"
    return "green"


def cases_overdue(*, now: dt.datetime | None = None, queryset: QuerySet[Case] | None = None) -> QuerySet[Case]:
    """Open cases whose current step is past its deadline (uses the partial index case_open_deadline_idx)."""
    now = now or timezone.now()
    base = queryset if queryset is not None else Case.objects.all()
    return base.filter(state__in=workflow.TIMED_STATES, deadline__lt=now).order_by("deadline")


def cases_turning(*, level: str, now: dt.datetime | None = None) -> QuerySet[Case]:
    """Open cases that reached the yellow (80 %) or red (overdue) point of their current step."""
    now = now or timezone.now()
    if level == "yellow":
        return Case.objects.filter(state__in=workflow.TIMED_STATES, warn_at__lte=now)
    return Case.objects.filter(state__in=workflow.TIMED_STATES, deadline__lt=now)


def case_timeline(*, case: Case) -> QuerySet[CaseHistory]:
    """The history of a case, oldest first, with actors, departments and photos loaded."""
    return (
        CaseHistory.objects.filter(case=case)
        .select_related("actor", "department")
        .prefetch_related("attachments")
        .order_by("id")
    )


# --- location facts used at report time ----------------------------------------------------


def area_class_of(*, grid: Grid) -> str:
    row = GridAreaClass.objects.filter(grid=grid).values_list("area_class", flat=True).first()
    return row or AreaClass.B


def grid_worker_of(*, grid_id: int, prefer: User | None = None) -> User | None:
    """Who does 核实/核查 in a grid: `prefer` when assigned there, else the primary worker, else any worker."""
    assignments = GridAssignment.objects.filter(grid_id=grid_id).select_related("worker")
    if prefer is not None and assignments.filter(worker=prefer).exists():
        return prefer
    first = assignments.order_by("-is_primary", "since", "id").first()
    return first.worker if first else None


# --- routing --------------------------------------------------------------------------------


def department_routing(
    *, category: Category, grid: Grid, facility: Facility | None = None, street_id: int | None = None
) -> Routing:
    """Ranked department suggestions for a case.

    Tier 1: the facility's maintainer (养护单位) when the case is on a facility.
    Tier 2: the routing rules of the category that apply to the place (the best priority
    wins; several rules with that priority are ambiguous), else the category's default.
    Tier 3: the grid's responsible unit (责任主体), the fallback.
    `matched` holds the departments of the strongest tier that found any; automatic
    dispatch happens only when it holds exactly one.
    """
    community_id = grid.community_id
    street_id = street_id or grid.community.street_id
    found: list[DepartmentSuggestion] = []
    if facility is not None and facility.maintainer_department is not None:
        found.append(DepartmentSuggestion(facility.maintainer_department, TIER_FACILITY, "部件养护单位", True))
    rules = list(
        RoutingRule.objects.filter(category=category, is_active=True)
        .filter(Q(street__isnull=True) | Q(street_id=street_id))
        .filter(Q(community__isnull=True) | Q(community_id=community_id))
        .select_related("department")
        .order_by("priority", "id")
    )
    for rule in rules:
        best = rule.priority == rules[0].priority
        found.append(DepartmentSuggestion(rule.department, TIER_RULE, "派遣规则" if best else "派遣规则（备选）", best))
    if not rules and category.default_department is not None:
        found.append(DepartmentSuggestion(category.default_department, TIER_RULE, "类别默认部门", True))
    if grid.responsible_unit is not None:
        found.append(DepartmentSuggestion(grid.responsible_unit, TIER_GRID, "网格责任主体", True))

    strongest = min((s.tier for s in found), default=None)
    matched = list({s.department.pk: s.department for s in found if s.tier == strongest and s.matches}.values())
    seen: set[int] = set()
    ranked = []
    for suggestion in found:  # already in tier order
        if suggestion.department.pk not in seen:
            seen.add(suggestion.department.pk)
            ranked.append(suggestion)
    return Routing(suggestions=ranked, matched=matched)


def case_department_routing(*, case: Case) -> Routing:
    return department_routing(category=case.category, grid=case.grid, facility=case.facility, street_id=case.street_id)


# --- duplicates -----------------------------------------------------------------------------


def duplicate_candidates(
    *,
    category: Category,
    point: Point,
    at: dt.datetime | None = None,
    radius_m: float = DUPLICATE_RADIUS_M,
    window: dt.timedelta = DUPLICATE_WINDOW,
    exclude_id: int | None = None,
) -> QuerySet[Case]:
    """Open cases of the same category within `radius_m` reported in the `window` before `at`, nearest first."""
    at = at or timezone.now()
    queryset = Case.objects.filter(
        category=category,
        state__in=workflow.OPEN_STATES,
        reported_at__gte=at - window,
        reported_at__lte=at,
    )
    if exclude_id is not None:
        queryset = queryset.exclude(pk=exclude_id)
    return within_metres(queryset, field="location", geometry=point, metres=radius_m)


def case_duplicate_candidates(*, case: Case, radius_m: float = DUPLICATE_RADIUS_M) -> QuerySet[Case]:
    return duplicate_candidates(
        category=case.category, point=case.location, at=case.reported_at, radius_m=radius_m, exclude_id=case.pk
    )


# --- counts of cases within a distance -------------------------------------------------------

# Cells of the index case_cell_idx (migration 0006_case_cells): 1/2000 degree square, about
# 48 × 55 m here. These expressions must stay identical to the index's, or it is not used.
CELLS_PER_DEGREE = 2000
_CELL_Y = f"floor(ST_Y(e.location) * {CELLS_PER_DEGREE})::int"
_CELL_X = f"floor(ST_X(e.location) * {CELLS_PER_DEGREE})::int"
# within_metres measures with ST_DistanceSphere, on the sphere of the WGS 84 mean radius.
_SPHERE_RADIUS_M = 6_371_008.7714
_METRES_PER_DEGREE_LAT = _SPHERE_RADIUS_M * math.pi / 180
MAX_COUNT_RADIUS_M = 5000.0

_COUNT_IN_CELLS = """
    SELECT count(*)
    FROM unnest(%({ranges}_rows)s::int[], %({ranges}_low)s::int[], %({ranges}_high)s::int[]) r(cy, lo, hi)
    JOIN events_case e ON {cell_y} = r.cy AND {cell_x} BETWEEN r.lo AND r.hi
    WHERE {conditions}
"""
# In the cells the circle's edge crosses, each case is first placed by plane distances that
# bound the sphere's from below and above (east-west metres per degree taken at the
# latitudes nearest to and farthest from the equator within reach); only a case within the
# margin of the circle gets the exact ST_DistanceSphere test.
_EXACT_IN_EDGE_CELLS = """
    CASE WHEN ((ST_X(e.location) - %(x)s) * %(kx_max)s) ^ 2 + ((ST_Y(e.location) - %(y)s) * %(ky)s) ^ 2 <= %(inner2)s
         THEN true
         WHEN ((ST_X(e.location) - %(x)s) * %(kx_min)s) ^ 2 + ((ST_Y(e.location) - %(y)s) * %(ky)s) ^ 2 > %(outer2)s
         THEN false
         ELSE ST_DistanceSphere(e.location, ST_SetSRID(ST_MakePoint(%(x)s, %(y)s), 4326)) <= %(metres)s
    END
"""


class RadiusError(ValueError):
    """A within-distance count was asked with a distance it cannot answer."""


@dataclasses.dataclass(frozen=True)
class _Circle:
    """A circle on the sphere seen in a local plane: metres per degree, and a margin that is
    far wider than the plane's error at these distances (millimetres at 5 km)."""

    x: float
    y: float
    metres: float

    @property
    def margin(self) -> float:
        return 1.0 + self.metres * 1e-3

    @property
    def reach_lat(self) -> float:
        return (self.metres + self.margin) / _METRES_PER_DEGREE_LAT

    def kx(self, *, widest: bool) -> float:
        """East-west metres per degree within reach: the largest (nearest the equator) or the smallest."""
        low, high = sorted((abs(self.y - self.reach_lat), abs(self.y + self.reach_lat)))
        if self.y - self.reach_lat < 0 < self.y + self.reach_lat:
            low = 0.0
        return _METRES_PER_DEGREE_LAT * math.cos(math.radians(low if widest else min(high, 89.9)))


def _cell_ranges(circle: _Circle) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
    """Per cell row, (row, first, last) ranges of the cells wholly within the circle, and of the
    cells its edge may cross; cells wholly outside are in neither. Every bound is widened or
    narrowed by the margin, so a cell is only called inside or outside when it surely is."""
    n, x, y = CELLS_PER_DEGREE, circle.x, circle.y
    inner, outer = circle.metres - circle.margin, circle.metres + circle.margin
    kx_min, kx_max = circle.kx(widest=False), circle.kx(widest=True)
    inside, edge = [], []
    for cy in range(math.floor((y - circle.reach_lat) * n), math.floor((y + circle.reach_lat) * n) + 1):
        y0, y1 = cy / n, (cy + 1) / n
        dy_near = max(0.0, y0 - y, y - y1) * _METRES_PER_DEGREE_LAT
        dy_far = max(abs(y0 - y), abs(y1 - y)) * _METRES_PER_DEGREE_LAT
        if dy_near > outer:
            continue
        half = math.sqrt(outer**2 - dy_near**2) / kx_min
        low, high = math.floor((x - half) * n), math.floor((x + half) * n)
        if inner > dy_far:
            inner_half = math.sqrt(inner**2 - dy_far**2) / kx_max
            first, last = math.ceil((x - inner_half) * n), math.floor((x + inner_half) * n) - 1
            if first <= last:
                inside.append((cy, first, last))
                edge += [(cy, lo, hi) for lo, hi in ((low, first - 1), (last + 1, high)) if lo <= hi]
                continue
        edge.append((cy, low, high))
    return inside, edge


def count_cases_within(
    *,
    point: Point,
    metres: float,
    reported_from: dt.datetime | None = None,
    reported_before: dt.datetime | None = None,
    category_id: int | None = None,
    incidents_only: bool = False,
) -> int:
    """How many cases lie within `metres` of `point` (on the sphere, exactly as
    geodata.selectors.within_metres decides), optionally reported in [reported_from,
    reported_before), of one category, or incidents only (neither 作废 nor 合并).

    Counted from the cell index case_cell_idx alone: the cells wholly inside the circle are
    counted without a distance test, only the cases in cells the circle's edge crosses are
    placed one by one. The cases' own rows (stored in time order, a few years of cases
    around a point spread over thousands of pages) are not read. docs/performance.md §6.
    """
    if math.isnan(metres) or not 0 < metres <= MAX_COUNT_RADIUS_M:
        raise RadiusError(f"距离须大于0且不超过{MAX_COUNT_RADIUS_M:g}米")
    if point.srid not in (None, 4326):
        point = cast(Point, point.transform(4326, clone=True))
    circle = _Circle(x=float(point.x), y=float(point.y), metres=float(metres))
    conditions = ["true"]
    params: dict[str, Any] = {
        "x": circle.x,
        "y": circle.y,
        "metres": circle.metres,
        "ky": _METRES_PER_DEGREE_LAT,
        "kx_min": circle.kx(widest=False),
        "kx_max": circle.kx(widest=True),
        "inner2": (circle.metres - circle.margin) ** 2,
        "outer2": (circle.metres + circle.margin) ** 2,
    }
    if reported_from is not None:
        conditions.append("e.reported_at >= %(reported_from)s")
        params["reported_from"] = reported_from
    if reported_before is not None:
        conditions.append("e.reported_at < %(reported_before)s")
        params["reported_before"] = reported_before
    if category_id is not None:
        conditions.append("e.category_id = %(category_id)s")
        params["category_id"] = category_id
    if incidents_only:
        conditions.append("e.state NOT IN (%(voided)s, %(merged)s)")
        params.update(voided=workflow.State.VOIDED.value, merged=workflow.State.MERGED.value)
    where = " AND ".join(conditions)
    inside_sql = _COUNT_IN_CELLS.format(ranges="inside", cell_y=_CELL_Y, cell_x=_CELL_X, conditions=where)
    edge_where = f"{where} AND {_EXACT_IN_EDGE_CELLS}"
    edge_sql = _COUNT_IN_CELLS.format(ranges="edge", cell_y=_CELL_Y, cell_x=_CELL_X, conditions=edge_where)
    for name, ranges in zip(("inside", "edge"), _cell_ranges(circle), strict=True):
        params[f"{name}_rows"] = [r[0] for r in ranges]
        params[f"{name}_low"] = [r[1] for r in ranges]
        params[f"{name}_high"] = [r[2] for r in ranges]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT ({inside_sql}) + ({edge_sql})", params)
        return int(cursor.fetchone()[0])


def case_source_reports(*, case: Case) -> QuerySet[Case]:
    """The case and every report merged into it, earliest first (all count for 漏报)."""
    return Case.objects.filter(Q(pk=case.pk) | Q(merged_into=case)).order_by("reported_at", "id")
