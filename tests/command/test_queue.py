"""The command center's queue: scope, tabs with counts, filters, timer lights, quick actions, pagination."""

import datetime as dt
import re

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from events import services
from tests.command.flows import MONDAY, dispatched, filed, logged_in, reported
from tests.events.factories import POINT_NW, CaseFactory, CategoryFactory

pytestmark = pytest.mark.django_db


def page(user, query="") -> str:
    response = logged_in(user).get(f"/command/{query}")
    assert response.status_code == 200
    return response.content.decode()


def rows(html: str) -> list[str]:
    return re.findall(r'<tr data-case="(\w+)"', html)


def tab_count(html: str, tab: str) -> int:
    return int(re.search(rf'data-tab="{tab}">[^<]+<span class="count">(\d+)</span>', html).group(1))


def lights(html: str) -> dict[str, str]:
    return dict(re.findall(r'<tr data-case="(\w+)".*?<td class="c-light">.*?data-light="(\w+)"', html, re.S))


def test_the_queue_needs_a_login(world):
    response = Client().get("/command/")
    assert (response.status_code, response["Location"]) == (302, "/accounts/login/?next=/command/")


def test_each_user_sees_only_the_cases_of_their_street(world):
    case = reported(world)
    assert rows(page(world.operator)) == [case.number]
    other = page(world.outside_operator)
    assert rows(other) == []
    assert case.number not in other
    assert "没有符合条件的案件" in other
    assert tab_count(other, "open") == 0


def test_tabs_count_open_cases_per_state_and_list_one_state(world):
    first, second = reported(world), reported(world, point=POINT_NW)
    waiting = filed(world)
    html = page(world.operator)
    assert (tab_count(html, "open"), tab_count(html, "reported"), tab_count(html, "filed")) == (3, 2, 1)
    assert tab_count(html, "dispatched") == 0
    assert set(rows(page(world.operator, "?tab=reported"))) == {first.number, second.number}
    assert rows(page(world.operator, "?tab=filed")) == [waiting.number]
    # A finished case leaves the open tabs and shows under 已办结
    services.case_void(case=first, actor=world.operator, reason="重复")
    assert rows(page(world.operator, "?tab=finished")) == [first.number]
    assert tab_count(page(world.operator), "open") == 2


def test_the_state_is_shown_in_chinese_with_a_timer_light_beside_the_deadline(world):
    # Given: one case past its 处置 deadline (Monday), one just reported, one at 85 % of its step
    late = dispatched(world)
    fresh = reported(world, at=None)
    now = timezone.now()
    warning = CaseFactory(
        number="E0102202611209001",
        grid=world.grid_sw,
        state="dispatched",
        current_department=world.sanitation,
        step="handle",
        step_started_at=now - dt.timedelta(hours=3),
        warn_at=now - dt.timedelta(minutes=5),
        deadline=now + dt.timedelta(minutes=30),
        reported_at=now - dt.timedelta(hours=4),
    )
    html = page(world.operator)
    assert lights(html) == {late.number: "red", fresh.number: "green", warning.number: "yellow"}
    row = html.split(f'<tr data-case="{late.number}"')[1].split("</tr>")[0]
    assert '<td class="c-state">处置中</td>' in row
    assert '<td class="c-deadline">处置 11-16 15:20</td>' in row
    assert "街道环卫所" in row
    # Red first: the list runs by deadline
    assert rows(html) == [late.number, warning.number, fresh.number]


def test_category_number_and_overdue_filters(world):
    late = dispatched(world)
    fresh = reported(world, at=None)
    other_category = CategoryFactory(minor_code="03", minor_name="道路不洁")
    dirty = services.case_report(
        actor=world.grid_worker,
        source="grid_worker",
        category=other_category,
        location=POINT_NW,
        description="路面油污",
    )
    assert rows(page(world.operator, f"?category={other_category.pk}")) == [dirty.number]
    assert rows(page(world.operator, "?overdue=on")) == [late.number]
    assert rows(page(world.operator, f"?q={fresh.number}")) == [fresh.number]


