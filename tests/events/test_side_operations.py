"""延时, 回退, 挂账, 督办: what each moves and what it leaves alone."""

import pytest
from django.core.exceptions import ValidationError

from events import services
from events.models import Case, CaseHistory
from events.workflow import Action, State
from tests.events.factories import POINT_SW, local

pytestmark = pytest.mark.django_db


@pytest.fixture
def dispatched(world):
    """Dispatched Monday 2026-11-16 10:00 to sanitation: 处置 deadline 16:00 (4 working hours)."""
    case = services.case_report(
        actor=world.grid_worker,
        source=Case.Source.GRID_WORKER,
        category=world.category,
        location=POINT_SW,
        description="垃圾",
        at=local(2026, 11, 16, 9, 0),
    )
    case = services.case_file(case=case, actor=world.operator, at=local(2026, 11, 16, 10, 0))
    assert (case.deadline, case.due_at) == (local(2026, 11, 16, 16, 0), local(2026, 11, 16, 16, 0))
    return case


def test_approved_extension_moves_the_deadline_and_the_due_time(world, dispatched):
    case = services.case_extension_request(
        case=dispatched, actor=world.handler, amount=1, unit="days", reason="需调配车辆", at=local(2026, 11, 16, 11, 0)
    )
    assert (case.state, case.deadline) == (State.EXTENSION_PENDING, local(2026, 11, 16, 16, 0))  # clock runs on
    case = services.case_extension_approve(case=case, actor=world.dispatcher, at=local(2026, 11, 16, 11, 30))
    assert case.state == State.DISPATCHED
    assert case.deadline == case.due_at == local(2026, 11, 17, 16, 0)  # + 1 working day
    # 80 % of the whole step, 10:00 Monday to 16:00 Tuesday (11 working hours): 8h48 -> Tue 11:48
    assert case.warn_at == local(2026, 11, 17, 11, 48)
    assert case.extension_count == 1
    assert list(CaseHistory.objects.filter(case=case).values_list("action", "payload"))[-2:] == [
        (Action.REQUEST_EXTENSION, {"amount": "1", "unit": "days"}),
        (Action.APPROVE_EXTENSION, {"amount": "1", "unit": "days"}),
    ]


def test_dispatcher_may_grant_less_than_asked(world, dispatched):
    services.case_extension_request(
        case=dispatched, actor=world.handler, amount=3, unit="days", reason="需采购", at=local(2026, 11, 16, 11, 0)
    )
    case = services.case_extension_approve(
        case=dispatched, actor=world.dispatcher, amount=2, unit="hours", at=local(2026, 11, 16, 11, 30)
    )
    assert case.deadline == local(2026, 11, 17, 9, 0)  # 16:00 + 2h: 16:00-17:30, then 08:30-09:00
    assert CaseHistory.objects.filter(action=Action.APPROVE_EXTENSION).get().payload == {"amount": "2", "unit": "hours"}


def test_refused_extension_keeps_the_deadline(world, dispatched):
    services.case_extension_request(
        case=dispatched, actor=world.handler, amount=1, unit="days", reason="需调配车辆", at=local(2026, 11, 16, 11, 0)
    )
    case = services.case_extension_refuse(
        case=dispatched, actor=world.dispatcher, reason="可当日完成", at=local(2026, 11, 16, 11, 30)
    )
    assert (case.state, case.deadline, case.due_at, case.extension_count) == (
        State.DISPATCHED,
        local(2026, 11, 16, 16, 0),
        local(2026, 11, 16, 16, 0),
        0,
    )


def test_invalid_extension_request_is_refused(world, dispatched):
    with pytest.raises(ValidationError):
        services.case_extension_request(case=dispatched, actor=world.handler, amount=0, unit="days", reason="x")
    with pytest.raises(ValidationError):
        services.case_extension_request(case=dispatched, actor=world.handler, amount=1, unit="weeks", reason="x")
    assert not CaseHistory.objects.filter(action=Action.REQUEST_EXTENSION).exists()


def test_return_goes_back_to_the_dispatcher_and_points_at_the_dispatch(world, dispatched):
    case = services.case_return(
        case=dispatched, actor=world.handler, reason="属于园林部门", at=local(2026, 11, 16, 10, 30)
    )
    assert (case.state, case.current_department, case.return_count, case.step) == (State.FILED, None, 1, "dispatch")
    assert case.deadline == local(2026, 11, 16, 11, 30)
    dispatch = CaseHistory.objects.get(case=case, action=Action.DISPATCH)
    returned = CaseHistory.objects.get(case=case, action=Action.RETURN)
    assert (returned.reverts, returned.department, returned.comment) == (dispatch, world.sanitation, "属于园林部门")
    case = services.case_dispatch(
        case=case, actor=world.dispatcher, department=world.greening, at=local(2026, 11, 16, 11, 0)
    )
    assert (case.current_department, case.due_at) == (world.greening, local(2026, 11, 16, 17, 0))


def test_deferred_case_leaves_the_clock_and_resumes_with_a_fresh_limit(world, dispatched):
    case = services.case_defer(
        case=dispatched, actor=world.leader, reason="纳入年度改造", at=local(2026, 11, 16, 11, 0)
    )
    assert (case.state, case.step, case.deadline, case.deferred_at) == (
        State.DEFERRED,
        "",
        None,
        local(2026, 11, 16, 11, 0),
    )
    case = services.case_resume(case=case, actor=world.leader, at=local(2026, 11, 23, 9, 0))
    assert (case.state, case.current_department) == (State.DISPATCHED, world.sanitation)
    assert case.deadline == case.due_at == local(2026, 11, 23, 15, 0)  # 09:00-12:00, then 14:00-15:00


def test_urge_records_a_row_without_moving_the_case(world, dispatched):
    for level in ("normal", "yellow", "red"):
        services.case_urge(
            case=dispatched, actor=world.leader, level=level, comment="请尽快处理", at=local(2026, 11, 16, 12, 0)
        )
    with pytest.raises(ValidationError):
        services.case_urge(case=dispatched, actor=world.leader, level="purple", comment="?")
    dispatched.refresh_from_db()
    assert (dispatched.state, dispatched.urge_count, dispatched.deadline) == (
        State.DISPATCHED,
        3,
        local(2026, 11, 16, 16, 0),
    )
    rows = CaseHistory.objects.filter(case=dispatched, action=Action.URGE)
    assert [(r.from_state, r.to_state, r.payload["level"]) for r in rows] == [
        (State.DISPATCHED, State.DISPATCHED, "normal"),
        (State.DISPATCHED, State.DISPATCHED, "yellow"),
        (State.DISPATCHED, State.DISPATCHED, "red"),
    ]
