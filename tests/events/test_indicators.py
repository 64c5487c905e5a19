"""综合评价: the published monthly figure, per-department and per-position scores, exports."""

import csv
import datetime as dt
import io
from decimal import Decimal

import openpyxl
import pytest

from events import indicators, services
from events.models import Case
from events.workflow import State
from tests.events.factories import POINT_SW, CategoryFactory, jpeg, local

pytestmark = pytest.mark.django_db


def bulk_cases(world, specs):
    """specs: (count, state, department, due_at, handled_at, closed_at); written directly, fast."""
    category = world.category
    cases = []
    serial = 0
    for count, state, department, due_at, handled_at, closed_at in specs:
        for _ in range(count):
            serial += 1
            cases.append(
                Case(
                    number=f"E010220261101{serial:05d}",
                    category=category,
                    source=Case.Source.GRID_WORKER,
                    location=POINT_SW,
                    grid=world.grid_sw,
                    community=world.community,
                    street=world.street,
                    description="x",
                    state=state,
                    reported_at=due_at - dt.timedelta(days=1),
                    filed_at=due_at - dt.timedelta(days=1),
                    dispatched_at=due_at - dt.timedelta(hours=20),
                    current_department=department,
                    due_at=due_at,
                    handled_at=handled_at,
                    closed_at=closed_at,
                )
            )
    Case.objects.bulk_create(cases)


def test_monthly_close_rates_reproduce_the_published_figure(world):
    # Given November 2026: 972 cases due, 911 of them closed, 737 closed on time, 61 open and overdue
    due = local(2026, 11, 20, 16, 0)
    early, late = due - dt.timedelta(hours=2), due + dt.timedelta(days=1)
    closed_at = due + dt.timedelta(days=2)
    san, green = world.sanitation, world.greening
    bulk_cases(
        world,
        [
            (450, State.CLOSED, san, due, early, closed_at),
            (110, State.CLOSED, san, due, late, closed_at),
            (40, State.DISPATCHED, san, due, None, None),
            (287, State.CLOSED, green, due, early, closed_at),
            (64, State.CLOSED, green, due, late, closed_at),
            (21, State.HANDLED, green, due, late, None),
            # Not due in November, voided, deferred or merged: none of these count
            (5, State.CLOSED, san, local(2026, 12, 1, 10, 0), early, closed_at),
            (3, State.VOIDED, san, due, None, None),
            (2, State.DEFERRED, san, due, None, None),
        ],
    )
    start, end = indicators.period_bounds(first_day=dt.date(2026, 11, 1), last_day=dt.date(2026, 11, 30))
    as_of = local(2026, 12, 5, 0, 0)

    [street] = indicators.region_indicators(start=start, end=end, level="street", as_of=as_of)

    assert (street["code"], street["name"]) == ("500104001", "测试街道")
    assert (street["due"], street["closed"], street["closed_on_time"], street["overdue_open"]) == (972, 911, 737, 61)
    assert street["close_rate"] == Decimal("93.72")
    assert street["on_time_close_rate"] == Decimal("75.82")

    departments = {row["code"]: row for row in indicators.department_indicators(start=start, end=end, as_of=as_of)}
    assert {
        code: (r["due"], r["closed"], r["closed_on_time"], r["overdue_open"]) for code, r in departments.items()
    } == {
        "ZY-HW": (600, 560, 450, 40),
        "ZY-YL": (372, 351, 287, 21),
    }
    assert (departments["ZY-HW"]["close_rate"], departments["ZY-HW"]["on_time_close_rate"]) == (
        Decimal("93.33"),
        Decimal("75.00"),
    )
    assert (departments["ZY-YL"]["close_rate"], departments["ZY-YL"]["on_time_close_rate"]) == (
        Decimal("94.35"),
        Decimal("77.15"),
    )

    # As of the day the cases were due, nothing was closed yet, and nothing overdue either
    [before] = indicators.region_indicators(start=start, end=end, level="street", as_of=due)
    assert (before["due"], before["closed"], before["overdue_open"], before["close_rate"]) == (
        972,
        0,
        0,
        Decimal("0.00"),
    )


