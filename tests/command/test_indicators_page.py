"""综合评价 page: a period and a level, the table of events.indicators, CSV and Excel downloads."""

import io
import re

import pytest
from django.contrib.auth.models import Permission
from openpyxl import load_workbook

from events import services
from tests.command.flows import dispatched, logged_in
from tests.events.factories import POINT_NW, jpeg, local

pytestmark = pytest.mark.django_db

NOVEMBER = "?start=2026-11-01&end=2026-11-30"


@pytest.fixture
def analyst(world):
    """The leader, given the right to view indicators."""
    world.leader.user_permissions.add(Permission.objects.get(codename="view_indicatorsnapshot"))
    return world.leader


@pytest.fixture
def month(world):
    """November: one case closed on time, one dispatched and left overdue."""
    closed = dispatched(world)
    services.case_handle(
        case=closed, actor=world.handler, comment="已清运", photos=[jpeg()], at=local(2026, 11, 16, 11, 0)
    )
    services.case_check(
        case=closed, actor=world.grid_worker, passed=True, photos=[jpeg()], at=local(2026, 11, 16, 11, 30)
    )
    services.case_close(case=closed, actor=world.shift_leader, at=local(2026, 11, 16, 11, 45))
    dispatched(world, point=POINT_NW)


def table(html: str) -> list[list[str]]:
    body = html.split('id="indicator-table"')[1].split("</tbody>")[0]
    return [re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)[1:]]


def test_the_page_needs_the_right_to_view_indicators(world):
    # Leaders, shift leaders and planners have the right through their role (accounts/roles.py).
    assert logged_in(world.leader).get("/command/indicators/").status_code == 200
    response = logged_in(world.dispatcher).get("/command/indicators/")
    assert response.status_code == 403
    assert '<div class="refusal" role="alert">您没有查看综合评价的权限</div>' in response.content.decode()
    assert logged_in(world.handler).get(f"/command/indicators/{NOVEMBER}&level=street&format=csv").status_code == 403


def test_street_table_counts_due_closed_on_time_and_overdue(world, analyst, month):
    response = logged_in(analyst).get(f"/command/indicators/{NOVEMBER}&level=street")
    html = response.content.decode()
    assert response.status_code == 200
    assert '<h2 id="indicator-title">街道综合评价 2026-11-01 至 2026-11-30</h2>' in html
    headers = re.findall(r"<th>(.+?)</th>", html.split('id="indicator-table"')[1].split("</thead>")[0])
    assert headers[:9] == [
        "编码",
        "名称",
        "立案数",
        "应结案数",
        "结案数",
        "结案率(%)",
        "按期结案数",
        "按期结案率(%)",
        "超期未结数",
    ]
    assert table(html) == [
        [
            "500104001",
            "测试街道",
            "2",
            "2",
            "1",
            "50.00",
            "1",
            "50.00",
            "1",
            "1",
            "1",
            "100.00",
            "0",
            "0.00",
            "0",
            "0.00",
        ]
    ]


def test_department_table_and_empty_rates_as_dashes(world, analyst, month):
    html = logged_in(analyst).get(f"/command/indicators/{NOVEMBER}&level=department").content.decode()
    rows = table(html)
    assert [r[:2] for r in rows] == [["ZY-HW", "街道环卫所"]]
    assert rows[0][2:4] == ["2", "0"]  # 派遣数, 回退数
    empty = logged_in(analyst).get("/command/indicators/?start=2026-10-01&end=2026-10-31&level=street")
    assert "该区间没有数据" in empty.content.decode()


def test_csv_download_is_the_same_table_with_a_bom(world, analyst, month):
    response = logged_in(analyst).get(f"/command/indicators/{NOVEMBER}&level=street&format=csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="indicators-street-20261101-20261130.csv"'
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    assert text[1:].splitlines() == [
        "编码,名称,立案数,应结案数,结案数,结案率(%),按期结案数,按期结案率(%),超期未结数,处置数,按时处置数,"
        "按时处置率(%),返工数,返工率(%),漏报数,漏报率(%)",
        "500104001,测试街道,2,2,1,50.00,1,50.00,1,1,1,100.00,0,0.00,0,0.00",
    ]


def test_excel_download_has_a_title_a_bold_header_and_numbers(world, analyst, month):
    response = logged_in(analyst).get(f"/command/indicators/{NOVEMBER}&level=dispatcher&format=xlsx")
    assert response["Content-Disposition"] == 'attachment; filename="indicators-dispatcher-20261101-20261130.xlsx"'
    sheet = load_workbook(io.BytesIO(response.content)).active
    values = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert sheet.title == "派遣员"
    assert values[0][0] == "派遣员综合评价 2026-11-01 至 2026-11-30"
    assert values[1] == ["编码", "名称", "派遣数", "按时派遣数", "按时派遣率(%)", "准确派遣数", "准确派遣率(%)"]
    assert values[2] == ["dispatcher", "dispatcher", 2, 2, 100.0, 2, 100.0]
    assert sheet.cell(row=2, column=1).font.bold


def test_a_reversed_period_is_a_form_error(world, analyst):
    response = logged_in(analyst).get("/command/indicators/?start=2026-11-30&end=2026-11-01&level=street")
    assert response.status_code == 400
    assert "结束日期不能早于开始日期" in response.content.decode()
    assert 'id="indicator-table"' not in response.content.decode()
