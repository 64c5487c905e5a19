"""The case workflow (数字城管七步闭环): every state, every action and the one transition table.

This module is the only place that knows which action is allowed in which state, which
state it leads to, which roles may take it, which step timer it starts and which
milestone it stamps. Services ask it (`transition_for`, `check_role`) and never compare
state strings themselves. docs/workflow.md is generated from `TRANSITIONS`
(`manage.py workflow_diagram`), so the documentation cannot drift from the code.

It imports no models: models, services and selectors import it.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable

from django.core.exceptions import PermissionDenied
from django.db import models

from accounts.models import Role


class State(models.TextChoices):
    NEW = "new", "新建"  # only the source of the first transition; never stored on a case
    VERIFYING = "verifying", "待核实"
    REPORTED = "reported", "待立案"
    FILED = "filed", "待派遣"
    DISPATCHED = "dispatched", "处置中"
    EXTENSION_PENDING = "extension_pending", "延时待审"
    HANDLED = "handled", "待核查"
    CHECKED = "checked", "待结案"
    DEFERRED = "deferred", "挂账"
    CLOSED = "closed", "已结案"
    VOIDED = "voided", "已作废"
    MERGED = "merged", "已合并"
    SELF_HANDLED = "self_handled", "自处理结案"


class Action(models.TextChoices):
    REPORT = "report", "上报"
    REGISTER = "register", "登记（热线/公众）"
    SELF_HANDLE = "self_handle", "自处理"
    REQUEST_VERIFICATION = "request_verification", "派发核实"
    VERIFY = "verify", "核实"
    FILE = "file", "立案"
    VOID = "void", "作废"
    MERGE = "merge", "合并"
    ABSORB = "absorb", "并入重复案件"
    DISPATCH = "dispatch", "派遣"
    RETURN = "return", "回退"
    REQUEST_EXTENSION = "request_extension", "申请延时"
    APPROVE_EXTENSION = "approve_extension", "批准延时"
    REFUSE_EXTENSION = "refuse_extension", "驳回延时"
    HANDLE = "handle", "处置反馈"
    CHECK_PASS = "check_pass", "核查通过"
    CHECK_FAIL = "check_fail", "核查不通过（返工）"
    CLOSE = "close", "结案"
    DEFER = "defer", "挂账"
    RESUME = "resume", "恢复处置"
    URGE = "urge", "督办"
    ALERT = "alert", "超时预警"


class Step(models.TextChoices):
    """A timed step of the loop; each has its own time limit (时限) from the category."""

    VERIFY = "verify", "核实"
    FILE = "file", "立案"
    DISPATCH = "dispatch", "派遣"
    HANDLE = "handle", "处置"
    CHECK = "check", "核查"
    CLOSE = "close", "结案"


class Timer(enum.Enum):
    """What a transition does to the step timer besides starting a new step."""

    KEEP = "keep"  # same step continues, deadline unchanged (unless the service moves it)
    STOP = "stop"  # no step is running any more (terminal states, 挂账)


# Pseudo-roles for actors that are not logged-in staff.
SYSTEM = "system"  # the application itself: automatic dispatch, timer alerts
PUBLIC = "public"  # a citizen through 12345 / an app / Open311, without a user account
ROLE_LABELS: dict[str, str] = {**dict(Role.choices), SYSTEM: "系统", PUBLIC: "公众"}

_COMMAND = frozenset({Role.OPERATOR, Role.SHIFT_LEADER})


@dataclasses.dataclass(frozen=True)
class Transition:
    source: State
    action: Action
    target: State
    roles: frozenset[str]
    timer: Step | Timer = Timer.KEEP
    milestones: tuple[str, ...] = ()  # Case fields stamped with the transition time
    sets_due: bool = False  # the new 处置 deadline becomes the case's due time (应结案 date)
    needs_comment: bool = False  # a reason is compulsory (回退, 作废, 延时, 返工 ...)
    needs_photo: str = ""  # photo stage that must come with the action ("after", "verify")


def _many(
    sources: Iterable[State],
    action: Action,
    target: State | None,
    roles: Iterable[str],
    **options,
) -> list[Transition]:
    """One row per source state; target None means the state does not change."""
    ordered = sorted(sources, key=list(State).index)  # enum order: the generated docs must not vary
    return [Transition(s, action, target or s, frozenset(roles), **options) for s in ordered]


# States in which the case is still being worked on.
OPEN_STATES = frozenset(
    {
        State.VERIFYING,
        State.REPORTED,
        State.FILED,
        State.DISPATCHED,
        State.EXTENSION_PENDING,
        State.HANDLED,
        State.CHECKED,
        State.DEFERRED,
    }
)
# Open states with a running step timer (挂账 stops the clock).
TIMED_STATES = OPEN_STATES - {State.DEFERRED}
TERMINAL_STATES = frozenset({State.CLOSED, State.VOIDED, State.MERGED, State.SELF_HANDLED})
# Cases that count for 应结案 once they are due (a deferred case is out while deferred).
EVALUATED_STATES = frozenset(TIMED_STATES | {State.CLOSED})
# States in which a department holds the case.
WITH_DEPARTMENT_STATES = frozenset({State.DISPATCHED, State.EXTENSION_PENDING})

TRANSITIONS: tuple[Transition, ...] = (
    # 1. 信息收集
    Transition(
        State.NEW,
        Action.REPORT,
        State.REPORTED,
        frozenset({Role.GRID_WORKER, *_COMMAND}),
        timer=Step.FILE,
        milestones=("reported_at",),
    ),
    Transition(
        State.NEW,
        Action.REGISTER,
        State.VERIFYING,
        frozenset({*_COMMAND, PUBLIC}),
        timer=Step.VERIFY,
        milestones=("reported_at",),
    ),
    Transition(
        State.NEW,
        Action.SELF_HANDLE,
        State.SELF_HANDLED,
        frozenset({Role.GRID_WORKER}),
        timer=Timer.STOP,
        milestones=("reported_at", "handled_at", "closed_at"),
        needs_photo="after",
    ),
    # 2. 案卷建立 (核实 first for public and hotline reports)
    Transition(
        State.REPORTED,
        Action.REQUEST_VERIFICATION,
        State.VERIFYING,
        _COMMAND,
        timer=Step.VERIFY,
    ),
    Transition(
        State.VERIFYING,
        Action.VERIFY,
        State.REPORTED,
        frozenset({Role.GRID_WORKER}),
        timer=Step.FILE,
        milestones=("verified_at",),
    ),
    Transition(State.REPORTED, Action.FILE, State.FILED, _COMMAND, timer=Step.DISPATCH, milestones=("filed_at",)),
    *_many(
        (State.VERIFYING, State.REPORTED),
        Action.VOID,
        State.VOIDED,
        _COMMAND,
        timer=Timer.STOP,
        milestones=("voided_at",),
        needs_comment=True,
    ),
    *_many(
        (State.VERIFYING, State.REPORTED, State.FILED),
        Action.MERGE,
        State.MERGED,
        _COMMAND,
        timer=Timer.STOP,
        milestones=("merged_at",),
    ),
    *_many(OPEN_STATES, Action.ABSORB, None, _COMMAND),
    # 3. 任务派遣
    Transition(
        State.FILED,
        Action.DISPATCH,
        State.DISPATCHED,
        frozenset({Role.DISPATCHER, Role.SHIFT_LEADER, SYSTEM}),
        timer=Step.HANDLE,
        milestones=("dispatched_at",),
        sets_due=True,
    ),
    *_many(
        WITH_DEPARTMENT_STATES,
        Action.RETURN,
        State.FILED,
        {Role.DEPARTMENT_HANDLER},
        timer=Step.DISPATCH,
        needs_comment=True,
    ),
    # 4. 任务处理: extensions
    Transition(
        State.DISPATCHED,
        Action.REQUEST_EXTENSION,
        State.EXTENSION_PENDING,
        frozenset({Role.DEPARTMENT_HANDLER}),
        needs_comment=True,
    ),
    Transition(
        State.EXTENSION_PENDING,
        Action.APPROVE_EXTENSION,
        State.DISPATCHED,
        frozenset({Role.DISPATCHER, Role.SHIFT_LEADER}),
    ),
    Transition(
        State.EXTENSION_PENDING,
        Action.REFUSE_EXTENSION,
        State.DISPATCHED,
        frozenset({Role.DISPATCHER, Role.SHIFT_LEADER}),
        needs_comment=True,
    ),
    # 5. 处理反馈
    *_many(
        WITH_DEPARTMENT_STATES,
        Action.HANDLE,
        State.HANDLED,
        {Role.DEPARTMENT_HANDLER},
        timer=Step.CHECK,
        milestones=("handled_at",),
        needs_photo="after",
    ),
    # 6. 核查结案
    Transition(
        State.HANDLED,
        Action.CHECK_PASS,
        State.CHECKED,
        frozenset({Role.GRID_WORKER}),
        timer=Step.CLOSE,
        milestones=("checked_at",),
        needs_photo="verify",
    ),
    Transition(
        State.HANDLED,
        Action.CHECK_FAIL,
        State.DISPATCHED,
        frozenset({Role.GRID_WORKER}),
        timer=Step.HANDLE,
        needs_comment=True,
        needs_photo="verify",
    ),
    Transition(
        State.CHECKED,
        Action.CLOSE,
        State.CLOSED,
        frozenset({Role.SHIFT_LEADER}),
        timer=Timer.STOP,
        milestones=("closed_at",),
    ),
    # Side operations: 挂账, 督办, alerts
    *_many(
        WITH_DEPARTMENT_STATES,
        Action.DEFER,
        State.DEFERRED,
        {Role.LEADER},
        timer=Timer.STOP,
        milestones=("deferred_at",),
        needs_comment=True,
    ),
    Transition(
        State.DEFERRED,
        Action.RESUME,
        State.DISPATCHED,
        frozenset({Role.LEADER}),
        timer=Step.HANDLE,
        sets_due=True,
    ),
    *_many(OPEN_STATES, Action.URGE, None, {Role.LEADER, Role.SHIFT_LEADER}, needs_comment=True),
    *_many(TIMED_STATES, Action.ALERT, None, {SYSTEM}),
)

_TABLE: dict[tuple[str, str], Transition] = {}
for _t in TRANSITIONS:
    if (_t.source, _t.action) in _TABLE:
        raise RuntimeError(f"Duplicate transition {_t.source} x {_t.action}")
    _TABLE[(_t.source, _t.action)] = _t


class WorkflowError(Exception):
    """Base class of the workflow's refusals."""


