"""综合评价: indicators for any period, per region, per department and per position, and their export.

Definitions (DESIGN.md §3), for a period [start, end) evaluated as of `as_of`:

- 应结案数: cases whose 应结案 time (due_at: the 处置 deadline set at dispatch, moved by
  approved extensions) falls in the period, excluding voided, merged, self-handled and
  currently deferred (挂账) cases. Open overdue cases stay in this denominator.
- 结案数: of those, cases closed by `as_of`.  结案率 = 结案数 / 应结案数.
- 按期结案数: of the closed, those whose last 处置反馈 came by due_at.  按期结案率 = 按期结案数 / 应结案数.
- 超期未结: of those, cases not closed by `as_of` and past due_at (shown on its own).
- 立案数: cases filed in the period.  漏报数: filed cases whose earliest source report
  (the case itself or a report merged into it) came from the hotline or the public.
- 按时处置率: 处置反馈 rows in the period made by the step deadline / all 处置反馈 rows.
- 返工率: 核查不通过 rows / 处置反馈 rows in the period.
- 监督员: 有效上报率 = own reports later filed / own reports; 按时核实率 and 按时核查率 from the
  核实/核查 rows (on time = made by the step deadline recorded in the row).
- 派遣员: 按时派遣率 (派遣 rows made by the step deadline); 准确派遣率 = dispatches not
  undone by a 回退 / dispatches.
- 受理员/值班长: 按时立案率.

Rates are percentages with two decimals (half up), None when the denominator is zero.
Case-level figures come from the milestone columns of Case, which only the workflow writes
in the same transaction as the history rows; position figures come from the history.

Every query reads one table through a covering index, without joins (docs/performance.md
§7): 漏报 reads Case.first_source (written when a duplicate is absorbed), history rows
carry the case's street, community and grid.

Scope (issue 8, L3): every table takes an `IndicatorScope`; `indicator_scope_for(user=…)`
gives a viewer's. Screens and exports must pass it; the default, the whole district, is for
the system's own callers (the daily snapshot, the benchmark).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone
from openpyxl import Workbook
from openpyxl.styles import Font

from accounts.models import Role, User
from accounts.roles import is_district_leader
from events import workflow
from events.models import Case, CaseHistory
from events.workflow import Action

Row = dict[str, Any]

LEVELS = {"street": "street", "community": "community", "grid": "grid"}

_COMMON = [("code", "编码"), ("name", "名称")]
COLUMNS: dict[str, list[tuple[str, str]]] = {
    "region": [
        *_COMMON,
        ("filed", "立案数"),
        ("due", "应结案数"),
        ("closed", "结案数"),
        ("close_rate", "结案率(%)"),
        ("closed_on_time", "按期结案数"),
        ("on_time_close_rate", "按期结案率(%)"),
        ("overdue_open", "超期未结数"),
        ("handled", "处置数"),
        ("handled_on_time", "按时处置数"),
        ("on_time_handle_rate", "按时处置率(%)"),
        ("reworks", "返工数"),
        ("rework_rate", "返工率(%)"),
        ("missed", "漏报数"),
        ("missed_rate", "漏报率(%)"),
    ],
    "department": [
        *_COMMON,
        ("dispatched", "派遣数"),
        ("returned", "回退数"),
        ("extensions", "延时申请数"),
        ("due", "应结案数"),
        ("closed", "结案数"),
        ("close_rate", "结案率(%)"),
        ("closed_on_time", "按期结案数"),
        ("on_time_close_rate", "按期结案率(%)"),
        ("overdue_open", "超期未结数"),
        ("handled", "处置数"),
        ("handled_on_time", "按时处置数"),
        ("on_time_handle_rate", "按时处置率(%)"),
        ("reworks", "返工数"),
        ("rework_rate", "返工率(%)"),
    ],
    "grid_worker": [
        *_COMMON,
        ("reports", "上报数"),
        ("valid_reports", "有效上报数"),
        ("valid_report_rate", "有效上报率(%)"),
        ("self_handled", "自处理数"),
        ("verifications", "核实数"),
        ("verifications_on_time", "按时核实数"),
        ("on_time_verify_rate", "按时核实率(%)"),
        ("checks", "核查数"),
        ("checks_on_time", "按时核查数"),
        ("on_time_check_rate", "按时核查率(%)"),
    ],
    "dispatcher": [
        *_COMMON,
        ("dispatches", "派遣数"),
        ("dispatches_on_time", "按时派遣数"),
        ("on_time_dispatch_rate", "按时派遣率(%)"),
        ("accurate", "准确派遣数"),
        ("accurate_rate", "准确派遣率(%)"),
    ],
    "operator": [
        *_COMMON,
        ("filings", "立案数"),
        ("filings_on_time", "按时立案数"),
        ("on_time_file_rate", "按时立案率(%)"),
    ],
}
TABLE_COLUMNS = {"street": "region", "community": "region", "grid": "region"} | {
    k: k for k in ("department", "grid_worker", "dispatcher", "operator")
}
TABLE_TITLES = {
    "street": "街道",
    "community": "社区",
    "grid": "网格",
    "department": "专业部门",
    "grid_worker": "监督员（网格员）",
    "dispatcher": "派遣员",
    "operator": "受理员、值班长",
}


@dataclass(frozen=True)
class IndicatorScope:
    """The part of the figures a viewer may see: a street, a community, a department, or nothing.

    Places and people are scoped through the cases: a street's tables count the street's
    cases and the history rows of those cases (so a district dispatcher appears on a street's
    table with the street's dispatches only). A department's viewer gets the department
    table with its own row only.
    """

    street_id: int | None = None
    community_id: int | None = None
    department_id: int | None = None
    nothing: bool = False

    @property
    def shows_places_and_people(self) -> bool:
        return not self.nothing and self.department_id is None

    def cases(self, cases: QuerySet[Case]) -> QuerySet[Case]:
        if self.nothing:
            return cases.none()
        if self.community_id is not None:
            return cases.filter(community_id=self.community_id)
        if self.street_id is not None:
            return cases.filter(street_id=self.street_id)
        if self.department_id is not None:
            return cases.filter(current_department_id=self.department_id)
        return cases

    def history(self, rows: QuerySet[CaseHistory]) -> QuerySet[CaseHistory]:
        if self.nothing:
            return rows.none()
        if self.community_id is not None:
            return rows.filter(community_id=self.community_id)
        if self.street_id is not None:
            return rows.filter(street_id=self.street_id)
        if self.department_id is not None:
            return rows.filter(department_id=self.department_id)
        return rows


DISTRICT = IndicatorScope()


def indicator_scope_for(*, user: User) -> IndicatorScope:
    """The indicators `user` may see: the admin, planners (aggregates are their work) and
    district leaders (a leader bound to no place) everything; street or community staff
    their street or community; a department's handlers their department; grid workers, and
    other staff bound to no place (docs/security.md L6), nothing."""
    if user.is_superuser or user.role in (Role.ADMIN, Role.PLANNER):
        return DISTRICT
    if user.role == Role.DEPARTMENT_HANDLER:
        if user.department_id is None:
            return IndicatorScope(nothing=True)
        return IndicatorScope(department_id=user.department_id)
    if user.role == Role.GRID_WORKER:
        return IndicatorScope(nothing=True)
    if user.community_id is not None:
        return IndicatorScope(community_id=user.community_id)
    if user.street_id is not None:
        return IndicatorScope(street_id=user.street_id)
    return DISTRICT if is_district_leader(user) else IndicatorScope(nothing=True)


def percent(numerator: int, denominator: int) -> Decimal | None:
    """numerator / denominator as a percentage with two decimals, rounded half up."""
    if not denominator:
        return None
    return (Decimal(numerator) * 100 / Decimal(denominator)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    return period_bounds(first_day=day, last_day=day)


def period_bounds(*, first_day: dt.date, last_day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[local midnight of first_day, local midnight after last_day)."""
    tz = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    start = dt.datetime.combine(first_day, dt.time(), tzinfo=tz)
    end = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(), tzinfo=tz)
    return start, end


