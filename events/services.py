"""Writes of the case lifecycle.

Every change of a case goes through `_apply`, which does the same things for every action
inside the caller's transaction, with the case row locked (select_for_update):

1. look the action up in the table of events.workflow (TransitionNotAllowed if absent);
2. check the actor's role (table) and scope (street / community / department / grid);
3. check the compulsory reason and photos;
4. change the case: state, milestones, step timer and deadlines, assignee, counters;
5. write the append-only CaseHistory row and the photos attached to it;
6. save only the fields that changed;
7. queue the timer jobs with transaction.on_commit (never inside the lock).

`at` exists for tests and for importing historical records; views never pass it.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import IO, Any

from django.contrib.gis.geos import Point
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from accounts.models import Role, User
from events import indicators, selectors, workflow
from events.calendar import WorkingCalendar, timer_light
from events.models import (
    Case,
    CaseAlert,
    CaseHistory,
    CasePhoto,
    Category,
    IndicatorSnapshot,
    LimitUnit,
    RoutingRule,
    UrgeLevel,
    Urgency,
)
from events.photos import InspectedPhoto, photo_file_written, photo_files_guarded, photo_inspect
from events.workflow import Action, State, Step, Timer
from geodata import pii
from geodata.models import Department, Facility, FacilityType
from geodata.selectors import grid_for_point

PhotoFile = IO[bytes]

_FIRST_ACTION = {
    Case.Source.GRID_WORKER: Action.REPORT,
    Case.Source.VIDEO: Action.REPORT,
    Case.Source.HOTLINE: Action.REGISTER,
    Case.Source.PUBLIC: Action.REGISTER,
}

_COUNTER_UPSERT = """
    INSERT INTO events_casenumbercounter (prefix, last) VALUES (%s, 1)
    ON CONFLICT (prefix) DO UPDATE SET last = events_casenumbercounter.last + 1
    RETURNING last