class TransitionNotAllowed(WorkflowError):
    """The action is not allowed in the case's current state (HTTP 409). Nothing was changed."""

    def __init__(self, *, state: str, action: str, case_number: str = ""):
        self.state = state
        self.action = action
        self.case_number = case_number
        state_label = State(state).label if state in State.values else state
        action_label = Action(action).label if action in Action.values else action
        prefix = f"案件 {case_number} " if case_number else "案件"
        super().__init__(f"{prefix}当前状态为“{state_label}”，不能执行“{action_label}”")


class ActionNotPermitted(PermissionDenied, WorkflowError):
    """The actor's role or scope does not allow the action (HTTP 403). Nothing was changed."""

    def __init__(self, *, role: str, action: str, reason: str = ""):
        self.role = role
        self.action = action
        action_label = Action(action).label if action in Action.values else action
        message = reason or f"角色“{ROLE_LABELS.get(role, role)}”无权执行“{action_label}”"
        super().__init__(message)


def transition_for(*, state: str, action: str, case_number: str = "") -> Transition:
    """The table row for `action` in `state`, or TransitionNotAllowed."""
    try:
        return _TABLE[(state, action)]
    except KeyError:
        raise TransitionNotAllowed(state=state, action=action, case_number=case_number) from None


def check_role(*, transition: Transition, role: str) -> None:
    if role not in transition.roles:
        raise ActionNotPermitted(role=role, action=transition.action)


