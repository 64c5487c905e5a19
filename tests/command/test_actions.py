"""Workflow actions posted from the screens: each calls one service; refusals change nothing.

409: the action is not allowed in the case's state now (message, the case as it is now).
403: the user's role may not take the action (message).
400: the form is incomplete or the photo is not an image (errors beside the fields, input kept).
"""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from events import services
from events.models import Case, CaseHistory, CasePhoto
from events.workflow import Action, State
from tests.command.flows import MONDAY, dispatched, filed, logged_in, reported
from tests.events.factories import jpeg, local

pytestmark = pytest.mark.django_db


def act(user, case, action, data=None, **extra):
    return logged_in(user).post(f"/command/cases/{case.pk}/{action}/", data or {}, **extra)


def history(case) -> list[tuple[str, str, str]]:
    return list(
        CaseHistory.objects.filter(case=case).order_by("id").values_list("action", "actor__username", "to_state")
    )


def refusal(response) -> str:
    return re.search(r'<div class="refusal" role="alert">(.+?)</div>', response.content.decode()).group(1)


# --- 派遣 -----------------------------------------------------------------------------------


def test_dispatch_sends_the_case_to_the_chosen_department_and_returns_to_the_case(world):
    case = filed(world)
    client = logged_in(world.dispatcher)
    response = client.post(
        f"/command/cases/{case.pk}/dispatch/", {"department": world.sanitation.pk, "comment": "请尽快处理"}
    )
    assert response.status_code == 302
    assert response["Location"] == f"/command/cases/{case.pk}/"
    case.refresh_from_db()
    assert (case.state, case.current_department) == (State.DISPATCHED, world.sanitation)
    row = CaseHistory.objects.filter(case=case).latest("id")
    assert (row.action, row.actor, row.actor_role, row.department, row.comment) == (
        Action.DISPATCH,
        world.dispatcher,
        "dispatcher",
        world.sanitation,
        "请尽快处理",
    )
    # The next page says what happened
    page = client.get(response["Location"]).content.decode()
    assert f"案件 {case.number}：派遣完成，当前状态“处置中”，责任部门：街道环卫所" in page


def test_a_second_dispatch_of_the_same_case_is_a_409_conflict_and_writes_nothing(world):
    # Given a case another dispatcher has just sent to sanitation
    case = filed(world)
    act(world.dispatcher, case, "dispatch", {"department": world.sanitation.pk})
    rows = history(case)
    # When the shift leader, whose page still showed 待派遣, dispatches it to greening
    response = act(world.shift_leader, case, "dispatch", {"department": world.greening.pk})
    # Then: 409, a clear message, the case as it is now, no new history row
    assert response.status_code == 409
    assert refusal(response) == f"案件 {case.number} 当前状态为“处置中”，不能执行“派遣”"
    assert '<span class="state-badge" id="case-state">处置中</span>' in response.content.decode()
    assert history(case) == rows
    case.refresh_from_db()
    assert case.current_department == world.sanitation


def test_a_role_that_may_not_dispatch_gets_403_and_nothing_changes(world):
    case = filed(world)
    rows = history(case)
    response = act(world.operator, case, "dispatch", {"department": world.sanitation.pk})
    assert response.status_code == 403
    assert refusal(response) == "角色“受理员”无权执行“派遣”"
    assert history(case) == rows
    case.refresh_from_db()
    assert (case.state, case.current_department) == (State.FILED, None)


def test_a_handler_may_not_approve_an_extension_of_their_own_case(world):
    case = dispatched(world)
    services.case_extension_request(case=case, actor=world.handler, amount=1, unit="days", reason="需调车")
    rows = history(case)
    response = act(world.handler, case, "approve_extension", {})
    assert response.status_code == 403
    assert refusal(response) == "角色“部门处置人员”无权执行“批准延时”"
    assert history(case) == rows


def test_a_case_outside_the_users_scope_cannot_be_acted_on(world):
    case = filed(world)
    response = act(world.outside_operator, case, "file", {})
    assert response.status_code == 404
    assert history(case)[-1][0] == Action.FILE  # only the filing of the fixture


def test_unknown_actions_are_not_found_and_actions_need_post(world):
    case = filed(world)
    assert act(world.dispatcher, case, "teleport", {}).status_code == 404
    assert act(world.dispatcher, case, "absorb", {}).status_code == 404  # no screen of its own
    assert logged_in(world.dispatcher).get(f"/command/cases/{case.pk}/dispatch/").status_code == 405