"""


# --- the engine -----------------------------------------------------------------------------


def _locked(case_id: int) -> Case:
    return Case.objects.select_for_update(of=("self",)).select_related("category").get(pk=case_id)


def _snapshot(case: Case) -> dict[str, Any]:
    return {f.attname: getattr(case, f.attname) for f in Case._meta.concrete_fields if not f.primary_key}


def _role_of(actor: User | None, anonymous_role: str) -> str:
    if actor is None:
        return anonymous_role
    if not actor.is_active:
        raise workflow.ActionNotPermitted(role=actor.role, action="", reason="账号已停用，不能办理案件")
    return actor.role


def _check_scope(*, actor: User | None, role: str, case: Case, transition: workflow.Transition) -> None:
    if actor is None:
        return
    if transition.source == State.NEW and role == Role.GRID_WORKER:
        return  # grid workers report wherever they find a problem
    if not selectors.user_in_case_scope(user=actor, case=case):
        raise workflow.ActionNotPermitted(role=role, action=transition.action, reason="该案件不在您的管辖范围内")


def _store_photo(*, case: Case, history: CaseHistory, stage: str, photo: InspectedPhoto, actor: User | None) -> None:
    record = CasePhoto(
        case=case,
        history=history,
        stage=stage,
        image_format=photo.image_format,
        width=photo.width,
        height=photo.height,
        size_bytes=len(photo.data),
        sha256=photo.sha256,
        taken_at=photo.taken_at,
        taken_location=photo.taken_location,
        uploaded_by=actor,
        uploaded_at=history.created_at,
    )
    record.image.save("photo", ContentFile(photo.data), save=False)
    photo_file_written(record.image.name)  # deleted again if the transaction does not commit
    record.save()


def _start_step(case: Case, step: Step, at: dt.datetime, calendar: WorkingCalendar) -> None:
    amount, unit = case.category.step_limit(step=step, urgency=case.urgency, area_class=case.area_class)
    case.step = step
    case.step_started_at = at
    case.deadline = calendar.add(at, amount, unit)
    case.warn_at = calendar.warn_time(at, case.deadline)


def _schedule_timer_jobs(
    case_id: int, step_started_at: dt.datetime, warn_at: dt.datetime, deadline: dt.datetime
) -> None:
    from events import tasks

    started = step_started_at.isoformat()
    tasks.case_timer_check.configure(schedule_at=warn_at).defer(
        case_id=case_id, step_started_at=started, level=CaseAlert.Level.YELLOW
    )
    tasks.case_timer_check.configure(schedule_at=deadline + dt.timedelta(seconds=1)).defer(
        case_id=case_id, step_started_at=started, level=CaseAlert.Level.RED
    )


def _apply(
    *,
    case: Case,
    action: Action,
    actor: User | None,
    at: dt.datetime,
    comment: str = "",
    payload: dict[str, Any] | None = None,
    photos: Sequence[tuple[str, InspectedPhoto]] = (),
    change: Callable[[Case, WorkingCalendar], None] | None = None,
    anonymous_role: str = workflow.SYSTEM,
    reverts: CaseHistory | None = None,
) -> CaseHistory:
    """Apply one transition to `case` (locked by the caller, or not yet saved for the first one)."""
    is_new = case.pk is None
    from_state = State.NEW if is_new else State(case.state)
    transition = workflow.transition_for(state=from_state, action=action, case_number=case.number)
    role = _role_of(actor, anonymous_role)
    workflow.check_role(transition=transition, role=role)
    _check_scope(actor=actor, role=role, case=case, transition=transition)
    comment = comment.strip()
    if transition.needs_comment and not comment:
        raise ValidationError(f"“{transition.action.label}”须填写理由", code="comment_required")
    if transition.needs_photo and not any(stage == transition.needs_photo for stage, _ in photos):
        label = CasePhoto.Stage(transition.needs_photo).label
        raise ValidationError(f"“{transition.action.label}”须上传{label}照片", code="photo_required")

    before = {} if is_new else _snapshot(case)
    running_deadline = case.deadline
    calendar = WorkingCalendar()
    case.state = transition.target
    for milestone in transition.milestones:
        setattr(case, milestone, at)
    if isinstance(transition.timer, Step):
        _start_step(case, transition.timer, at, calendar)
        if transition.sets_due:
            case.due_at = case.deadline
    elif transition.timer is Timer.STOP:
        case.step, case.step_started_at, case.warn_at, case.deadline = "", None, None, None
    if change is not None:
        change(case, calendar)

    if is_new:
        case.save(force_insert=True)
    else:
        changed = [name for name, value in before.items() if getattr(case, name) != value]
        if changed:
            case.save(update_fields=[Case._meta.get_field(name).name for name in changed])
    history = CaseHistory.objects.create(
        case=case,
        action=action,
        from_state=from_state,
        to_state=case.state,
        actor=actor,
        actor_role=role,
        department_id=case.current_department_id or before.get("current_department_id"),
        street_id=case.street_id,
        community_id=case.community_id,
        grid_id=case.grid_id,
        comment=comment,
        payload=payload or {},
        step_deadline=running_deadline,
        reverts=reverts,
        created_at=at,
    )
    for stage, photo in photos:
        _store_photo(case=case, history=history, stage=stage, photo=photo, actor=actor)
    if isinstance(transition.timer, Step):
        assert case.step_started_at and case.warn_at and case.deadline
        transaction.on_commit(
            functools.partial(_schedule_timer_jobs, case.pk, case.step_started_at, case.warn_at, case.deadline)
        )
    return history


def _transition(
    *,
    case: Case | int,
    action: Action,
    actor: User | None,
    at: dt.datetime | None,
    photos: Sequence[tuple[str, PhotoFile]] = (),
    **options: Any,
) -> Case:
    """Lock the case, apply one transition, return the updated case."""
    inspected = [(stage, photo_inspect(file)) for stage, file in photos]  # decode before taking the lock
    case_id = case if isinstance(case, int) else case.pk
    with photo_files_guarded(), transaction.atomic():
        locked = _locked(case_id)
        _apply(case=locked, action=action, actor=actor, at=at or timezone.now(), photos=inspected, **options)
    return locked


# --- collect: report, register, self-handle ------------------------------------------------


def _next_case_number(*, category: Category, day: dt.date) -> str:
    """C/E + 大类 + 小类 + yyyyMMdd + serial; the UPSERT locks the day's counter row until commit."""
    prefix = f"{category.code}{day:%Y%m%d}"
    with connection.cursor() as cursor:
        cursor.execute(_COUNTER_UPSERT, [prefix])
        (serial,) = cursor.fetchone()
    return f"{prefix}{serial:04d}"


