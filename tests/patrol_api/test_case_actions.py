"""POST /api/v1/cases/{id}/actions/{action}: the whole workflow through the API, and its refusals."""

import pytest

from events import services
from events.models import Case, CaseHistory, CasePhoto
from tests.events.factories import POINT_NW, POINT_SW, jpeg


def act(world, who, case, action, data=None, fmt="json"):
    return world.clients[who].post(f"/api/v1/cases/{case.pk}/actions/{action}", data or {}, format=fmt)


def new_case(world, *, source=Case.Source.GRID_WORKER, point=POINT_SW):
    actor = world.worker if source == Case.Source.GRID_WORKER else world.operator
    return services.case_report(
        actor=actor, source=source, category=world.category, location=point, description="路边有成堆垃圾"
    )


def history(case) -> list[str]:
    return list(CaseHistory.objects.filter(case=case).order_by("id").values_list("action", flat=True))


@pytest.mark.django_db
def test_a_hotline_case_runs_the_whole_loop_through_the_api(world):
    case = new_case(world, source=Case.Source.HOTLINE)
    # 核实 by the grid worker, with a photo
    response = act(
        world, "worker", case, "verify", {"confirmed": "true", "comment": "属实", "photos": [jpeg()]}, "multipart"
    )
    assert (response.status_code, response.json()["state"]) == (200, "reported")
    # 立案 without automatic dispatch, then 派遣
    assert act(world, "operator", case, "file", {"auto_dispatch": False}).json()["state"] == "filed"
    response = act(world, "dispatcher", case, "dispatch", {"department": "ZY-HW", "comment": "请尽快处理"})
    assert (response.json()["state"], response.json()["department"]) == ("dispatched", "街道环卫所")
    # 申请延时 / 批准
    assert (
        act(
            world, "handler", case, "request_extension", {"amount": "2", "unit": "hours", "comment": "需调车"}
        ).status_code
        == 200
    )
    assert act(world, "dispatcher", case, "approve_extension").json()["state"] == "dispatched"
    # 处置反馈 with the after photo, 核查不通过 (返工), again, 核查通过, 结案
    assert (
        act(world, "handler", case, "handle", {"comment": "已清运", "photos": [jpeg()]}, "multipart").json()["state"]
        == "handled"
    )
    body = act(world, "worker", case, "check_fail", {"comment": "仍有残留", "photos": [jpeg()]}, "multipart").json()
    assert body["state"] == "dispatched"
    act(world, "handler", case, "handle", {"comment": "已彻底清运", "photos": [jpeg()]}, "multipart")
    assert act(world, "worker", case, "check_pass", {"photos": [jpeg()]}, "multipart").json()["state"] == "checked"
    body = act(world, "shift_leader", case, "close", {"comment": "结案"}).json()
    assert (body["state"], body["state_display"]) == ("closed", "已结案")
    assert history(case) == [
        "register",
        "verify",
        "file",
        "dispatch",
        "request_extension",
        "approve_extension",
        "handle",
        "check_fail",
        "handle",
        "check_pass",
        "close",
    ]
    assert [e["action"] for e in body["timeline"]] == history(case)
    assert CasePhoto.objects.filter(case=case).count() == 5


@pytest.mark.django_db
def test_side_operations_through_the_api(world):
    case = new_case(world)
    act(world, "operator", case, "file")  # automatic dispatch to sanitation
    assert act(world, "leader", case, "urge", {"level": "yellow", "comment": "请加快"}).status_code == 200
    assert (
        act(
            world, "handler", case, "request_extension", {"amount": "1", "unit": "days", "comment": "需要材料"}
        ).status_code
        == 200
    )
    assert act(world, "dispatcher", case, "refuse_extension", {"comment": "不予延时"}).json()["state"] == "dispatched"
    assert act(world, "leader", case, "defer", {"comment": "需统一整治"}).json()["state"] == "deferred"
    assert act(world, "leader", case, "resume").json()["state"] == "dispatched"
    response = act(world, "handler", case, "return", {"comment": "不属本部门"})
    assert (response.status_code, response.json()["state"]) == (200, "filed")  # still visible: it was theirs
    assert history(case)[-6:] == ["urge", "request_extension", "refuse_extension", "defer", "resume", "return"]


