"""部门案件: a department handler's cases, with 处置反馈, 申请延时 and 回退 on each row."""

import re

import pytest

from events import services
from tests.command.flows import dispatched, logged_in
from tests.events.factories import POINT_NW

pytestmark = pytest.mark.django_db


def page(user, query="") -> str:
    response = logged_in(user).get(f"/command/department/{query}")
    assert response.status_code == 200
    return response.content.decode()


def rows(html: str) -> list[str]:
    return re.findall(r'<tr data-case="(\w+)"', html)


def test_a_handler_sees_the_cases_their_department_holds(world):
    ours = dispatched(world)
    theirs = dispatched(world, point=POINT_NW, department=world.greening)
    assert rows(page(world.handler)) == [ours.number]
    assert rows(page(world.other_handler)) == [theirs.number]


def test_each_row_offers_handle_extension_and_return(world):
    case = dispatched(world)
    html = page(world.handler)
    row = html.split(f'<tr data-case="{case.number}"')[1].split("</tr>")[0]
    assert re.findall(r"<summary>(.+?)</summary>", row) == ["处置反馈", "申请延时", "回退"]
    # The forms post back to this page, and each field has its own id on the page
    assert row.count('<input type="hidden" name="next" value="/command/department/">') == 3
    assert f'id="id_{case.pk}_handle_photos"' in row
    assert 'data-light="red"' in row


def test_a_handled_or_returned_case_moves_to_the_done_tab(world):
    case = dispatched(world)
    client = logged_in(world.handler)
    response = client.post(
        f"/command/cases/{case.pk}/return/", {"comment": "不属于环卫职责", "next": "/command/department/"}
    )
    assert response["Location"] == "/command/department/"
    after = client.get("/command/department/").content.decode()
    assert rows(after) == []
    assert f"案件 {case.number}：回退完成，当前状态“待派遣”" in after
    assert rows(page(world.handler, "?tab=done")) == [case.number]


def test_an_extension_pending_case_stays_with_the_department(world):
    case = dispatched(world)
    services.case_extension_request(case=case, actor=world.handler, amount=2, unit="hours", reason="等材料")
    html = page(world.handler)
    row = html.split(f'<tr data-case="{case.number}"')[1].split("</tr>")[0]
    assert '<td class="c-state">延时待审</td>' in row
    # Asking again is not possible while waiting; handling and returning are
    assert re.findall(r"<summary>(.+?)</summary>", row) == ["处置反馈", "回退"]


def test_a_user_without_a_department_is_told_so(world):
    dispatched(world)
    html = page(world.operator)
    assert "您不属于任何专业部门，这里没有需要您处置的案件。" in html
    assert rows(html) == []