def test_filed_cases_offer_the_suggested_department_with_one_click_dispatch(world):
    case = filed(world)
    html = page(world.dispatcher, "?tab=filed")
    row = html.split(f'<tr data-case="{case.number}"')[1].split("</tr>")[0]
    assert f'<input type="hidden" name="department" value="{world.sanitation.pk}">' in row
    assert '<button type="submit" title="类别默认部门" class="dispatch-to">派往街道环卫所</button>' in row
    # An operator may not dispatch: no dispatch buttons for them
    assert "dispatch-to" not in page(world.operator, "?tab=filed")
    # One click dispatches and comes back to the queue
    client = logged_in(world.dispatcher)
    response = client.post(
        f"/command/cases/{case.pk}/dispatch/", {"department": world.sanitation.pk, "next": "/command/?tab=filed"}
    )
    assert response["Location"] == "/command/?tab=filed"
    after = client.get("/command/?tab=filed").content.decode()
    assert rows(after) == []
    assert f"案件 {case.number}：派遣完成" in after


def test_reported_cases_show_their_duplicates_and_a_file_button(world):
    first = reported(world, at=MONDAY)
    second = reported(world, at=MONDAY + dt.timedelta(hours=1))
    html = page(world.operator, "?tab=reported")
    row = html.split(f'<tr data-case="{second.number}"')[1].split("</tr>")[0]
    assert f'href="/command/cases/{second.pk}/#duplicates" class="dup-link">疑似重复 1 件</a>' in row
    assert f'action="/command/cases/{second.pk}/file/"' in row
    first_row = html.split(f'<tr data-case="{first.number}"')[1].split("</tr>")[0]
    assert "dup-link" not in first_row  # the later report is not a candidate for the earlier one


def test_extension_requests_are_approved_from_the_queue(world):
    case = dispatched(world)
    services.case_extension_request(case=case, actor=world.handler, amount=1, unit="days", reason="需调配车辆")
    html = page(world.dispatcher, "?tab=extension_pending")
    row = html.split(f'<tr data-case="{case.number}"')[1].split("</tr>")[0]
    assert "申请延时 1 工作日：需调配车辆" in row
    assert f'action="/command/cases/{case.pk}/approve_extension/"' in row
    assert f'action="/command/cases/{case.pk}/refuse_extension/"' in row
    # The operator sees the request but may not decide it
    operator_row = page(world.operator, "?tab=extension_pending").split(f'<tr data-case="{case.number}"')[1]
    assert "approve_extension" not in operator_row.split("</tr>")[0]


def test_the_overdue_list_offers_urging_to_leaders_only(world):
    late = dispatched(world)
    reported(world, at=None)  # not overdue
    html = page(world.leader, "?tab=overdue")
    assert rows(html) == [late.number]
    assert f'action="/command/cases/{late.pk}/urge/"' in html
    assert '<option value="red">红牌督办</option>' in html
    assert "urge/" not in page(world.operator, "?tab=overdue")
    assert tab_count(html, "overdue") == 1


def test_pages_of_thirty_keep_the_filters(world):
    start = timezone.now() - dt.timedelta(days=40)
    numbers = [f"E0102202611208{n:03d}" for n in range(31)]
    for n, number in enumerate(numbers):
        CaseFactory(number=number, grid=world.grid_sw, reported_at=start + dt.timedelta(minutes=n))
    first = page(world.operator, f"?tab=reported&category={world.category.pk}")
    assert len(rows(first)) == 30
    assert "共 31 件，第 1 / 2 页" in first
    assert f'href="?tab=reported&amp;category={world.category.pk}&amp;page=2" rel="next"' in first
    second = page(world.operator, f"?tab=reported&category={world.category.pk}&page=2")
    assert rows(second) == [numbers[0]]  # the oldest report comes last


def nav(html: str) -> list[str]:
    return re.findall(
        r'<a href="/command/[^"]*"[^>]*>(.+?)</a>', html.split('<span class="command-nav">')[1].split("</span>")[0]
    )


def test_the_menu_offers_what_each_user_may_use(world):
    assert nav(page(world.operator)) == ["案件队列", "热线登记"]
    assert nav(page(world.dispatcher)) == ["案件队列"]
    assert nav(page(world.handler)) == ["案件队列", "部门案件"]
    world.leader.user_permissions.add(Permission.objects.get(codename="view_indicatorsnapshot"))
    assert nav(page(world.leader)) == ["案件队列", "综合评价"]