@pytest.mark.django_db
def test_request_verification_void_and_merge(world):
    first, second, third = new_case(world), new_case(world), new_case(world)
    assert act(world, "operator", first, "request_verification", {"comment": "请核实"}).json()["state"] == "verifying"
    assert act(world, "operator", second, "void", {"comment": "重复上报"}).json()["state"] == "voided"
    assert act(world, "operator", third, "merge", {"into": first.pk}).json()["state"] == "merged"
    third.refresh_from_db()
    assert third.merged_into == first


@pytest.mark.django_db
def test_an_illegal_transition_is_409_and_changes_nothing(world):
    case = new_case(world)
    before = history(case)
    response = act(world, "shift_leader", case, "close")
    assert response.status_code == 409
    assert response.json() == {"detail": f"案件 {case.number} 当前状态为“待立案”，不能执行“结案”"}
    case.refresh_from_db()
    assert (case.state, history(case)) == ("reported", before)


@pytest.mark.django_db
def test_a_role_that_may_not_act_is_403_and_changes_nothing(world):
    case = new_case(world)
    response = act(world, "worker", case, "file")
    assert response.status_code == 403
    assert response.json()["detail"] == "角色“网格员”无权执行“立案”"
    case.refresh_from_db()
    assert (case.state, history(case)) == ("reported", ["report"])


@pytest.mark.django_db
def test_an_unknown_or_invisible_case_is_404(world):
    case = new_case(world, point=POINT_NW)  # other_worker's grid, reported by worker (so visible to worker)
    assert world.clients["other_handler"].post(f"/api/v1/cases/{case.pk}/actions/return", {}).status_code == 404
    assert world.clients["operator"].post("/api/v1/cases/987654/actions/file", {}).status_code == 404
    assert world.clients["operator"].post(f"/api/v1/cases/{case.pk}/actions/fly", {}).status_code == 404
    assert history(case) == ["report"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("action", "data", "field"),
    [
        ("void", {}, "comment"),
        ("void", {"comment": "   "}, "comment"),
        ("dispatch", {"department": "NOPE"}, "department"),
        ("dispatch", {}, "department"),
        ("merge", {"into": "abc"}, "into"),
        ("merge", {"into": 987654}, "into"),
        ("request_verification", {"comment": "x" * 2001}, "comment"),
    ],
)
def test_missing_or_bad_action_input_is_400_and_changes_nothing(world, action, data, field):
    case = new_case(world)
    response = act(world, "shift_leader", case, action, data)
    assert response.status_code == 400
    assert field in response.json(), response.json()
    case.refresh_from_db()
    assert (case.state, history(case)) == ("reported", ["report"])


@pytest.mark.django_db
def test_merging_a_case_into_itself_is_400(world):
    case = new_case(world)
    response = act(world, "operator", case, "merge", {"into": case.pk})
    assert (response.status_code, response.json()) == (400, {"into": ["不能把案件合并到自身"]})


@pytest.mark.django_db
def test_check_without_a_photo_and_verify_without_an_answer_are_400(world):
    hotline = new_case(world, source=Case.Source.HOTLINE)
    response = act(world, "worker", hotline, "verify", {"comment": "看过了"}, "multipart")
    assert (response.status_code, list(response.json())) == (400, ["confirmed"])
    case = new_case(world)
    act(world, "operator", case, "file")
    act(world, "handler", case, "handle", {"comment": "已清运", "photos": [jpeg()]}, "multipart")
    response = act(world, "worker", case, "check_pass", {"comment": "好了"})
    assert (response.status_code, response.json()) == (400, {"photos": ["“核查通过”须上传核实/核查照片"]})
    case.refresh_from_db()
    assert case.state == "handled"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"amount": "0", "unit": "hours", "comment": "x"}, "amount"),
        ({"amount": "-1", "unit": "hours", "comment": "x"}, "amount"),
        ({"amount": "abc", "unit": "hours", "comment": "x"}, "amount"),
        ({"amount": "1", "unit": "weeks", "comment": "x"}, "unit"),
        ({"amount": "99999", "unit": "days", "comment": "x"}, "amount"),
        ({"amount": "1", "unit": "hours"}, "comment"),
    ],
)
def test_bad_extension_requests_are_400(world, data, field):
    case = new_case(world)
    act(world, "operator", case, "file")
    response = act(world, "handler", case, "request_extension", data)
    assert response.status_code == 400
    assert field in response.json()
    assert history(case) == ["report", "file", "dispatch"]


@pytest.mark.django_db
def test_urge_needs_a_known_level(world):
    case = new_case(world)
    response = act(world, "leader", case, "urge", {"level": "purple", "comment": "快"})
    assert (response.status_code, list(response.json())) == (400, ["level"])