def _create_case(
    *,
    action: Action,
    actor: User | None,
    source: str,
    category: Category,
    location: Point,
    description: str,
    address: str,
    urgency: str,
    facility: Facility | None,
    photos: Sequence[tuple[str, PhotoFile]],
    reporter_name: str,
    reporter_phone: str,
    external_id: str,
    client_key: str | None,
    at: dt.datetime | None,
    replay: bool,
) -> Case:
    if client_key and replay:
        existing = Case.objects.filter(client_key=client_key).first()
        if existing is not None:
            return existing  # a retried upload: no second case
    if not category.is_active:
        raise ValidationError("该案件类别已停用", code="category_inactive")
    if not description.strip():
        raise ValidationError("请填写问题描述", code="description_required")
    if urgency not in Urgency.values:
        raise ValidationError("紧急程度无效", code="urgency_invalid")
    inspected = [(stage, photo_inspect(file)) for stage, file in photos]
    at = at or timezone.now()
    location = location.clone()
    if location.srid is None:
        location.srid = 4326
    grid = grid_for_point(point=location, day=timezone.localdate(at))
    routing = selectors.department_routing(category=category, grid=grid, facility=facility)
    try:
        phone = pii.normalize_phone(reporter_phone) if reporter_phone else ""
    except pii.InvalidPhone as invalid:
        raise ValidationError({"reporter_phone": str(invalid)}, code="phone_invalid") from None
    case = Case(
        category=category,
        source=source,
        reporter=actor,
        reporter_name=reporter_name.strip(),
        reporter_phone_encrypted=pii.encrypt(phone) if phone else "",
        reporter_phone_masked=pii.mask_phone(phone) if phone else "",
        external_id=external_id,
        client_key=client_key or None,
        location=location,
        grid=grid,
        community=grid.community,
        street=grid.community.street,
        area_class=selectors.area_class_of(grid=grid),
        facility=facility,
        description=description.strip(),
        address=address.strip(),
        urgency=urgency,
        suggested_department=routing.automatic or (routing.suggestions[0].department if routing.suggestions else None),
        reported_at=at,
    )
    if action == Action.REGISTER:
        case.current_assignee = selectors.grid_worker_of(grid_id=grid.pk)

    def insert() -> None:
        case.number = _next_case_number(category=category, day=timezone.localdate(at))
        _apply(
            case=case,
            action=action,
            actor=actor,
            at=at,
            photos=inspected,
            anonymous_role=workflow.PUBLIC,
            payload={"source": source},
        )

    if not replay:
        # The caller owns the transaction and answers a seen key itself: the unique
        # constraint on client_key raises, no look-up and no savepoint on the way.
        insert()
        return case
    try:
        with photo_files_guarded(), transaction.atomic():
            insert()
    except IntegrityError:
        if client_key:
            existing = Case.objects.filter(client_key=client_key).first()
            if existing is not None:
                return existing
        raise
    return case


def case_report(
    *,
    actor: User | None,
    source: str,
    category: Category,
    location: Point,
    description: str,
    address: str = "",
    urgency: str = Urgency.NORMAL,
    facility: Facility | None = None,
    photos: Sequence[PhotoFile] = (),
    reporter_name: str = "",
    reporter_phone: str = "",
    external_id: str = "",
    client_key: str | None = None,
    at: dt.datetime | None = None,
    replay: bool = True,
) -> Case:
    """上报 / 登记. Grid-worker and video reports wait for 立案; hotline and public reports go
    to the grid's worker for 核实 first. `actor` is None for the public channel (Open311).
    The same `client_key` never creates a second case: it returns the stored case, or, with
    `replay=False` (the caller's transaction, the caller answers), raises IntegrityError."""
    try:
        action = _FIRST_ACTION[Case.Source(source)]
    except ValueError:
        raise ValidationError("案件来源无效", code="source_invalid") from None
    return _create_case(
        action=action,
        actor=actor,
        source=source,
        category=category,
        location=location,
        description=description,
        address=address,
        urgency=urgency,
        facility=facility,
        photos=[(CasePhoto.Stage.BEFORE, p) for p in photos],
        reporter_name=reporter_name,
        reporter_phone=reporter_phone,
        external_id=external_id,
        client_key=client_key,
        at=at,
        replay=replay,
    )