def _on_time() -> Q:
    return Q(step_deadline__isnull=False, created_at__lte=F("step_deadline"))


def _closing_counts(cases: QuerySet[Case], group: str, *, start, end, as_of) -> Iterable[Row]:
    closed = Q(closed_at__isnull=False, closed_at__lte=as_of)
    return (
        cases.filter(due_at__gte=start, due_at__lt=end, state__in=workflow.EVALUATED_STATES)
        .values(group)
        .annotate(
            due=Count("id"),
            closed=Count("id", filter=closed),
            closed_on_time=Count("id", filter=closed & Q(handled_at__lte=F("due_at"))),
            overdue_open=Count("id", filter=~closed & Q(due_at__lt=as_of)),
        )
        .order_by()
    )


def _handling_counts(history: QuerySet[CaseHistory], group: str) -> Iterable[Row]:
    return (
        history.filter(action__in=[Action.HANDLE, Action.CHECK_FAIL])
        .values(group)
        .annotate(
            handled=Count("id", filter=Q(action=Action.HANDLE)),
            handled_on_time=Count("id", filter=Q(action=Action.HANDLE) & _on_time()),
            reworks=Count("id", filter=Q(action=Action.CHECK_FAIL)),
        )
        .order_by()
    )


def _collect(rows: dict[Any, Row], queryset: Iterable[Any], group: str) -> None:
    """Add each aggregated row of `queryset` to `rows`, keyed by its `group` value."""
    for values in queryset:
        values = dict(values)
        rows.setdefault(values.pop(group), {}).update(values)