def test_percent_rounds_half_up_and_has_no_value_without_denominator():
    assert indicators.percent(911, 972) == Decimal("93.72")
    assert indicators.percent(737, 972) == Decimal("75.82")
    assert indicators.percent(1, 8) == Decimal("12.50")
    assert indicators.percent(1, 800) == Decimal("0.13")  # 0.125 -> 0.13
    assert indicators.percent(0, 0) is None


@pytest.fixture
def scenario(world):
    """Monday 2026-11-16 and Tuesday 17: five cases with on-time and late steps (see the asserts)."""
    w = world

    def report(at, source=Case.Source.GRID_WORKER):
        actor = w.grid_worker if source == Case.Source.GRID_WORKER else w.operator
        return services.case_report(
            actor=actor, source=source, category=w.category, location=POINT_SW, description="垃圾", at=at
        )

    a = report(local(2026, 11, 16, 9, 0))
    services.case_file(case=a, actor=w.operator, auto_dispatch=False, at=local(2026, 11, 16, 9, 30))  # on time
    services.case_dispatch(case=a, actor=w.dispatcher, department=w.sanitation, at=local(2026, 11, 16, 10, 0))
    services.case_handle(case=a, actor=w.handler, comment="清运", photos=[jpeg()], at=local(2026, 11, 16, 11, 0))
    services.case_check(
        case=a, actor=w.grid_worker, passed=False, comment="未清净", photos=[jpeg()], at=local(2026, 11, 16, 14, 30)
    )
    services.case_handle(case=a, actor=w.handler, comment="再清运", photos=[jpeg()], at=local(2026, 11, 16, 16, 0))
    services.case_check(case=a, actor=w.grid_worker, passed=True, photos=[jpeg()], at=local(2026, 11, 17, 10, 0))
    services.case_close(case=a, actor=w.shift_leader, at=local(2026, 11, 17, 10, 10))

    b = report(local(2026, 11, 16, 9, 10))
    services.case_file(case=b, actor=w.operator, auto_dispatch=False, at=local(2026, 11, 16, 11, 0))  # late
    services.case_dispatch(case=b, actor=w.dispatcher, department=w.greening, at=local(2026, 11, 16, 14, 30))  # late
    services.case_return(case=b, actor=w.other_handler, reason="不属于绿化", at=local(2026, 11, 16, 15, 0))
    services.case_dispatch(case=b, actor=w.dispatcher, department=w.sanitation, at=local(2026, 11, 16, 15, 10))

    c = report(local(2026, 11, 16, 9, 20))
    services.case_void(case=c, actor=w.operator, reason="非城市管理问题", at=local(2026, 11, 16, 9, 40))

    d = report(local(2026, 11, 16, 9, 0), source=Case.Source.HOTLINE)
    services.case_verify(case=d, actor=w.grid_worker, confirmed=True, at=local(2026, 11, 16, 10, 0))  # on time
    e = report(local(2026, 11, 16, 9, 0), source=Case.Source.HOTLINE)
    services.case_verify(case=e, actor=w.grid_worker, confirmed=True, at=local(2026, 11, 16, 14, 30))  # late
    start, end = indicators.period_bounds(first_day=dt.date(2026, 11, 16), last_day=dt.date(2026, 11, 17))
    return {"start": start, "end": end, "as_of": local(2026, 11, 17, 18, 0), "cases": (a, b, c, d, e)}