def case_self_handle(
    *,
    actor: User,
    category: Category,
    location: Point,
    description: str,
    before_photos: Sequence[PhotoFile],
    after_photos: Sequence[PhotoFile],
    address: str = "",
    facility: Facility | None = None,
    client_key: str | None = None,
    at: dt.datetime | None = None,
    replay: bool = True,
) -> Case:
    """自处理: the grid worker fixed the problem on the spot; the case is recorded already finished.
    `client_key` and `replay` as for case_report."""
    if not before_photos:
        raise ValidationError("自处理须上传处置前照片", code="photo_required")
    return _create_case(
        action=Action.SELF_HANDLE,
        actor=actor,
        source=Case.Source.GRID_WORKER,
        category=category,
        location=location,
        description=description,
        address=address,
        urgency=Urgency.NORMAL,
        facility=facility,
        photos=[(CasePhoto.Stage.BEFORE, p) for p in before_photos]
        + [(CasePhoto.Stage.AFTER, p) for p in after_photos],
        reporter_name="",
        reporter_phone="",
        external_id="",
        client_key=client_key,
        at=at,
        replay=replay,
    )


# --- file: verify, file, void, merge ------------------------------------------------------------


def case_request_verification(
    *, case: Case | int, actor: User, comment: str = "", at: dt.datetime | None = None
) -> Case:
    """派发核实: send a reported case to the grid worker for on-site confirmation."""

    def change(c: Case, _: WorkingCalendar) -> None:
        c.current_assignee = selectors.grid_worker_of(grid_id=c.grid_id)

    return _transition(
        case=case, action=Action.REQUEST_VERIFICATION, actor=actor, at=at, comment=comment, change=change
    )


def case_verify(
    *,
    case: Case | int,
    actor: User,
    confirmed: bool,
    comment: str = "",
    photos: Sequence[PhotoFile] = (),
    at: dt.datetime | None = None,
) -> Case:
    """核实: the grid worker confirms on site (or not) what the public reported; the operator then files or voids."""

    def change(c: Case, _: WorkingCalendar) -> None:
        c.current_assignee = None

    return _transition(
        case=case,
        action=Action.VERIFY,
        actor=actor,
        at=at,
        comment=comment,
        payload={"confirmed": confirmed},
        photos=[(CasePhoto.Stage.VERIFY, p) for p in photos],
        change=change,
    )


def case_file(
    *, case: Case | int, actor: User, comment: str = "", auto_dispatch: bool = True, at: dt.datetime | None = None
) -> Case:
    """立案; when routing finds exactly one department, the system dispatches at once (自动派遣)."""
    at = at or timezone.now()
    case_id = case if isinstance(case, int) else case.pk
    with transaction.atomic():
        locked = _locked(case_id)
        _apply(case=locked, action=Action.FILE, actor=actor, at=at, comment=comment)
        if auto_dispatch:
            routing = selectors.case_department_routing(case=locked)
            department = routing.automatic
            if department is not None:
                reason = next(s.reason for s in routing.suggestions if s.department.pk == department.pk)
                _apply(
                    case=locked,
                    action=Action.DISPATCH,
                    actor=None,
                    at=at,
                    comment=f"自动派遣（{reason}）",
                    payload={"automatic": True, "reason": reason},
                    change=_assign_department(department),
                )
    return locked


def case_void(*, case: Case | int, actor: User, reason: str, at: dt.datetime | None = None) -> Case:
    """作废: not a city-management problem, not confirmed, or already solved."""

    def change(c: Case, _: WorkingCalendar) -> None:
        c.current_assignee = None

    return _transition(case=case, action=Action.VOID, actor=actor, at=at, comment=reason, change=change)


def case_merge(
    *, duplicate: Case | int, into: Case | int, actor: User, comment: str = "", at: dt.datetime | None = None
) -> Case:
    """合并: `duplicate` becomes part of `into`; both keep their reports and history (漏报 counts them)."""
    at = at or timezone.now()
    duplicate_id = duplicate if isinstance(duplicate, int) else duplicate.pk
    into_id = into if isinstance(into, int) else into.pk
    if duplicate_id == into_id:
        raise ValidationError("不能把案件合并到自身", code="merge_self")
    with transaction.atomic():
        # Both rows locked in primary-key order, so two merges never deadlock.
        locked = {
            c.pk: c
            for c in Case.objects.select_for_update(of=("self",))
            .select_related("category")
            .filter(pk__in=[duplicate_id, into_id])
            .order_by("pk")
        }
        dup, main = locked[duplicate_id], locked[into_id]

        def change(c: Case, _: WorkingCalendar) -> None:
            c.merged_into = main
            c.current_assignee = None

        _apply(
            case=dup,
            action=Action.MERGE,
            actor=actor,
            at=at,
            comment=comment,
            payload={"into": main.number},
            change=change,
        )

        def absorb(c: Case, _: WorkingCalendar) -> None:
            # 漏报 asks where the problem was first reported: the earliest of this case and
            # of the cases merged into it (dup is saved as merged already).
            c.first_source = (
                Case.objects.filter(Q(pk=c.pk) | Q(merged_into=c.pk))
                .order_by("reported_at", "id")
                .values_list("source", flat=True)
                .first()
            )

        _apply(
            case=main,
            action=Action.ABSORB,
            actor=actor,
            at=at,
            comment=comment,
            payload={"merged": dup.number},
            change=absorb,
        )
    return main


