"""指挥中心 screens: the case queue, the case page, the department's cases, hotline registration, indicators.

Views only translate HTTP to events services and selectors and back:

- every case list starts from `selectors.cases_visible_to(user)`, so nobody sees a case
  outside their street / community / department (a case page outside it is a 404);
- the buttons of a case are the actions `selectors.case_actions_for` returns; each is a
  POST to `case_act`, whose form calls one service;
- refusals keep their meaning: TransitionNotAllowed → 409 with the message and the case
  as it is now, ActionNotPermitted → 403, ValidationError → 400 with the input kept.
  In every refusal the service has changed nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.gis.db.models.functions import AsGeoJSON
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, F, Q, QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import User
from command.access import may_register, may_see_indicators
from command.forms import ACTION_FORMS, ActionForm, CaseFilterForm, IndicatorForm, RegisterForm
from events import indicators, selectors, workflow
from events.models import Case, CaseHistory, CasePhoto, UrgeLevel
from events.workflow import Action, State
from geodata.models import Street
from geodata.selectors import PointOutsideJurisdiction, grids_valid_on

PAGE_SIZE = 30
DUPLICATES_SHOWN = 10
SUGGESTIONS_SHOWN = 3
OUTLINE_LIMIT = 3000  # grids drawn on the registration map

# The queue's tabs: one per open state, plus all open, overdue and finished cases.
OPEN_TAB, OVERDUE_TAB, FINISHED_TAB = "open", "overdue", "finished"
QUEUE_STATES = [
    State.VERIFYING,
    State.REPORTED,
    State.FILED,
    State.DISPATCHED,
    State.EXTENSION_PENDING,
    State.HANDLED,
    State.CHECKED,
    State.DEFERRED,
]
QUEUE_TABS = [
    (OPEN_TAB, "全部在办"),
    *((state.value, state.label) for state in QUEUE_STATES),
    (OVERDUE_TAB, "超期督办"),
    (FINISHED_TAB, "已办结"),
]

PHOTO_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


# --- helpers ---------------------------------------------------------------------------------


def _visible(user: User) -> QuerySet[Case]:
    # The routing suggestions read the category's default department, the grid's responsible
    # unit and the facility's maintainer: joined here rather than fetched row by row.
    return selectors.with_timer_light(selectors.cases_visible_to(user=user)).select_related(
        "category__default_department",
        "grid__responsible_unit",
        "facility__maintainer_department",
        "community",
        "street",
        "current_department",
        "current_assignee",
    )


def _visible_case(user: User, case_id: int) -> Case:
    return get_object_or_404(
        _visible(user).select_related(
            "reporter",
            "suggested_department",
            "merged_into",
        ),
        pk=case_id,
    )


def _denied(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "command/denied.html", {"message": message}, status=403)


def _safe_next(request: HttpRequest) -> str | None:
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return None


def _page(request: HttpRequest, cases: QuerySet[Case]) -> tuple[Any, str]:
    """The requested page and the query string of the other filters (for the page links)."""
    page = Paginator(cases, PAGE_SIZE).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    return page, params.urlencode()


def _filtered(cases: QuerySet[Case], form: CaseFilterForm) -> QuerySet[Case]:
    if not form.is_valid():
        return cases
    data = form.cleaned_data
    if data.get("category"):
        cases = cases.filter(category=data["category"])
    if data.get("q"):
        text = data["q"].strip()
        cases = cases.filter(Q(number__icontains=text) | Q(address__icontains=text))
    if data.get("overdue"):
        cases = selectors.cases_overdue(queryset=cases)
    return cases


def _by_deadline(cases: QuerySet[Case]) -> QuerySet[Case]:
    return cases.order_by(F("deadline").asc(nulls_last=True), "-reported_at", "-id")


def _latest_rows(case_ids: Iterable[int], action: Action) -> dict[int, CaseHistory]:
    """The most recent history row of `action` for each case (one query)."""
    ids = list(case_ids)
    if not ids:
        return {}
    rows = CaseHistory.objects.filter(case_id__in=ids, action=action).order_by("case_id", "-id").distinct("case_id")
    return {row.case_id: row for row in rows}


class Row:
    """One case of a list with what the user may do with it."""

    def __init__(self, case: Case, actions: list[Action]):
        self.case = case
        self.actions = set(actions)
        self.suggestions: list[selectors.DepartmentSuggestion] = []
        self.duplicates = 0
        self.extension_request: CaseHistory | None = None
        self.last_urge: CaseHistory | None = None
        self.forms: list[ActionForm] = []

    def may(self, action: str) -> bool:
        return action in self.actions

    # Template-friendly flags.
    @property
    def may_file(self) -> bool:
        return self.may(Action.FILE)

    @property
    def may_dispatch(self) -> bool:
        return self.may(Action.DISPATCH)

    @property
    def may_approve(self) -> bool:
        return self.may(Action.APPROVE_EXTENSION)

    @property
    def may_refuse(self) -> bool:
        return self.may(Action.REFUSE_EXTENSION)

    @property
    def may_close(self) -> bool:
        return self.may(Action.CLOSE)

    @property
    def may_urge(self) -> bool:
        return self.may(Action.URGE)

    @property
    def may_resume(self) -> bool:
        return self.may(Action.RESUME)


def _rows(cases: Iterable[Case], user: User, *, inline_forms: Iterable[Action] = ()) -> list[Row]:
    rows = [Row(case, selectors.case_actions_for(case=case, user=user)) for case in cases]
    wanted_forms = list(inline_forms)
    for row in rows:
        if row.may(Action.DISPATCH):
            row.suggestions = selectors.case_department_routing(case=row.case).suggestions[:SUGGESTIONS_SHOWN]
        if row.may(Action.MERGE):
            row.duplicates = selectors.case_duplicate_candidates(case=row.case).count()
        row.forms = [
            ACTION_FORMS[action](case=row.case, user=user, auto_id=f"id_{row.case.pk}_{action}_%s")
            for action in wanted_forms
            if row.may(action)
        ]
    requests = _latest_rows((r.case.pk for r in rows if r.may(Action.APPROVE_EXTENSION)), Action.REQUEST_EXTENSION)
    urges = _latest_rows((r.case.pk for r in rows if r.case.urge_count), Action.URGE)
    for row in rows:
        row.extension_request = requests.get(row.case.pk)
        row.last_urge = urges.get(row.case.pk)
    return rows


# --- the queue ------------------------------------------------------------------------------


@login_required
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    """The command center's work queue: one tab per open state, overdue cases, finished cases."""
    user = request.user
    visible = _visible(user)
    tab = request.GET.get("tab") or OPEN_TAB
    if tab not in dict(QUEUE_TABS):
        tab = OPEN_TAB
    if tab == OPEN_TAB:
        cases = _by_deadline(visible.filter(state__in=workflow.OPEN_STATES))
    elif tab == OVERDUE_TAB:
        cases = selectors.cases_overdue(queryset=visible)
    elif tab == FINISHED_TAB:
        cases = visible.filter(state__in=workflow.TERMINAL_STATES).order_by("-reported_at", "-id")
    else:
        cases = _by_deadline(visible.filter(state=tab))
    form = CaseFilterForm(request.GET)
    page, query = _page(request, _filtered(cases, form))

    per_state = dict(
        selectors.cases_visible_to(user=user)
        .filter(state__in=workflow.OPEN_STATES)
        .values_list("state")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts = {
        OPEN_TAB: sum(per_state.values()),
        OVERDUE_TAB: selectors.cases_overdue(queryset=selectors.cases_visible_to(user=user)).count(),
        **{state.value: per_state.get(state.value, 0) for state in QUEUE_STATES},
    }
    tabs = [{"key": key, "label": label, "count": counts.get(key), "active": key == tab} for key, label in QUEUE_TABS]
    return render(
        request,
        "command/queue.html",
        {
            "tabs": tabs,
            "tab": tab,
            "overdue_tab": tab == OVERDUE_TAB,
            "urge_levels": UrgeLevel.choices,
            "form": form,
            "page": page,
            "query": query,
            "rows": _rows(page.object_list, user),
            "here": request.get_full_path(),
        },
    )


# --- the department's cases -------------------------------------------------------------------


DEPARTMENT_OPEN, DEPARTMENT_DONE = "todo", "done"
DEPARTMENT_FORMS = (Action.HANDLE, Action.REQUEST_EXTENSION, Action.RETURN)


@login_required
@require_GET
def department(request: HttpRequest) -> HttpResponse:
    """部门案件: the cases my department holds now (处置中, 延时待审), and the ones it worked on before."""
    user = request.user
    visible = _visible(user)
    tab = DEPARTMENT_DONE if request.GET.get("tab") == DEPARTMENT_DONE else DEPARTMENT_OPEN
    holding = Q(current_department_id=user.department_id, state__in=workflow.WITH_DEPARTMENT_STATES)
    if user.department_id is None:
        cases = visible.none()
    elif tab == DEPARTMENT_OPEN:
        cases = _by_deadline(visible.filter(holding))
    else:
        cases = visible.exclude(holding).order_by("-reported_at", "-id")
    form = CaseFilterForm(request.GET)
    page, query = _page(request, _filtered(cases, form))
    return render(
        request,
        "command/department.html",
        {
            "tab": tab,
            "form": form,
            "page": page,
            "query": query,
            "rows": _rows(page.object_list, user, inline_forms=DEPARTMENT_FORMS),
            "here": request.get_full_path(),
            "department": user.department,
        },
    )


# --- one case --------------------------------------------------------------------------------


def _case_map(case: Case) -> dict[str, Any]:
    point = case.location.transform(4326, clone=True)
    grid = case.grid.geom.transform(4326, clone=True)
    return {
        "point": [point.x, point.y],
        "grid": {"type": "Feature", "geometry": json.loads(grid.json), "properties": {"name": case.grid.name}},
    }


def _render_case(
    request: HttpRequest,
    case: Case,
    *,
    bound: ActionForm | None = None,
    refusal: str = "",
    status: int = 200,
) -> HttpResponse:
    user = request.user
    actions = selectors.case_actions_for(case=case, user=user)
    forms = [
        bound if bound is not None and bound.action == action else ACTION_FORMS[action](case=case, user=user)
        for action in actions
        if action in ACTION_FORMS
    ]
    routing = selectors.case_department_routing(case=case) if Action.DISPATCH in actions else None
    duplicates = (
        list(selectors.case_duplicate_candidates(case=case)[:DUPLICATES_SHOWN]) if Action.MERGE in actions else []
    )
    sources = list(selectors.case_source_reports(case=case).select_related("category"))
    photos = list(case.photos.order_by("uploaded_at", "id"))
    merged_into = (
        selectors.cases_visible_to(user=user).filter(pk=case.merged_into_id).first() if case.merged_into_id else None
    )
    return render(
        request,
        "command/case_detail.html",
        {
            "case": case,
            "forms": forms,
            "routing": routing,
            "may_dispatch": Action.DISPATCH in actions,
            "may_merge": Action.MERGE in actions,
            "duplicates": duplicates,
            "sources": sources if len(sources) > 1 else [],
            "photos": photos,
            "timeline": list(selectors.case_timeline(case=case)),
            "map_data": _case_map(case),
            "merged_into": merged_into,
            "refusal": refusal,
            "here": request.get_full_path(),
        },
        status=status,
    )


@login_required
@require_GET
def case_detail(request: HttpRequest, case_id: int) -> HttpResponse:
    return _render_case(request, _visible_case(request.user, case_id))


def _check_may_act(*, case: Case, user: User, action: Action) -> None:
    """Refuse early, with the workflow's own errors, an action this user may not take now.

    The service checks again under the row lock; this only lets the screen answer 409/403
    before validating a form the user could not submit anyway.
    """
    if action in selectors.case_actions_for(case=case, user=user):
        return
    transition = workflow.transition_for(state=case.state, action=action, case_number=case.number)
    workflow.check_role(transition=transition, role=user.role)
    raise workflow.ActionNotPermitted(role=user.role, action=action, reason="该案件不在您的管辖范围内")


@login_required
@require_POST
def case_act(request: HttpRequest, case_id: int, action: str) -> HttpResponse:
    """One workflow action on one case: validate its form, call its service, go back."""
    user = request.user
    case = _visible_case(user, case_id)
    form_class = ACTION_FORMS.get(action)
    if form_class is None:
        raise Http404("没有这个操作")
    try:
        _check_may_act(case=case, user=user, action=form_class.action)
        form = form_class(request.POST, request.FILES, case=case, user=user)
        if not form.is_valid():
            return _render_case(request, case, bound=form, status=400)
        try:
            updated = form.submit()
        except ValidationError as error:
            form.add_service_error(error)
            return _render_case(request, case, bound=form, status=400)
    except workflow.TransitionNotAllowed as refusal:
        return _render_case(request, _visible_case(user, case_id), refusal=str(refusal), status=409)
    except workflow.ActionNotPermitted as refusal:
        return _render_case(request, case, refusal=str(refusal), status=403)
    messages.success(request, _done_message(form_class.action, updated))
    return redirect(_safe_next(request) or reverse("command:case_detail", args=[updated.pk]))


def _done_message(action: Action, case: Case) -> str:
    text = f"案件 {case.number}：{Action(action).label}完成，当前状态“{case.get_state_display()}”"
    if case.current_department_id:
        text += f"，责任部门：{case.current_department}"
    return text


@login_required
@require_GET
def case_photo(request: HttpRequest, photo_id: int) -> FileResponse:
    """A case photo, only for users who may see the case (uploaded files are never public)."""
    photo = get_object_or_404(
        CasePhoto.objects.filter(case__in=selectors.cases_visible_to(user=request.user)), pk=photo_id
    )
    try:
        stored = photo.image.open("rb")
    except FileNotFoundError:
        raise Http404("照片文件缺失") from None
    response = FileResponse(stored, content_type=PHOTO_TYPES.get(photo.image_format, "image/jpeg"))
    response["Cache-Control"] = "private, max-age=3600"
    return response


# --- hotline registration -------------------------------------------------------------------


def _scope_outline(user: User) -> dict[str, Any]:
    """Boundaries to click on when there are no base-map tiles: the user's grids, else the streets."""
    if user.community_id or user.street_id:
        grids = grids_valid_on()
        grids = (
            grids.filter(community_id=user.community_id)
            if user.community_id
            else grids.filter(community__street_id=user.street_id)
        )
        rows = grids.annotate(shape=AsGeoJSON("geom", precision=6)).values_list("name", "shape")[:OUTLINE_LIMIT]
    else:
        rows = Street.objects.annotate(shape=AsGeoJSON("geom", precision=5)).values_list("name", "shape")
    features = [
        {"type": "Feature", "geometry": json.loads(shape), "properties": {"name": name}} for name, shape in rows
    ]
    return {"type": "FeatureCollection", "features": features}


@login_required
@require_http_methods(["GET", "POST"])
def register(request: HttpRequest) -> HttpResponse:
    """登记: the command center records a hotline (12345), public or video report."""
    user = request.user
    if not may_register(user):
        return _denied(request, "您的角色不能登记案件")
    status = 200
    if request.method == "POST":
        form = RegisterForm(request.POST, request.FILES)
        status = 400
        if form.is_valid():
            try:
                case = form.submit(actor=user)
            except PointOutsideJurisdiction as error:
                form.add_error(None, str(error))
            except workflow.ActionNotPermitted as error:
                form.add_error(None, str(error))
                status = 403
            except ValidationError as error:
                form.add_error("photos" if str(getattr(error, "code", "")).startswith("photo") else None, error)
            else:
                messages.success(request, f"已登记，案件编号 {case.number}，当前状态“{case.get_state_display()}”")
                return redirect("command:case_detail", case_id=case.pk)
    else:
        form = RegisterForm()
    return render(request, "command/register.html", {"form": form, "outline": _scope_outline(user)}, status=status)


# --- indicators --------------------------------------------------------------------------------

_INDICATOR_TABLES: dict[str, Callable[..., list[dict[str, Any]]]] = {
    "street": lambda **period: indicators.region_indicators(level="street", **period),
    "community": lambda **period: indicators.region_indicators(level="community", **period),
    "grid": lambda **period: indicators.region_indicators(level="grid", **period),
    "department": indicators.department_indicators,
    "grid_worker": indicators.grid_worker_indicators,
    "dispatcher": indicators.dispatcher_indicators,
    "operator": indicators.operator_indicators,
}


@login_required
@require_GET
def indicators_page(request: HttpRequest) -> HttpResponse:
    """综合评价: the indicator table of a period at one level, with CSV and Excel downloads."""
    if not may_see_indicators(request.user):
        return _denied(request, "您没有查看综合评价的权限")
    form = IndicatorForm(request.GET if "level" in request.GET else IndicatorForm.default_period())
    context: dict[str, Any] = {"form": form}
    if not form.is_valid():
        return render(request, "command/indicators.html", context, status=400)
    level = form.cleaned_data["level"]
    start, end = indicators.period_bounds(first_day=form.cleaned_data["start"], last_day=form.cleaned_data["end"])
    # Only the viewer's street, community or department (events.indicators.IndicatorScope), exports included.
    scope = indicators.indicator_scope_for(user=request.user)
    rows = _INDICATOR_TABLES[level](start=start, end=end, scope=scope)
    stem = f"indicators-{level}-{form.cleaned_data['start']:%Y%m%d}-{form.cleaned_data['end']:%Y%m%d}"
    download = request.GET.get("format")
    if download == "csv":
        response = HttpResponse(indicators.export_csv(kind=level, rows=rows), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{stem}.csv"'
        return response
    if download == "xlsx":
        response = HttpResponse(
            indicators.export_xlsx(tables={level: rows}, title=form.title()),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
        response["Content-Disposition"] = f'attachment; filename="{stem}.xlsx"'
        return response
    columns = indicators.COLUMNS[indicators.TABLE_COLUMNS[level]]
    params = request.GET.copy()
    params.pop("format", None)
    context.update(
        title=form.title(),
        headers=[header for _, header in columns],
        table=[[row.get(field) for field, _ in columns] for row in rows],
        query=params.urlencode(),
    )
    return render(request, "command/indicators.html", context)
