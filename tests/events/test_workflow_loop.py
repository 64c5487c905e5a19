"""One case through the whole closed loop, through the services, asserting every history row."""

from events import services
from events.models import Case, CaseHistory, CasePhoto
from events.workflow import Action, State
from tests.events.factories import POINT_SW, jpeg, local


def test_hotline_case_runs_the_whole_loop_with_one_rework(world):
    # Given a hotline call on Monday 2026-11-16 09:00 about garbage in grid 3 (area class B)
    case = services.case_report(
        actor=world.operator,
        source=Case.Source.HOTLINE,
        category=world.category,
        location=POINT_SW,
        description="小区门口垃圾成堆",
        address="测试路1号",
        reporter_name="王先生",
        reporter_phone="13812345678",
        at=local(2026, 11, 16, 9, 0),
    )
    # Then it waits for 核实 by the grid's worker, 2 working hours
    assert case.number == "E0102202611160001"
    assert (case.state, case.current_assignee, case.step) == (State.VERIFYING, world.grid_worker, "verify")
    assert (case.grid, case.community, case.street) == (world.grid_sw, world.community, world.street)
    assert case.area_class == "B"
    assert case.deadline == local(2026, 11, 16, 11, 0)
    assert case.warn_at == local(2026, 11, 16, 10, 36)  # 80 % of 120 minutes
    assert case.suggested_department == world.sanitation
    assert case.reporter_phone_masked == "138****5678"
    assert "13812345678" not in case.reporter_phone_encrypted

    services.case_verify(
        case=case, actor=world.grid_worker, confirmed=True, comment="现场属实", at=local(2026, 11, 16, 9, 30)
    )
    services.case_file(case=case, actor=world.operator, auto_dispatch=False, at=local(2026, 11, 16, 10, 0))
    case = services.case_dispatch(
        case=case, actor=world.dispatcher, department=world.sanitation, at=local(2026, 11, 16, 10, 15)
    )
    # 处置 一般/B = 4 working hours: 10:15-12:00 (1h45) + 14:00-16:15 (2h15)
    assert (case.state, case.current_department, case.deadline) == (
        State.DISPATCHED,
        world.sanitation,
        local(2026, 11, 16, 16, 15),
    )
    assert case.due_at == local(2026, 11, 16, 16, 15)
    assert case.warn_at == local(2026, 11, 16, 15, 27)  # 3h12 of working time after 10:15

    case = services.case_handle(
        case=case, actor=world.handler, comment="已清运", photos=[jpeg()], at=local(2026, 11, 16, 14, 30)
    )
    assert (case.state, case.current_assignee) == (State.HANDLED, world.grid_worker)
    case = services.case_check(
        case=case,
        actor=world.grid_worker,
        passed=False,
        comment="仍有残留垃圾",
        photos=[jpeg()],
        at=local(2026, 11, 16, 15, 0),
    )
    # 返工: back to the same department with a fresh 4-hour limit; the case's due time stays
    assert (case.state, case.current_department, case.rework_count) == (State.DISPATCHED, world.sanitation, 1)
    assert case.deadline == local(2026, 11, 17, 10, 0)  # 15:00-17:30 + 08:30-10:00
    assert case.due_at == local(2026, 11, 16, 16, 15)

    services.case_handle(
        case=case, actor=world.handler, comment="已彻底清理", photos=[jpeg()], at=local(2026, 11, 17, 9, 0)
    )
    services.case_check(case=case, actor=world.grid_worker, passed=True, photos=[jpeg()], at=local(2026, 11, 17, 9, 30))
    case = services.case_close(case=case, actor=world.shift_leader, comment="同意结案", at=local(2026, 11, 17, 10, 0))

    # Then the case is closed, with every milestone and no running timer
    case.refresh_from_db()
    assert case.state == State.CLOSED
    assert (case.step, case.deadline, case.warn_at, case.step_started_at) == ("", None, None, None)
    assert case.reported_at == local(2026, 11, 16, 9, 0)
    assert case.verified_at == local(2026, 11, 16, 9, 30)
    assert case.filed_at == local(2026, 11, 16, 10, 0)
    assert case.dispatched_at == local(2026, 11, 16, 10, 15)
    assert case.handled_at == local(2026, 11, 17, 9, 0)  # the last 处置反馈
    assert case.checked_at == local(2026, 11, 17, 9, 30)
    assert case.closed_at == local(2026, 11, 17, 10, 0)
    assert case.voided_at is None

    rows = list(
        CaseHistory.objects.filter(case=case).values_list(
            "action", "from_state", "to_state", "actor__username", "actor_role", "department__code", "step_deadline"
        )
    )
    assert rows == [
        (Action.REGISTER, State.NEW, State.VERIFYING, "operator", "operator", None, None),
        (
            Action.VERIFY,
            State.VERIFYING,
            State.REPORTED,
            "worker",
            "grid_worker",
            None,
            local(2026, 11, 16, 11, 0),
        ),
        (Action.FILE, State.REPORTED, State.FILED, "operator", "operator", None, local(2026, 11, 16, 10, 30)),
        (
            Action.DISPATCH,
            State.FILED,
            State.DISPATCHED,
            "dispatcher",
            "dispatcher",
            "ZY-HW",
            local(2026, 11, 16, 11, 0),
        ),
        (
            Action.HANDLE,
            State.DISPATCHED,
            State.HANDLED,
            "handler",
            "department_handler",
            "ZY-HW",
            local(2026, 11, 16, 16, 15),
        ),
        (
            Action.CHECK_FAIL,
            State.HANDLED,
            State.DISPATCHED,
            "worker",
            "grid_worker",
            "ZY-HW",
            local(2026, 11, 16, 16, 30),
        ),
        (
            Action.HANDLE,
            State.DISPATCHED,
            State.HANDLED,
            "handler",
            "department_handler",
            "ZY-HW",
            local(2026, 11, 17, 10, 0),
        ),
        (
            Action.CHECK_PASS,
            State.HANDLED,
            State.CHECKED,
            "worker",
            "grid_worker",
            "ZY-HW",
            local(2026, 11, 17, 11, 0),
        ),
        (
            Action.CLOSE,
            State.CHECKED,
            State.CLOSED,
            "shift",
            "shift_leader",
            "ZY-HW",
            local(2026, 11, 17, 10, 30),
        ),
    ]
    history = list(CaseHistory.objects.filter(case=case))
    assert [h.created_at for h in history] == [
        local(2026, 11, 16, 9, 0),
        local(2026, 11, 16, 9, 30),
        local(2026, 11, 16, 10, 0),
        local(2026, 11, 16, 10, 15),
        local(2026, 11, 16, 14, 30),
        local(2026, 11, 16, 15, 0),
        local(2026, 11, 17, 9, 0),
        local(2026, 11, 17, 9, 30),
        local(2026, 11, 17, 10, 0),
    ]
    assert [h.comment for h in history] == [
        "",
        "现场属实",
        "",
        "",
        "已清运",
        "仍有残留垃圾",
        "已彻底清理",
        "",
        "同意结案",
    ]
    assert history[0].payload == {"source": "hotline"}
    assert history[1].payload == {"confirmed": True}
    assert history[3].payload == {"department": "ZY-HW"}
    # Photos are attached to the rows that brought them
    attachments = [list(h.attachments.values_list("stage", flat=True)) for h in history]
    assert attachments == [[], [], [], [], ["after"], ["verify"], ["after"], ["verify"], []]
    assert CasePhoto.objects.filter(case=case).count() == 4