def actions_available(*, state: str, role: str) -> list[Action]:
    """Actions a role may take on a case in `state` (for screens showing buttons)."""
    return [t.action for t in TRANSITIONS if t.source == state and role in t.roles]


def is_open(state: str) -> bool:
    return state in OPEN_STATES


# --- documentation generated from the table --------------------------------------------------


def mermaid_state_diagram() -> str:
    """A Mermaid stateDiagram of every state-changing transition (same-state actions are listed apart)."""
    lines = ["stateDiagram-v2", "    direction TB"]
    used = {t.source for t in TRANSITIONS} | {t.target for t in TRANSITIONS}
    for state in State:
        if state in used and state != State.NEW:
            lines.append(f'    state "{state.label}" as {state.value}')
    edges: dict[tuple[str, str], list[str]] = {}
    for t in TRANSITIONS:
        if t.source == t.target:
            continue
        source = "[*]" if t.source == State.NEW else t.source.value
        edges.setdefault((source, t.target.value), []).append(t.action.label)
    for (source, target), labels in edges.items():
        lines.append(f"    {source} --> {target}: {' / '.join(dict.fromkeys(labels))}")
    for state in State:
        if state in TERMINAL_STATES:
            lines.append(f"    {state.value} --> [*]")
    return "\n".join(lines)


def transition_table_markdown() -> str:
    """Every row of the table as a Markdown table: state, action, next state, roles, timer, requirements."""
    header = "| 当前状态 | 操作 | 下一状态 | 可操作角色 | 计时 | 要求 |\n|---|---|---|---|---|---|"
    rows = [header]
    for t in TRANSITIONS:
        roles = "、".join(ROLE_LABELS.get(r, r) for r in sorted(t.roles))
        if isinstance(t.timer, Step):
            timer = f"开始{t.timer.label}计时"
        else:
            timer = {Timer.KEEP: "计时不变", Timer.STOP: "停止计时"}[t.timer]
        needs = []
        if t.needs_comment:
            needs.append("须填写理由")
        if t.needs_photo:
            needs.append({"after": "须附处置后照片", "verify": "须附核查照片"}[t.needs_photo])
        if t.sets_due:
            needs.append("设定应结案时间")
        target = "（不变）" if t.source == t.target else t.target.label
        rows.append(
            f"| {t.source.label} | {t.action.label} | {target} | {roles} | {timer} | {'；'.join(needs) or '—'} |"
        )
    return "\n".join(rows)
