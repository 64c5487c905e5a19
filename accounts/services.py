"""Writes on users: the demo accounts, one per role."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.db import transaction

from accounts.models import Role, User
from geodata.models import Department, Grid, GridAssignment, Street

# One documented password for every demo account (README, docs): the demo is for trying
# the system out, never for real data. It passes settings.AUTH_PASSWORD_VALIDATORS.
DEMO_PASSWORD = "Demo-2026-grid"  # noqa: S105
GRIDS_PER_DEMO_WORKER = 2


@dataclass(frozen=True)
class DemoAccountSpec:
    username: str
    role: Role
    display_name: str


DEMO_ACCOUNTS = (
    DemoAccountSpec("demo_grid_worker", Role.GRID_WORKER, "网格员一（示例）"),
    DemoAccountSpec("demo_grid_worker2", Role.GRID_WORKER, "网格员二（示例）"),
    DemoAccountSpec("demo_operator", Role.OPERATOR, "受理员（示例）"),
    DemoAccountSpec("demo_shift_leader", Role.SHIFT_LEADER, "值班长（示例）"),
    DemoAccountSpec("demo_dispatcher", Role.DISPATCHER, "派遣员（示例）"),
    DemoAccountSpec("demo_department_handler", Role.DEPARTMENT_HANDLER, "部门处置人员（示例）"),
    DemoAccountSpec("demo_leader", Role.LEADER, "领导（示例）"),
    DemoAccountSpec("demo_planner", Role.PLANNER, "规划人员（示例）"),
    DemoAccountSpec("demo_admin", Role.ADMIN, "系统管理员（示例）"),
)
# Command-center staff, leaders and planners work on the whole demo street.
_STREET_SCOPED = {Role.OPERATOR, Role.SHIFT_LEADER, Role.DISPATCHER, Role.LEADER, Role.PLANNER}


@dataclass(frozen=True)
class DemoAccount:
    username: str
    role: str  # the role's Chinese label
    scope: str  # where the account works, in Chinese


@transaction.atomic
def demo_accounts_ensure(*, street: Street, department: Department, password: str = DEMO_PASSWORD) -> list[DemoAccount]:
    """Create or reset the demo accounts (DEMO_ACCOUNTS), scoped to `street`.

    Idempotent: existing accounts get their role, scope and the demo password back. Grid
    workers patrol the first grids of the street's first communities (via GridAssignment,
    their only scope); the department handler belongs to `department`; demo_admin is a
    superuser. Raises ValidationError if `password` fails the password validators.
    """
    for spec in DEMO_ACCOUNTS:
        validate_password(password, user=User(username=spec.username, first_name=spec.display_name))
    # One hash for all accounts: they share a published password, so a salt per account
    # would protect nothing and would cost a second of hashing per account.
    encoded = make_password(password)
    worker_grids = _worker_grids(street)
    accounts = []
    for spec in DEMO_ACCOUNTS:
        user, _ = User.objects.select_for_update().get_or_create(username=spec.username)
        user.role = spec.role
        user.first_name, user.last_name = spec.display_name, ""
        user.password = encoded
        user.is_active = True
        user.is_staff = user.is_superuser = spec.role == Role.ADMIN
        user.street = street if spec.role in _STREET_SCOPED else None
        user.community = None
        user.department = department if spec.role == Role.DEPARTMENT_HANDLER else None
        user.save()
        scope = "全辖区（超级用户）" if spec.role == Role.ADMIN else street.name
        if spec.role == Role.DEPARTMENT_HANDLER:
            scope = department.name
        if spec.role == Role.GRID_WORKER:
            grids = worker_grids.pop(0) if worker_grids else []
            _assignments_set(user, grids)
            scope = "、".join(grid.code for grid in grids) or "（无网格）"
        accounts.append(DemoAccount(username=spec.username, role=Role(spec.role).label, scope=scope))
    return accounts


def _worker_grids(street: Street) -> list[list[Grid]]:
    """The first grids (by code) of each community of `street`, one community per worker."""
    grids = Grid.objects.filter(community__street=street, valid_to__isnull=True).order_by("code")
    by_community: dict[int, list[Grid]] = {}
    for grid in grids:
        by_community.setdefault(grid.community_id, []).append(grid)
    return [community_grids[:GRIDS_PER_DEMO_WORKER] for community_grids in by_community.values()]


def _assignments_set(worker: User, grids: list[Grid]) -> None:
    GridAssignment.objects.filter(worker=worker).exclude(grid__in=grids).delete()
    for grid in grids:
        GridAssignment.objects.get_or_create(grid=grid, worker=worker, defaults={"is_primary": True})
