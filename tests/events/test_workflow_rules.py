"""Refusals: every illegal transition, every role that may not act, scope. Nothing may change."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from accounts.models import Role
from events import services, workflow
from events.models import Case, CaseHistory, CasePhoto
from events.workflow import Action, State
from tests.events.factories import POINT_SW, CaseFactory, jpeg, local
from tests.factories import UserFactory

STORED_STATES = [s for s in State if s != State.NEW]
AT = local(2026, 11, 16, 10, 0)


def perform(action: Action, case: Case, actor, world):
    """Call the service that takes `action` on `case`."""
    if action == Action.REQUEST_VERIFICATION:
        return services.case_request_verification(case=case, actor=actor, at=AT)
    if action == Action.VERIFY:
        return services.case_verify(case=case, actor=actor, confirmed=True, at=AT)
    if action == Action.FILE:
        return services.case_file(case=case, actor=actor, at=AT)
    if action == Action.VOID:
        return services.case_void(case=case, actor=actor, reason="重复", at=AT)
    if action == Action.MERGE:
        other = CaseFactory(grid=world.grid_sw, state=State.FILED)
        return services.case_merge(duplicate=case, into=other, actor=actor, at=AT)
    if action == Action.ABSORB:
        other = CaseFactory(grid=world.grid_sw, state=State.REPORTED)
        return services.case_merge(duplicate=other, into=case, actor=actor, at=AT)
    if action == Action.DISPATCH:
        return services.case_dispatch(case=case, actor=actor, department=world.sanitation, at=AT)
    if action == Action.RETURN:
        return services.case_return(case=case, actor=actor, reason="不属于本部门", at=AT)
    if action == Action.REQUEST_EXTENSION:
        return services.case_extension_request(case=case, actor=actor, amount=2, unit="days", reason="需采购", at=AT)
    if action == Action.APPROVE_EXTENSION:
        return services.case_extension_approve(case=case, actor=actor, amount=1, unit="days", at=AT)
    if action == Action.REFUSE_EXTENSION:
        return services.case_extension_refuse(case=case, actor=actor, reason="理由不充分", at=AT)
    if action == Action.HANDLE:
        return services.case_handle(case=case, actor=actor, comment="已处理", photos=[jpeg()], at=AT)
    if action == Action.CHECK_PASS:
        return services.case_check(case=case, actor=actor, passed=True, photos=[jpeg()], at=AT)
    if action == Action.CHECK_FAIL:
        return services.case_check(case=case, actor=actor, passed=False, comment="未处理", photos=[jpeg()], at=AT)
    if action == Action.CLOSE:
        return services.case_close(case=case, actor=actor, at=AT)
    if action == Action.DEFER:
        return services.case_defer(case=case, actor=actor, reason="需列入改造计划", at=AT)
    if action == Action.RESUME:
        return services.case_resume(case=case, actor=actor, at=AT)
    if action == Action.URGE:
        return services.case_urge(case=case, actor=actor, level="yellow", comment="请加快", at=AT)
    raise AssertionError(action)


# Every action a service takes on an existing case (the first three create cases; alerts are
# raised by the system and tested in test_tasks).
ACTIONS_ON_CASES = [a for a in Action if a not in (Action.REPORT, Action.REGISTER, Action.SELF_HANDLE, Action.ALERT)]


def case_in(state: State, world) -> Case:
    """A case in `state`, held by sanitation and assigned to the grid worker, so that only the state can refuse."""
    extra = {}
    if state == State.MERGED:
        extra["merged_into"] = CaseFactory(grid=world.grid_sw, state=State.FILED)
    return CaseFactory(
        grid=world.grid_sw,
        state=state,
        current_department=world.sanitation,
        current_assignee=world.grid_worker,
        **extra,
    )


def allowed_actor(action: Action, world):
    roles = {t.roles for t in workflow.TRANSITIONS if t.action == action}.pop()
    by_role = {
        Role.GRID_WORKER: world.grid_worker,
        Role.OPERATOR: world.operator,
        Role.SHIFT_LEADER: world.shift_leader,
        Role.DISPATCHER: world.dispatcher,
        Role.DEPARTMENT_HANDLER: world.handler,
        Role.LEADER: world.leader,
    }
    return next(user for role, user in by_role.items() if role in roles)


def test_table_refuses_every_pair_it_does_not_declare():
    declared = {(t.source, t.action) for t in workflow.TRANSITIONS}
    refused = 0
    for state in State:
        for action in Action:
            if (state, action) in declared:
                assert workflow.transition_for(state=state, action=action).action == action
            else:
                with pytest.raises(workflow.TransitionNotAllowed):
                    workflow.transition_for(state=state, action=action)
                refused += 1
    assert refused == len(State) * len(Action) - len(workflow.TRANSITIONS)
    # Terminal states accept nothing at all
    for state in workflow.TERMINAL_STATES:
        assert [t for t in workflow.TRANSITIONS if t.source == state] == []


@pytest.mark.parametrize("action", ACTIONS_ON_CASES, ids=str)
def test_service_refuses_the_action_in_every_state_the_table_does_not_allow(world, action):
    allowed = {t.source for t in workflow.TRANSITIONS if t.action == action}
    actor = allowed_actor(action, world)
    refused_states = [s for s in STORED_STATES if s not in allowed]
    assert refused_states  # every action is illegal somewhere
    for state in refused_states:
        case = case_in(state, world)
        before = {c.pk: (c.state, c.merged_into_id) for c in Case.objects.all()}
        with pytest.raises(workflow.TransitionNotAllowed) as refused:
            perform(action, case, actor, world)
        assert refused.value.state == state
        assert refused.value.action == action
        assert "不能执行" in str(refused.value)
        # Nothing changed: no history row, no photo, every case as it was
        assert CaseHistory.objects.count() == 0
        assert CasePhoto.objects.count() == 0
        assert {c.pk: (c.state, c.merged_into_id) for c in Case.objects.all() if c.pk in before} == before


ALL_ROLES = list(Role)


@pytest.mark.parametrize("action", ACTIONS_ON_CASES, ids=str)
def test_every_role_outside_the_table_is_refused(world, action):
    transition = next(t for t in workflow.TRANSITIONS if t.action == action)
    for role in ALL_ROLES:
        if role in transition.roles:
            continue
        user = UserFactory(role=role, street=world.street, department=world.sanitation)
        case = case_in(transition.source, world)
        with pytest.raises(workflow.ActionNotPermitted) as refused:
            perform(action, case, user, world)
        assert isinstance(refused.value, PermissionDenied)
        assert refused.value.role == role
        case.refresh_from_db()
        assert case.state == transition.source
        assert CaseHistory.objects.count() == 0


def test_roles_that_are_allowed_succeed(world):
    """The positive side of the role table: each action succeeds for an allowed role in its first source state."""
    for action in ACTIONS_ON_CASES:
        transition = next(t for t in workflow.TRANSITIONS if t.action == action)
        case = case_in(transition.source, world)
        if action == Action.APPROVE_EXTENSION:
            case.step_started_at, case.deadline = AT, local(2026, 11, 16, 14, 0)
            case.save()
        if action == Action.RESUME:
            case.current_department = world.sanitation
            case.save()
        perform(action, case, allowed_actor(action, world), world)
        assert CaseHistory.objects.filter(case=case, action=action).count() == 1, action


def test_department_handler_of_another_department_may_not_touch_the_case(world):
    case = case_in(State.DISPATCHED, world)
    with pytest.raises(workflow.ActionNotPermitted, match="不在您的管辖范围内"):
        services.case_handle(case=case, actor=world.other_handler, comment="已处理", photos=[jpeg()], at=AT)
    with pytest.raises(workflow.ActionNotPermitted):
        services.case_return(case=case, actor=world.other_handler, reason="不是我们的", at=AT)
    assert CaseHistory.objects.count() == 0
    assert CasePhoto.objects.count() == 0


def test_command_center_staff_act_only_in_their_street(world):
    case = case_in(State.REPORTED, world)
    with pytest.raises(workflow.ActionNotPermitted):
        services.case_file(case=case, actor=world.outside_operator, at=AT)
    # ... and cannot register a report in someone else's street either
    with pytest.raises(workflow.ActionNotPermitted):
        services.case_report(
            actor=world.outside_operator,
            source=Case.Source.HOTLINE,
            category=world.category,
            location=POINT_SW,
            description="垃圾",
            at=AT,
        )
    assert CaseHistory.objects.count() == 0
    assert Case.objects.count() == 1


def test_grid_worker_verifies_only_in_their_grids_or_when_assigned(world):
    case = CaseFactory(grid=world.grid_sw, state=State.VERIFYING, current_assignee=None)
    with pytest.raises(workflow.ActionNotPermitted):
        services.case_verify(case=case, actor=world.other_worker, confirmed=True, at=AT)
    assert CaseHistory.objects.count() == 0
    # Assigned explicitly, the other worker may verify
    Case.objects.filter(pk=case.pk).update(current_assignee=world.other_worker)
    services.case_verify(case=case, actor=world.other_worker, confirmed=False, at=AT)
    assert CaseHistory.objects.get().payload == {"confirmed": False}


def test_grid_worker_cannot_register_a_hotline_report(world):
    with pytest.raises(workflow.ActionNotPermitted):
        services.case_report(
            actor=world.grid_worker,
            source=Case.Source.HOTLINE,
            category=world.category,
            location=POINT_SW,
            description="垃圾",
            at=AT,
        )
    assert Case.objects.count() == 0


def test_public_channel_registers_without_a_user_but_cannot_report_directly(world):
    case = services.case_report(
        actor=None, source=Case.Source.PUBLIC, category=world.category, location=POINT_SW, description="垃圾", at=AT
    )
    assert case.state == State.VERIFYING
    assert CaseHistory.objects.get(case=case).actor_role == workflow.PUBLIC
    with pytest.raises(workflow.ActionNotPermitted):
        services.case_report(
            actor=None,
            source=Case.Source.GRID_WORKER,
            category=world.category,
            location=POINT_SW,
            description="垃圾",
            at=AT,
        )
    assert Case.objects.count() == 1


def test_inactive_user_is_refused(world):
    world.operator.is_active = False
    world.operator.save()
    case = case_in(State.REPORTED, world)
    with pytest.raises(workflow.ActionNotPermitted, match="账号已停用"):
        services.case_file(case=case, actor=world.operator, at=AT)
    assert CaseHistory.objects.count() == 0


@pytest.mark.parametrize(
    ("action", "state", "call"),
    [
        (
            Action.RETURN,
            State.DISPATCHED,
            lambda c, w: services.case_return(case=c, actor=w.handler, reason=" ", at=AT),
        ),
        (Action.VOID, State.REPORTED, lambda c, w: services.case_void(case=c, actor=w.operator, reason="", at=AT)),
        (
            Action.HANDLE,
            State.DISPATCHED,
            lambda c, w: services.case_handle(case=c, actor=w.handler, comment="好了", photos=[], at=AT),
        ),
        (
            Action.CHECK_FAIL,
            State.HANDLED,
            lambda c, w: services.case_check(case=c, actor=w.grid_worker, passed=False, photos=[jpeg()], at=AT),
        ),
        (
            Action.CHECK_PASS,
            State.HANDLED,
            lambda c, w: services.case_check(case=c, actor=w.grid_worker, passed=True, photos=[], at=AT),
        ),
    ],
    ids=[
        "return-without-reason",
        "void-without-reason",
        "handle-without-photo",
        "rework-without-reason",
        "check-no-photo",
    ],
)
def test_missing_reason_or_photo_is_refused(world, action, state, call):
    case = case_in(state, world)
    with pytest.raises(ValidationError):
        call(case, world)
    case.refresh_from_db()
    assert case.state == state
    assert CaseHistory.objects.count() == 0
    assert CasePhoto.objects.count() == 0


def test_actions_available_lists_the_buttons_of_a_role(world):
    case = case_in(State.DISPATCHED, world)
    from events.selectors import case_actions_for

    assert case_actions_for(case=case, user=world.handler) == [
        Action.RETURN,
        Action.REQUEST_EXTENSION,
        Action.HANDLE,
    ]
    assert case_actions_for(case=case, user=world.other_handler) == []
    assert case_actions_for(case=case, user=world.leader) == [Action.DEFER, Action.URGE]


def test_an_invalid_reporter_phone_is_a_validation_error_and_creates_nothing(world):
    with pytest.raises(ValidationError) as refused:
        services.case_report(
            actor=world.operator,
            source=Case.Source.HOTLINE,
            category=world.category,
            location=POINT_SW,
            description="热线反映垃圾未清运",
            reporter_name="李女士",
            reporter_phone="12345",
        )
    assert "reporter_phone" in refused.value.message_dict
    assert Case.objects.count() == 0 and CaseHistory.objects.count() == 0
