"""Display helpers of the command-center screens: timer-light dots, role labels, history details."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from command.access import may_register, may_see_indicators
from events import workflow
from events.models import Case, CaseAlert, CaseHistory, LimitUnit, UrgeLevel
from events.workflow import Action, State

register = template.Library()

LIGHT_LABELS = {"green": "正常", "yellow": "即将超时", "red": "已超时"}


@register.simple_tag
def timer_light(case: Case) -> str:
    """A green / yellow / red dot for the running step (annotated by selectors.with_timer_light)."""
    light = getattr(case, "timer_light", "") or ""
    if not light:
        return mark_safe('<span class="light light-none" title="不计时"></span>')
    step = case.get_step_display() if case.step else ""
    deadline = timezone.localtime(case.deadline).strftime("%Y-%m-%d %H:%M") if case.deadline else ""
    title = f"{step}环节{LIGHT_LABELS[light]}，时限 {deadline}"
    return format_html('<span class="light light-{}" title="{}" data-light="{}"></span>', light, title, light)


@register.filter
def light_label(case: Case) -> str:
    return LIGHT_LABELS.get(getattr(case, "timer_light", "") or "", "")


@register.filter
def role_label(role: str) -> str:
    return workflow.ROLE_LABELS.get(role, role)


@register.filter
def state_label(state: str) -> str:
    return State(state).label if state in State.values else state


@register.filter
def action_label(action: str) -> str:
    return Action(action).label if action in Action.values else action


def _amount(payload: dict[str, Any]) -> str:
    amount = Decimal(str(payload["amount"])).normalize()
    unit = LimitUnit(payload["unit"]).label if payload.get("unit") in LimitUnit.values else payload.get("unit", "")
    return f"{amount:f} {unit}"


@register.filter
def history_details(history: CaseHistory) -> str:
    """What the row's payload says, in words: department, extension time, 督办 level, merge target."""
    payload = history.payload or {}
    parts = []
    if "source" in payload and payload["source"] in Case.Source.values:
        parts.append(f"来源：{Case.Source(payload['source']).label}")
    if "department" in payload and history.department is not None:
        parts.append(f"派往：{history.department}")
    if "amount" in payload:
        parts.append(f"时长：{_amount(payload)}")
    if "level" in payload:
        level = payload["level"]
        if level in UrgeLevel.values and "step" not in payload:
            parts.append(UrgeLevel(level).label)
        elif level in CaseAlert.Level.values:
            parts.append(CaseAlert.Level(level).label)
    if "into" in payload:
        parts.append(f"并入案件 {payload['into']}")
    if "merged" in payload:
        parts.append(f"并入重复案件 {payload['merged']}")
    if "confirmed" in payload:
        parts.append("情况属实" if payload["confirmed"] else "情况不属实")
    return "；".join(parts)


@register.filter
def urge_level(history: CaseHistory | None) -> str:
    if history is None:
        return ""
    level = (history.payload or {}).get("level", "")
    return UrgeLevel(level).label if level in UrgeLevel.values else ""


@register.filter
def urge_class(history: CaseHistory | None) -> str:
    if history is None:
        return ""
    return f"urge-{(history.payload or {}).get('level', '')}"


@register.filter
def extension_text(history: CaseHistory | None) -> str:
    if history is None or "amount" not in (history.payload or {}):
        return ""
    return _amount(history.payload)


@register.filter
def cell(value: Any) -> str:
    """An indicator value: rates with two decimals, missing rates as a dash."""
    if value is None:
        return "—"
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return str(value)


@register.filter
def distance(value: Any) -> str:
    metres = getattr(value, "m", value)
    return f"{float(metres):.0f} 米" if metres is not None else ""


@register.inclusion_tag("command/_nav.html", takes_context=True)
def command_nav(context: template.Context) -> dict[str, Any]:
    request = context["request"]
    user = request.user
    return {
        "user": user,
        "path": request.path,
        "may_register": may_register(user),
        "has_department": user.department_id is not None,
        "may_see_indicators": may_see_indicators(user),
    }