def _finish(rows: dict[Any, Row], names: dict[Any, tuple[str, str]], kind: str) -> list[Row]:
    result = []
    numeric = [field for field, _ in COLUMNS[kind] if field not in ("code", "name") and not field.endswith("_rate")]
    for key, values in rows.items():
        if key is None and kind in ("region", "department"):
            continue
        code, name = names.get(key, ("", ""))
        row: Row = {"key": key, "code": code, "name": name}
        row.update({field: values.get(field, 0) for field in numeric})
        result.append(row)
    for row in result:
        row["close_rate"] = percent(row.get("closed", 0), row.get("due", 0))
        row["on_time_close_rate"] = percent(row.get("closed_on_time", 0), row.get("due", 0))
        row["on_time_handle_rate"] = percent(row.get("handled_on_time", 0), row.get("handled", 0))
        row["rework_rate"] = percent(row.get("reworks", 0), row.get("handled", 0))
        row["missed_rate"] = percent(row.get("missed", 0), row.get("filed", 0))
        row["valid_report_rate"] = percent(row.get("valid_reports", 0), row.get("reports", 0))
        row["on_time_verify_rate"] = percent(row.get("verifications_on_time", 0), row.get("verifications", 0))
        row["on_time_check_rate"] = percent(row.get("checks_on_time", 0), row.get("checks", 0))
        row["on_time_dispatch_rate"] = percent(row.get("dispatches_on_time", 0), row.get("dispatches", 0))
        row["accurate_rate"] = percent(row.get("accurate", 0), row.get("dispatches", 0))
        row["on_time_file_rate"] = percent(row.get("filings_on_time", 0), row.get("filings", 0))
    wanted = {"key"} | {field for field, _ in COLUMNS[kind]}
    return sorted(
        ({k: v for k, v in row.items() if k in wanted} for row in result), key=lambda r: (r["code"], str(r["key"]))
    )


_MISSED_SOURCES = [Case.Source.HOTLINE, Case.Source.PUBLIC]
# 漏报: the first report came from the hotline or the public (first_source is null while
# nothing was merged into the case: then the case's own source is the first).
_MISSED = Q(first_source__in=_MISSED_SOURCES) | Q(first_source__isnull=True, source__in=_MISSED_SOURCES)


