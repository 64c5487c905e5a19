"""What the screens offer a user, asked of the transition table and of the role permissions."""

from accounts.models import User
from events import workflow
from events.workflow import Action, State


def may_register(user: User) -> bool:
    """登记 is in the transition table for this role (the first transition of a hotline case)."""
    return Action.REGISTER in workflow.actions_available(state=State.NEW, role=user.role)


def may_see_indicators(user: User) -> bool:
    """综合评价 figures: the right to view indicator snapshots (given to roles in accounts.roles, or in the admin)."""
    return user.has_perm("events.view_indicatorsnapshot")