def test_an_outside_next_address_is_ignored(world):
    case = filed(world)
    response = act(
        world.dispatcher, case, "dispatch", {"department": world.sanitation.pk, "next": "https://evil.example/"}
    )
    assert response["Location"] == f"/command/cases/{case.pk}/"
    other = filed(world)
    response = act(
        world.dispatcher, other, "dispatch", {"department": world.sanitation.pk, "next": "/command/?tab=filed"}
    )
    assert response["Location"] == "/command/?tab=filed"


# --- 立案, 作废, 合并 --------------------------------------------------------------------------


def test_filing_dispatches_automatically_when_one_department_matches(world):
    case = reported(world)
    response = act(world.operator, case, "file", {"auto_dispatch": "on"})
    assert response.status_code == 302
    assert history(case)[-2:] == [
        (Action.FILE, "operator", State.FILED),
        (Action.DISPATCH, None, State.DISPATCHED),  # by 系统
    ]


def test_filing_without_automatic_dispatch_waits_for_the_dispatcher(world):
    case = reported(world)
    act(world.operator, case, "file", {})
    assert history(case)[-1] == (Action.FILE, "operator", State.FILED)


def test_void_needs_a_reason_and_keeps_nothing_else_changed(world):
    case = reported(world)
    rows = history(case)
    response = act(world.operator, case, "void", {"comment": "  "})
    assert response.status_code == 400
    html = response.content.decode()
    assert '<span class="error">请填写作废理由</span>' in html
    assert history(case) == rows
    response = act(world.operator, case, "void", {"comment": "重复上报"})
    assert response.status_code == 302
    assert history(case)[-1] == (Action.VOID, "operator", State.VOIDED)


def test_merge_makes_the_newer_report_part_of_the_older_case(world):
    first = reported(world, at=MONDAY)
    second = reported(world, at=local(2026, 11, 16, 10, 0))
    response = act(world.operator, second, "merge", {"into": first.number})
    assert response.status_code == 302
    second.refresh_from_db()
    assert (second.state, second.merged_into) == (State.MERGED, first)
    assert history(first)[-1] == (Action.ABSORB, "operator", State.REPORTED)
    # The older case lists both source reports
    page = logged_in(world.operator).get(f"/command/cases/{first.pk}/").content.decode()
    assert "来源报告 <small>2 件（含合并）</small>" in page


def test_merge_into_an_unknown_number_is_a_form_error(world):
    case = reported(world)
    response = act(world.operator, case, "merge", {"into": "E0102209901010001"})
    assert response.status_code == 400
    assert "未找到您可查看的案件 E0102209901010001" in response.content.decode()
    assert 'value="E0102209901010001"' in response.content.decode()  # the input is kept
    assert Case.objects.get(pk=case.pk).state == State.REPORTED


# --- the department: 处置反馈, 回退, 延时 ---------------------------------------------------------


def test_handling_with_an_after_photo_moves_the_case_to_the_check(world):
    case = dispatched(world)
    response = act(world.handler, case, "handle", {"comment": "已清运", "photos": [jpeg(name="after.jpg")]})
    assert response.status_code == 302
    row = CaseHistory.objects.filter(case=case).latest("id")
    assert (row.action, row.actor, row.to_state, row.comment) == (Action.HANDLE, world.handler, State.HANDLED, "已清运")
    assert list(row.attachments.values_list("stage", flat=True)) == [CasePhoto.Stage.AFTER]
    case.refresh_from_db()
    assert case.current_assignee == world.grid_worker  # the 核查 task


def test_handling_without_a_photo_is_refused_with_the_input_kept(world):
    case = dispatched(world)
    rows = history(case)
    response = act(world.handler, case, "handle", {"comment": "已清运完毕"})
    assert response.status_code == 400
    html = response.content.decode()
    assert '<span class="error">请上传处置后照片</span>' in html
    assert "已清运完毕</textarea>" in html
    assert history(case) == rows


def test_a_file_that_is_not_an_image_is_refused(world):
    case = dispatched(world)
    rows = history(case)
    fake = SimpleUploadedFile("after.jpg", b"not really a jpeg", content_type="image/jpeg")
    response = act(world.handler, case, "handle", {"comment": "已清运", "photos": [fake]})
    assert response.status_code == 400
    assert '<span class="error">文件不是有效的图片</span>' in response.content.decode()
    assert history(case) == rows
    assert not CasePhoto.objects.filter(case=case, stage=CasePhoto.Stage.AFTER).exists()


def test_return_needs_a_reason_and_sends_the_case_back_to_the_dispatcher(world):
    case = dispatched(world)
    response = act(world.handler, case, "return", {"comment": "不属于环卫职责"})
    assert response.status_code == 302
    case.refresh_from_db()
    assert (case.state, case.current_department, case.return_count) == (State.FILED, None, 1)
    assert history(case)[-1] == (Action.RETURN, "handler", State.FILED)


