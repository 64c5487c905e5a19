"""Reads of the case lifecycle: scope, queues, timer lights, routing suggestions, duplicates."""

from __future__ import annotations

import dataclasses
import datetime as dt

from django.contrib.gis.geos import Point
from django.db.models import Case as When_
from django.db.models import CharField, Exists, OuterRef, Q, QuerySet, Value, When
from django.utils import timezone

from accounts.models import Role, User
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
    return cases


def cases_countable_by(*, user: User) -> QuerySet[Case]:
    """Cases a user may count in aggregates (map layers, statistics, building colours):
    the whole jurisdiction for planners, otherwise exactly the cases they may see."""
    if user.role == Role.PLANNER and not user.is_superuser:
        return Case.objects.all()
    return cases_visible_to(user=user)


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
    return True


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


def case_source_reports(*, case: Case) -> QuerySet[Case]:
    """The case and every report merged into it, earliest first (all count for 漏报)."""
    return Case.objects.filter(Q(pk=case.pk) | Q(merged_into=case)).order_by("reported_at", "id")