def region_indicators(
    *,
    start: dt.datetime,
    end: dt.datetime,
    level: str = "street",
    as_of: dt.datetime | None = None,
    scope: IndicatorScope = DISTRICT,
) -> list[Row]:
    """One row per street, community or grid (the place found when the case was reported)."""
    as_of = as_of or timezone.now()
    field = LEVELS[level]
    group = f"{field}_id"
    rows: dict[Any, Row] = {}
    if not scope.shows_places_and_people:
        return []
    cases = scope.cases(Case.objects.all())
    _collect(rows, _closing_counts(cases, group, start=start, end=end, as_of=as_of), group)
    filed = (
        cases.filter(filed_at__gte=start, filed_at__lt=end)
        .values(group)
        .annotate(filed=Count("id"), missed=Count("id", filter=_MISSED))
        .order_by()
    )
    _collect(rows, filed, group)
    history = scope.history(CaseHistory.objects.filter(created_at__gte=start, created_at__lt=end))
    _collect(rows, _handling_counts(history, group), group)
    model = Case._meta.get_field(field).related_model
    assert model is not None
    names = {obj.pk: (obj.code, obj.name) for obj in model._default_manager.filter(pk__in=list(rows))}  # type: ignore[attr-defined]
    return _finish(rows, names, "region")


def department_indicators(
    *, start: dt.datetime, end: dt.datetime, as_of: dt.datetime | None = None, scope: IndicatorScope = DISTRICT
) -> list[Row]:
    """One row per department: closing figures by the responsible department, work figures by its history rows."""
    from geodata.models import Department

    as_of = as_of or timezone.now()
    rows: dict[Any, Row] = {}
    _collect(
        rows,
        _closing_counts(scope.cases(Case.objects.all()), "current_department_id", start=start, end=end, as_of=as_of),
        "current_department_id",
    )
    history = scope.history(CaseHistory.objects.filter(created_at__gte=start, created_at__lt=end))
    _collect(rows, _handling_counts(history, "department_id"), "department_id")
    flow = (
        history.filter(action__in=[Action.DISPATCH, Action.RETURN, Action.REQUEST_EXTENSION])
        .values("department_id")
        .annotate(
            dispatched=Count("id", filter=Q(action=Action.DISPATCH)),
            returned=Count("id", filter=Q(action=Action.RETURN)),
            extensions=Count("id", filter=Q(action=Action.REQUEST_EXTENSION)),
        )
        .order_by()
    )
    _collect(rows, flow, "department_id")
    names = {d.pk: (d.code, d.name) for d in Department.objects.filter(pk__in=[k for k in rows if k is not None])}
    return _finish(rows, names, "department")


def _actor_names(rows: dict[Any, Row], none_label: str = "") -> dict[Any, tuple[str, str]]:
    from accounts.models import User

    names: dict[Any, tuple[str, str]] = {
        u.pk: (u.username, u.get_full_name() or u.username)
        for u in User.objects.filter(pk__in=[k for k in rows if k is not None])
    }
    if None in rows:
        names[None] = ("system", none_label)
    return names


def grid_worker_indicators(
    *, start: dt.datetime, end: dt.datetime, as_of: dt.datetime | None = None, scope: IndicatorScope = DISTRICT
) -> list[Row]:
    """监督员: reports, valid reports, self-handled, 核实 and 核查 on time."""
    as_of = as_of or timezone.now()
    if not scope.shows_places_and_people:
        return []
    history = scope.history(
        CaseHistory.objects.filter(
            created_at__gte=start, created_at__lt=end, actor__isnull=False, actor_role=Role.GRID_WORKER
        )
    )
    valid = Q(case__filed_at__isnull=False, case__filed_at__lte=as_of)
    checks = [Action.CHECK_PASS, Action.CHECK_FAIL]
    counts = (
        history.filter(action__in=[Action.REPORT, Action.SELF_HANDLE, Action.VERIFY, *checks])
        .values("actor_id")
        .annotate(
            reports=Count("id", filter=Q(action=Action.REPORT)),
            valid_reports=Count("id", filter=Q(action=Action.REPORT) & valid),
            self_handled=Count("id", filter=Q(action=Action.SELF_HANDLE)),
            verifications=Count("id", filter=Q(action=Action.VERIFY)),
            verifications_on_time=Count("id", filter=Q(action=Action.VERIFY) & _on_time()),
            checks=Count("id", filter=Q(action__in=checks)),
            checks_on_time=Count("id", filter=Q(action__in=checks) & _on_time()),
        )
        .order_by()
    )
    rows: dict[Any, Row] = {}
    _collect(rows, counts, "actor_id")
    return _finish(rows, _actor_names(rows), "grid_worker")