# --- dispatch and handle ---------------------------------------------------------------------


def _assign_department(department: Department) -> Callable[[Case, WorkingCalendar], None]:
    def change(c: Case, _: WorkingCalendar) -> None:
        c.current_department = department
        c.current_assignee = None

    return change


def case_dispatch(
    *, case: Case | int, actor: User, department: Department, comment: str = "", at: dt.datetime | None = None
) -> Case:
    """派遣 to a department; starts the 处置 time limit, which is also the case's 应结案 time."""
    return _transition(
        case=case,
        action=Action.DISPATCH,
        actor=actor,
        at=at,
        comment=comment,
        payload={"department": department.code},
        change=_assign_department(department),
    )


def case_return(*, case: Case | int, actor: User, reason: str, at: dt.datetime | None = None) -> Case:
    """回退: the department says the case is not theirs; it goes back to the dispatcher."""
    at = at or timezone.now()
    case_id = case if isinstance(case, int) else case.pk
    with transaction.atomic():
        locked = _locked(case_id)
        dispatch = CaseHistory.objects.filter(case_id=case_id, action=Action.DISPATCH).order_by("-id").first()

        def change(c: Case, _: WorkingCalendar) -> None:
            c.current_department = None
            c.return_count += 1

        _apply(case=locked, action=Action.RETURN, actor=actor, at=at, comment=reason, change=change, reverts=dispatch)
    return locked


def _parse_extension(amount: Decimal | int | str, unit: str) -> tuple[Decimal, str]:
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        raise ValidationError("延时时长无效", code="extension_invalid") from None
    if value <= 0 or unit not in LimitUnit.values:
        raise ValidationError("延时时长须大于零，单位为工作时或工作日", code="extension_invalid")
    return value, unit


def case_extension_request(
    *,
    case: Case | int,
    actor: User,
    amount: Decimal | int | str,
    unit: str,
    reason: str,
    at: dt.datetime | None = None,
) -> Case:
    """申请延时 by the department; the clock keeps running while the dispatcher decides."""
    value, unit = _parse_extension(amount, unit)
    return _transition(
        case=case,
        action=Action.REQUEST_EXTENSION,
        actor=actor,
        at=at,
        comment=reason,
        payload={"amount": str(value), "unit": unit},
    )


def case_extension_approve(
    *,
    case: Case | int,
    actor: User,
    comment: str = "",
    amount: Decimal | int | str | None = None,
    unit: str | None = None,
    at: dt.datetime | None = None,
) -> Case:
    """批准延时: the step deadline and the case's 应结案 time move by the requested (or granted) time."""
    payload: dict[str, Any] = {}

    def change(c: Case, calendar: WorkingCalendar) -> None:
        request = CaseHistory.objects.filter(case=c, action=Action.REQUEST_EXTENSION).order_by("-id").first()
        requested = request.payload if request is not None else {}
        value, granted_unit = _parse_extension(
            amount if amount is not None else requested.get("amount", "0"), unit or requested.get("unit", "")
        )
        payload.update(amount=str(value), unit=granted_unit)
        assert c.step_started_at is not None and c.deadline is not None
        c.deadline = calendar.add(c.deadline, value, granted_unit)
        c.warn_at = calendar.warn_time(c.step_started_at, c.deadline)
        if c.due_at is not None:
            c.due_at = calendar.add(c.due_at, value, granted_unit)
        c.extension_count += 1

    return _transition(
        case=case,
        action=Action.APPROVE_EXTENSION,
        actor=actor,
        at=at,
        comment=comment,
        payload=payload,
        change=change,
    )


