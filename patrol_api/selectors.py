"""Reads for the API: the catalogue as a tree, a worker's tasks and reports, scoped case look-ups, Open311 queries."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from django.db.models import Max, Prefetch, Q, QuerySet
from django.http import Http404

from accounts.models import Role, User
from events import selectors as case_selectors
from events import workflow
from events.models import Case, CaseHistory, CasePhoto, Category
from patrol.models import PatrolSession
from patrol_api.models import ApiKey, CaseReceipt

# States in which a case waits for its grid worker (核实 / 核查), read from the workflow table.
TASK_STATES = frozenset(
    t.source for t in workflow.TRANSITIONS if Role.GRID_WORKER in t.roles and t.source != workflow.State.NEW
)


def category_by_code(*, code: str) -> Category | None:
    """The active category with the code C/E + 大类 + 小类 (e.g. "E0102"), or None."""
    if len(code) != 5:
        return None
    return (
        Category.objects.filter(is_active=True, kind=code[0], major_code=code[1:3], minor_code=code[3:5])
        .select_related("default_department")  # routing reads it for every report
        .first()
    )


def client_key_of(*, user_id: int, idempotency_key: str) -> str:
    """The case's client_key: the client's key namespaced by the user, so two users never share one."""
    return f"{user_id}:{idempotency_key}"


def case_id_for_key(*, user: User, idempotency_key: str) -> int | None:
    """The case this user's Idempotency-Key created, if any: one index probe, no model built."""
    key = client_key_of(user_id=user.pk, idempotency_key=idempotency_key)
    return next(iter(Case.objects.filter(client_key=key).order_by().values_list("pk", flat=True)), None)


def categories_active() -> QuerySet[Category]:
    return Category.objects.filter(is_active=True).order_by("kind", "major_code", "minor_code")


def category_tree() -> list[dict[str, Any]]:
    """Active categories as kind → 大类 → 小类, with 立案条件 and 结案条件 (for the picker)."""
    tree: list[dict[str, Any]] = []
    kinds: dict[str, dict[str, Any]] = {}
    majors: dict[tuple[str, str], dict[str, Any]] = {}
    for category in categories_active():
        kind = kinds.get(category.kind)
        if kind is None:
            kind = {"kind": category.kind, "name": category.get_kind_display(), "majors": []}
            kinds[category.kind] = kind
            tree.append(kind)
        major = majors.get((category.kind, category.major_code))
        if major is None:
            major = {"code": category.major_code, "name": category.major_name, "categories": []}
            majors[(category.kind, category.major_code)] = major
            kind["majors"].append(major)
        major["categories"].append(category)
    return tree


def _with_details(cases: QuerySet[Case]) -> QuerySet[Case]:
    return cases.select_related("category", "grid", "current_department", "api_receipt")


def case_timeline_prefetch() -> Prefetch:
    return Prefetch(
        "history",
        queryset=CaseHistory.objects.select_related("actor", "department")
        .prefetch_related("attachments")
        .order_by("id"),
    )


def cases_for_list(*, user: User) -> QuerySet[Case]:
    """Cases the user may see, with their timer light, newest first."""
    cases = case_selectors.cases_visible_to(user=user)
    return case_selectors.with_timer_light(_with_details(cases)).order_by("-reported_at", "-id")


def case_visible_or_none(*, user: User, case_id: int) -> Case | None:
    """The case if the user may see it, with its timer light, timeline and photos."""
    return (
        case_selectors.with_timer_light(_with_details(case_selectors.cases_visible_to(user=user)))
        .prefetch_related(case_timeline_prefetch(), "photos")
        .filter(pk=case_id)
        .first()
    )


def case_visible(*, user: User, case_id: int) -> Case:
    """The case if the user may see it; Http404 otherwise (an invisible case is not disclosed)."""
    case = case_visible_or_none(user=user, case_id=case_id)
    if case is None:
        raise Http404
    return case


def case_photo_visible(*, user: User, case_id: int, photo_id: int) -> CasePhoto:
    photo = (
        CasePhoto.objects.filter(pk=photo_id, case_id=case_id)
        .filter(case__in=case_selectors.cases_visible_to(user=user))
        .first()
    )
    if photo is None:
        raise Http404
    return photo


def reports_of(*, user: User) -> QuerySet[Case]:
    """What the user reported (上报 / 自处理), newest first, with states, lights and timelines."""
    cases = Case.objects.filter(reporter=user)
    return (
        case_selectors.with_timer_light(_with_details(cases))
        .prefetch_related(case_timeline_prefetch(), "photos")
        .order_by("-reported_at", "-id")
    )


def tasks_of(*, user: User) -> QuerySet[Case]:
    """Cases waiting for the grid worker's 核实 or 核查, most urgent deadline first."""
    cases = Case.objects.filter(current_assignee=user, state__in=TASK_STATES)
    return case_selectors.with_timer_light(_with_details(cases)).prefetch_related("photos").order_by("deadline", "id")


def patrol_session_of(*, worker: User, session_id: int) -> PatrolSession:
    session = PatrolSession.objects.filter(pk=session_id, worker=worker).first()
    if session is None:
        raise Http404
    return session


# --- Open311 -----------------------------------------------------------------------------------

OPEN311_WINDOW = dt.timedelta(days=90)
OPEN311_LIMIT = 1000


def api_key_digest(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode("utf-8")).hexdigest()


def api_key_active(*, raw_key: str) -> ApiKey | None:
    """The unrevoked key matching `raw_key`, or None."""
    if not raw_key:
        return None
    return ApiKey.objects.filter(digest=api_key_digest(raw_key), revoked_at__isnull=True).first()


def open311_requests() -> QuerySet[Case]:
    """Cases that came from the public (Open311 and other public channels): the only ones published.

    Grid-worker and hotline reports stay internal; no reporter's name or phone is ever published.
    """
    return (
        Case.objects.filter(source=Case.Source.PUBLIC)
        .select_related("category", "current_department", "merged_into", "api_receipt")
        .annotate(updated_at=Max("history__created_at"))
    )


def open311_requests_search(
    *,
    numbers: list[str] | None,
    service_codes: list[str] | None,
    start: dt.datetime,
    end: dt.datetime,
    statuses: set[str] | None,
) -> list[Case]:
    """GET requests: `numbers` overrides every other filter; otherwise a window of at most 90 days."""
    cases = open311_requests()
    if numbers:
        return list(cases.filter(number__in=numbers).order_by("-reported_at", "-id")[:OPEN311_LIMIT])
    cases = cases.filter(reported_at__gte=start, reported_at__lte=end)
    if service_codes:
        condition = Q(pk__in=[])
        for code in service_codes:
            condition |= Q(category__kind=code[:1], category__major_code=code[1:3], category__minor_code=code[3:5])
        cases = cases.filter(condition)
    if statuses is not None and statuses != {"open", "closed"}:
        if "open" in statuses:
            cases = cases.filter(state__in=workflow.OPEN_STATES)
        else:
            cases = cases.exclude(state__in=workflow.OPEN_STATES)
    return list(cases.order_by("-reported_at", "-id")[:OPEN311_LIMIT])


def open311_request(*, number: str) -> Case | None:
    return open311_requests().filter(number=number).first()


def open311_receipt_by_token(*, token: str) -> CaseReceipt | None:
    return CaseReceipt.objects.filter(token=token, channel=CaseReceipt.Channel.OPEN311).select_related("case").first()