def dispatcher_indicators(
    *, start: dt.datetime, end: dt.datetime, as_of: dt.datetime | None = None, scope: IndicatorScope = DISTRICT
) -> list[Row]:
    """派遣员: dispatches, on time, and accurate (not undone by a 回退 by `as_of`)."""
    as_of = as_of or timezone.now()
    if not scope.shows_places_and_people:
        return []
    undone = CaseHistory.objects.filter(reverts=OuterRef("pk"), created_at__lte=as_of)
    counts = (
        scope.history(CaseHistory.objects.filter(created_at__gte=start, created_at__lt=end, action=Action.DISPATCH))
        .annotate(undone=Exists(undone))
        .values("actor_id")
        .annotate(
            dispatches=Count("id"),
            dispatches_on_time=Count("id", filter=_on_time()),
            accurate=Count("id", filter=Q(undone=False)),
        )
        .order_by()
    )
    rows: dict[Any, Row] = {}
    _collect(rows, counts, "actor_id")
    return _finish(rows, _actor_names(rows, "系统自动派遣"), "dispatcher")


def operator_indicators(
    *, start: dt.datetime, end: dt.datetime, as_of: dt.datetime | None = None, scope: IndicatorScope = DISTRICT
) -> list[Row]:
    """受理员/值班长: 立案 on time."""
    if not scope.shows_places_and_people:
        return []
    counts = (
        scope.history(CaseHistory.objects.filter(created_at__gte=start, created_at__lt=end, action=Action.FILE))
        .values("actor_id")
        .annotate(filings=Count("id"), filings_on_time=Count("id", filter=_on_time()))
        .order_by()
    )
    rows: dict[Any, Row] = {}
    _collect(rows, counts, "actor_id")
    return _finish(rows, _actor_names(rows), "operator")


def all_tables(
    *, start: dt.datetime, end: dt.datetime, as_of: dt.datetime | None = None, scope: IndicatorScope = DISTRICT
) -> dict[str, list[Row]]:
    as_of = as_of or timezone.now()
    period: dict[str, Any] = {"start": start, "end": end, "as_of": as_of, "scope": scope}
    tables = {level: region_indicators(level=level, **period) for level in LEVELS}
    tables["department"] = department_indicators(**period)
    tables["grid_worker"] = grid_worker_indicators(**period)
    tables["dispatcher"] = dispatcher_indicators(**period)
    tables["operator"] = operator_indicators(**period)
    return tables


# --- export ---------------------------------------------------------------------------------


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return float(value)
    return value


def export_csv(*, kind: str, rows: list[Row]) -> bytes:
    """CSV with Chinese headers, UTF-8 with BOM so that Excel opens it correctly."""
    columns = COLUMNS[TABLE_COLUMNS.get(kind, kind)]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([header for _, header in columns])
    for row in rows:
        writer.writerow(["" if row.get(field) is None else row.get(field) for field, _ in columns])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def export_xlsx(*, tables: dict[str, list[Row]], title: str = "") -> bytes:
    """One worksheet per table, headers in bold; rates as numbers."""
    workbook = Workbook()
    workbook.remove(workbook.active)  # type: ignore[arg-type]
    for kind, rows in tables.items():
        sheet = workbook.create_sheet(TABLE_TITLES.get(kind, kind)[:31])
        columns = COLUMNS[TABLE_COLUMNS.get(kind, kind)]
        if title:
            sheet.append([title])
        sheet.append([header for _, header in columns])
        for cell in sheet[sheet.max_row]:
            cell.font = Font(bold=True)
        for row in rows:
            sheet.append([_cell(row.get(field)) for field, _ in columns])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