def case_extension_refuse(*, case: Case | int, actor: User, reason: str, at: dt.datetime | None = None) -> Case:
    """驳回延时: the deadline stays."""
    return _transition(case=case, action=Action.REFUSE_EXTENSION, actor=actor, at=at, comment=reason)


def case_handle(
    *, case: Case | int, actor: User, comment: str, photos: Sequence[PhotoFile], at: dt.datetime | None = None
) -> Case:
    """处置反馈 with the "after" photo; the grid worker gets the 核查 task."""

    def change(c: Case, _: WorkingCalendar) -> None:
        c.current_assignee = selectors.grid_worker_of(grid_id=c.grid_id, prefer=c.reporter)

    return _transition(
        case=case,
        action=Action.HANDLE,
        actor=actor,
        at=at,
        comment=comment,
        photos=[(CasePhoto.Stage.AFTER, p) for p in photos],
        change=change,
    )


# --- verify and close ---------------------------------------------------------------------------


def case_check(
    *,
    case: Case | int,
    actor: User,
    passed: bool,
    photos: Sequence[PhotoFile],
    comment: str = "",
    at: dt.datetime | None = None,
) -> Case:
    """核查 on site: passed → ready to close; not passed → back to the same department (返工)."""

    def change(c: Case, _: WorkingCalendar) -> None:
        c.current_assignee = None
        if not passed:
            c.rework_count += 1

    return _transition(
        case=case,
        action=Action.CHECK_PASS if passed else Action.CHECK_FAIL,
        actor=actor,
        at=at,
        comment=comment,
        photos=[(CasePhoto.Stage.VERIFY, p) for p in photos],
        change=change,
    )


def case_close(*, case: Case | int, actor: User, comment: str = "", at: dt.datetime | None = None) -> Case:
    """结案."""
    return _transition(case=case, action=Action.CLOSE, actor=actor, at=at, comment=comment)


# --- side operations ------------------------------------------------------------------------


def case_defer(*, case: Case | int, actor: User, reason: str, at: dt.datetime | None = None) -> Case:
    """挂账: a long-term case leaves the clock (and 应结案) until resumed."""
    return _transition(case=case, action=Action.DEFER, actor=actor, at=at, comment=reason)


def case_resume(*, case: Case | int, actor: User, comment: str = "", at: dt.datetime | None = None) -> Case:
    """恢复处置: back to the department with a fresh 处置 time limit."""
    return _transition(case=case, action=Action.RESUME, actor=actor, at=at, comment=comment)


def case_urge(*, case: Case | int, actor: User, level: str, comment: str, at: dt.datetime | None = None) -> Case:
    """督办 (普通/黄牌/红牌): no state change, a history row the department sees."""
    if level not in UrgeLevel.values:
        raise ValidationError("督办级别无效", code="urge_level_invalid")

    def change(c: Case, _: WorkingCalendar) -> None:
        c.urge_count += 1

    return _transition(
        case=case, action=Action.URGE, actor=actor, at=at, comment=comment, payload={"level": level}, change=change
    )


# --- timer alerts -----------------------------------------------------------------------------


def case_alert_raise(
    *, case_id: int, level: str, step_started_at: dt.datetime | None = None, at: dt.datetime | None = None
) -> CaseHistory | None:
    """Record a yellow/red alert for the case's running step, once per level and step.

    Returns None (and changes nothing) when the step has moved on, the level is not
    reached yet, or the alert was already recorded: re-running a job has no effect.
    """
    at = at or timezone.now()
    with transaction.atomic():
        case = _locked(case_id)
        if case.deadline is None or case.step_started_at is None:
            return None
        if step_started_at is not None and case.step_started_at != step_started_at:
            return None
        light = timer_light(warn_at=case.warn_at, deadline=case.deadline, now=at)
        if light != CaseAlert.Level.RED and not (level == CaseAlert.Level.YELLOW and light == CaseAlert.Level.YELLOW):
            return None
        if CaseAlert.objects.filter(case=case, step_started_at=case.step_started_at, level=level).exists():
            return None
        step, started, deadline = case.step, case.step_started_at, case.deadline
        history = _apply(
            case=case,
            action=Action.ALERT,
            actor=None,
            at=at,
            comment=f"{Step(step).label}环节{CaseAlert.Level(level).label}预警",
            payload={"level": level, "step": step},
        )
        CaseAlert.objects.create(
            case=case,
            level=level,
            step=step,
            step_started_at=started,
            deadline=deadline,
            department=case.current_department,
            created_at=at,
        )
    return history