def test_position_scores_come_from_the_history(world, scenario):
    period = {k: scenario[k] for k in ("start", "end", "as_of")}

    [worker] = indicators.grid_worker_indicators(**period)
    assert worker["code"] == "worker"
    assert (worker["reports"], worker["valid_reports"], worker["valid_report_rate"]) == (3, 2, Decimal("66.67"))
    assert (worker["verifications"], worker["verifications_on_time"], worker["on_time_verify_rate"]) == (
        2,
        1,
        Decimal("50.00"),
    )
    assert (worker["checks"], worker["checks_on_time"], worker["on_time_check_rate"]) == (2, 1, Decimal("50.00"))

    [dispatcher] = indicators.dispatcher_indicators(**period)
    assert dispatcher["code"] == "dispatcher"
    assert (dispatcher["dispatches"], dispatcher["dispatches_on_time"], dispatcher["accurate"]) == (3, 2, 2)
    assert (dispatcher["on_time_dispatch_rate"], dispatcher["accurate_rate"]) == (Decimal("66.67"), Decimal("66.67"))

    [operator] = indicators.operator_indicators(**period)
    assert (operator["code"], operator["filings"], operator["filings_on_time"], operator["on_time_file_rate"]) == (
        "operator",
        2,
        1,
        Decimal("50.00"),
    )


def test_department_and_region_work_figures(world, scenario):
    period = {k: scenario[k] for k in ("start", "end", "as_of")}
    departments = {r["code"]: r for r in indicators.department_indicators(**period)}
    san, green = departments["ZY-HW"], departments["ZY-YL"]
    assert (san["dispatched"], san["returned"], san["handled"], san["handled_on_time"], san["reworks"]) == (
        2,
        0,
        2,
        2,
        1,
    )
    assert (san["on_time_handle_rate"], san["rework_rate"]) == (Decimal("100.00"), Decimal("50.00"))
    # A (due Mon 16:00, last handled 16:00, closed) and B (due Tue 10:10, still open)
    assert (san["due"], san["closed"], san["closed_on_time"], san["overdue_open"]) == (2, 1, 1, 1)
    assert (green["dispatched"], green["returned"], green["due"], green["close_rate"]) == (1, 1, 0, None)

    [street] = indicators.region_indicators(level="street", **period)
    assert (street["filed"], street["due"], street["closed"], street["overdue_open"], street["missed"]) == (
        2,
        2,
        1,
        1,
        0,
    )
    assert (street["handled"], street["reworks"], street["rework_rate"]) == (2, 1, Decimal("50.00"))
    [community] = indicators.region_indicators(level="community", **period)
    [grid] = indicators.region_indicators(level="grid", **period)
    assert (community["code"], community["filed"]) == ("500104001001", 2)
    assert (grid["code"], grid["filed"]) == ("500104001001003", 2)


def test_exports_carry_chinese_headers_and_the_figures(world, scenario):
    period = {k: scenario[k] for k in ("start", "end", "as_of")}
    tables = indicators.all_tables(**period)
    assert set(tables) == {"street", "community", "grid", "department", "grid_worker", "dispatcher", "operator"}

    text = indicators.export_csv(kind="dispatcher", rows=tables["dispatcher"]).decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows == [
        ["编码", "名称", "派遣数", "按时派遣数", "按时派遣率(%)", "准确派遣数", "准确派遣率(%)"],
        ["dispatcher", "dispatcher", "3", "2", "66.67", "2", "66.67"],
    ]

    workbook = openpyxl.load_workbook(io.BytesIO(indicators.export_xlsx(tables=tables, title="2026年11月16日—17日")))
    assert workbook.sheetnames == ["街道", "社区", "网格", "专业部门", "监督员（网格员）", "派遣员", "受理员、值班长"]
    sheet = workbook["街道"]
    header = [c.value for c in sheet[2]]
    values = dict(zip(header, [c.value for c in sheet[3]], strict=True))
    assert sheet["A1"].value == "2026年11月16日—17日"
    assert (values["名称"], values["立案数"], values["应结案数"], values["结案率(%)"]) == ("测试街道", 2, 2, 50.0)


def test_categories_of_other_kinds_do_not_disturb_grouping(world):
    other = CategoryFactory(kind="C", major_code="01", minor_code="01", minor_name="上水井盖")
    assert other.code == "C0101"
    start, end = indicators.day_bounds(dt.date(2026, 11, 16))
    assert indicators.region_indicators(start=start, end=end, as_of=end) == []