def test_grid_worker_report_waits_for_filing_and_filing_dispatches_automatically(world):
    # Given a grid worker's report: no 核实 needed
    case = services.case_report(
        actor=world.grid_worker,
        source=Case.Source.GRID_WORKER,
        category=world.category,
        location=POINT_SW,
        description="垃圾成堆",
        photos=[jpeg()],
        at=local(2026, 11, 16, 11, 30),
    )
    assert (case.state, case.current_assignee, case.reporter) == (State.REPORTED, None, world.grid_worker)
    # 立案 limit 1 working hour: 11:30-12:00 + 14:00-14:30
    assert case.deadline == local(2026, 11, 16, 14, 30)
    assert list(case.photos.values_list("stage", flat=True)) == ["before"]

    # When the operator files it: exactly one department matches (the category's default)
    case = services.case_file(case=case, actor=world.operator, at=local(2026, 11, 16, 14, 0))

    # Then the system dispatched it in the same transaction
    assert (case.state, case.current_department) == (State.DISPATCHED, world.sanitation)
    rows = list(
        CaseHistory.objects.filter(case=case).values_list("action", "actor", "actor_role", "comment", "payload")
    )
    assert rows == [
        (Action.REPORT, world.grid_worker.pk, "grid_worker", "", {"source": "grid_worker"}),
        (Action.FILE, world.operator.pk, "operator", "", {}),
        (Action.DISPATCH, None, "system", "自动派遣（类别默认部门）", {"automatic": True, "reason": "类别默认部门"}),
    ]
    assert case.dispatched_at == local(2026, 11, 16, 14, 0)
    assert case.due_at == local(2026, 11, 17, 9, 0)  # 4h: 14:00-17:30 + 08:30-09:00


def test_self_handled_case_is_recorded_finished(world):
    case = services.case_self_handle(
        actor=world.grid_worker,
        category=world.category,
        location=POINT_SW,
        description="随手清理了散落垃圾",
        before_photos=[jpeg()],
        after_photos=[jpeg()],
        at=local(2026, 11, 16, 10, 0),
    )
    assert case.state == State.SELF_HANDLED
    assert (case.reported_at, case.handled_at, case.closed_at) == (local(2026, 11, 16, 10, 0),) * 3
    assert case.deadline is None
    assert list(CaseHistory.objects.filter(case=case).values_list("action", "from_state", "to_state")) == [
        (Action.SELF_HANDLE, State.NEW, State.SELF_HANDLED)
    ]
    assert sorted(case.photos.values_list("stage", flat=True)) == ["after", "before"]