def case_alerts_sweep(*, at: dt.datetime | None = None) -> int:
    """Safety net behind the scheduled timer jobs: raise every alert due and not yet recorded."""
    at = at or timezone.now()
    raised = 0
    for level in (CaseAlert.Level.YELLOW, CaseAlert.Level.RED):
        recorded = CaseAlert.objects.filter(
            case=OuterRef("pk"), step_started_at=OuterRef("step_started_at"), level=level
        )
        pending = (
            selectors.cases_turning(level=level, now=at)
            .exclude(Exists(recorded))
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        for case_id in pending:
            if case_alert_raise(case_id=case_id, level=level, at=at) is not None:
                raised += 1
    return raised


# --- indicators and catalogue -------------------------------------------------------------------


def indicator_snapshot_take(*, day: dt.date) -> list[IndicatorSnapshot]:
    """Store the indicators of `day` (replacing an earlier snapshot of the same day)."""
    start, end = indicators.day_bounds(day)
    snapshots = []
    with transaction.atomic():
        for kind, rows in indicators.all_tables(start=start, end=end, as_of=end).items():
            snapshot, _ = IndicatorSnapshot.objects.update_or_create(
                day=day, kind=kind, defaults={"rows": rows, "created_at": timezone.now()}
            )
            snapshots.append(snapshot)
    return snapshots


_CATEGORY_FIELDS = (
    "major_name",
    "minor_name",
    "filing_condition",
    "closing_condition",
    "verify_hours",
    "filing_hours",
    "dispatch_hours",
    "handling_unit_normal",
    "handling_normal_a",
    "handling_normal_b",
    "handling_normal_c",
    "handling_unit_urgent",
    "handling_urgent_a",
    "handling_urgent_b",
    "handling_urgent_c",
    "check_hours",
    "close_hours",
)


def category_catalogue_load(*, data: dict[str, Any], overwrite: bool = False) -> dict[str, int]:
    """Load the catalogue (departments, categories, routing rules) from the fixture's structure.

    Idempotent: rows are matched by their codes. Existing rows are left as the admin edited
    them unless `overwrite` is set. Returns counts of created and updated rows.
    """
    counts = {"departments_created": 0, "categories_created": 0, "categories_updated": 0, "rules_created": 0}
    with transaction.atomic():
        departments: dict[str, Department] = {}
        for entry in data.get("departments", []):
            department, created = Department.objects.get_or_create(
                code=entry["code"], defaults={"name": entry["name"], "kind": entry.get("kind", "professional")}
            )
            departments[department.code] = department
            counts["departments_created"] += created

        def department_of(code: str | None) -> Department | None:
            if not code:
                return None
            if code not in departments:
                departments[code] = Department.objects.get(code=code)
            return departments[code]

        for entry in data["categories"]:
            values: dict[str, Any] = {name: entry[name] for name in _CATEGORY_FIELDS if name in entry}
            for name in values:
                if name.endswith(("_hours", "_a", "_b", "_c")):
                    values[name] = Decimal(str(values[name]))
            values["default_department"] = department_of(entry.get("default_department"))
            if entry["kind"] == Category.Kind.COMPONENT:
                values["facility_type"], _ = FacilityType.objects.get_or_create(
                    major_code=entry["major_code"],
                    minor_code=entry["minor_code"],
                    defaults={"major_name": entry["major_name"], "minor_name": entry["minor_name"]},
                )
            keys = {"kind": entry["kind"], "major_code": entry["major_code"], "minor_code": entry["minor_code"]}
            category = Category.objects.filter(**keys).first()
            if category is None:
                category = Category(**keys, **values)
                category.full_clean()
                category.save()
                counts["categories_created"] += 1
            elif overwrite:
                changed = [name for name, value in values.items() if getattr(category, name) != value]
                if changed:
                    for name in changed:
                        setattr(category, name, values[name])
                    category.full_clean()
                    category.save(update_fields=changed)
                    counts["categories_updated"] += 1
            for rule in entry.get("rules", []):
                _, created = RoutingRule.objects.get_or_create(
                    category=category,
                    department=department_of(rule["department"]),
                    street=None,
                    community=None,
                    defaults={"priority": rule.get("priority", 100), "note": rule.get("note", "")},
                )
                counts["rules_created"] += created
    return counts