def test_extension_request_keeps_the_amount_when_the_reason_is_missing(world):
    case = dispatched(world)
    rows = history(case)
    response = act(world.handler, case, "request_extension", {"amount": "2", "unit": "days", "comment": ""})
    assert response.status_code == 400
    html = response.content.decode()
    assert '<span class="error">请填写延时理由</span>' in html
    assert re.search(r'name="amount" value="2"', html)
    assert re.search(r'<option value="days" selected>工作日</option>', html)
    assert history(case) == rows


def test_extension_request_then_approval_moves_the_deadline(world):
    case = dispatched(world)
    old_deadline = case.deadline
    response = act(world.handler, case, "request_extension", {"amount": "1", "unit": "days", "comment": "需调配车辆"})
    assert response.status_code == 302
    assert Case.objects.get(pk=case.pk).state == State.EXTENSION_PENDING
    response = act(world.dispatcher, case, "approve_extension", {"comment": "同意"})
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.state == State.DISPATCHED
    assert case.deadline > old_deadline
    assert CaseHistory.objects.filter(case=case).latest("id").payload == {"amount": "1", "unit": "days"}


def test_extension_refusal_needs_a_reason(world):
    case = dispatched(world)
    services.case_extension_request(case=case, actor=world.handler, amount=1, unit="days", reason="需调车")
    rows = history(case)
    assert act(world.dispatcher, case, "refuse_extension", {}).status_code == 400
    assert history(case) == rows
    assert act(world.dispatcher, case, "refuse_extension", {"comment": "时限充足"}).status_code == 302
    assert history(case)[-1] == (Action.REFUSE_EXTENSION, "dispatcher", State.DISPATCHED)


def test_approval_with_an_amount_but_no_unit_is_a_form_error(world):
    case = dispatched(world)
    services.case_extension_request(case=case, actor=world.handler, amount=1, unit="days", reason="需调车")
    response = act(world.dispatcher, case, "approve_extension", {"amount": "2", "unit": ""})
    assert response.status_code == 400
    assert "批准时长与单位须同时填写，或都留空（按申请批准）" in response.content.decode()
    assert Case.objects.get(pk=case.pk).state == State.EXTENSION_PENDING


# --- 核查, 结案, 挂账, 督办 -----------------------------------------------------------------------


def test_check_close_and_the_whole_second_half_of_the_loop(world):
    case = dispatched(world)
    services.case_handle(case=case, actor=world.handler, comment="已清运", photos=[jpeg()])
    assert act(world.grid_worker, case, "check_pass", {"photos": [jpeg()]}).status_code == 302
    # 值班长 closes; an operator may not
    assert act(world.operator, case, "close", {}).status_code == 403
    assert act(world.shift_leader, case, "close", {"comment": "同意结案"}).status_code == 302
    assert [a for a, _, _ in history(case)][-3:] == [Action.HANDLE, Action.CHECK_PASS, Action.CLOSE]
    assert Case.objects.get(pk=case.pk).state == State.CLOSED


def test_leader_defers_and_resumes(world):
    case = dispatched(world)
    assert act(world.leader, case, "defer", {"comment": "需纳入年度改造计划"}).status_code == 302
    assert Case.objects.get(pk=case.pk).state == State.DEFERRED
    assert act(world.leader, case, "resume", {}).status_code == 302
    assert history(case)[-2:] == [
        (Action.DEFER, "leader", State.DEFERRED),
        (Action.RESUME, "leader", State.DISPATCHED),
    ]


def test_urge_records_the_level_and_the_department_sees_the_red_card(world):
    case = dispatched(world)
    response = act(world.leader, case, "urge", {"level": "red", "comment": "严重超期，限今日办结"})
    assert response.status_code == 302
    row = CaseHistory.objects.filter(case=case).latest("id")
    assert (row.action, row.payload, row.comment) == (Action.URGE, {"level": "red"}, "严重超期，限今日办结")
    page = logged_in(world.handler).get("/command/department/").content.decode()
    assert '<span class="badge urge-red">红牌督办</span>' in page


def test_the_grid_worker_verifies_a_hotline_case_on_the_web(world):
    case = services.case_report(
        actor=world.operator,
        source=Case.Source.HOTLINE,
        category=world.category,
        location=reported(world).location,
        description="市民来电：垃圾堆积",
    )
    assert act(world.other_worker, case, "verify", {"confirmed": "yes"}).status_code == 404  # not their grid
    response = act(world.grid_worker, case, "verify", {"confirmed": "no", "comment": "现场未见垃圾"})
    assert response.status_code == 302
    row = CaseHistory.objects.filter(case=case).latest("id")
    assert (row.action, row.payload, row.to_state) == (Action.VERIFY, {"confirmed": False}, State.REPORTED)
