"""What each role may do, as Django permissions. The one place that maps roles to rights.

Apps check rights with `user.has_perm("app.codename")` and never compare role strings, so
`geodata` and `events` need not import this app. RolePermissionBackend grants these
permissions on top of Django's per-user and per-group ones.
"""

from django.contrib.auth.backends import BaseBackend

from accounts.models import Role

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    Role.GRID_WORKER: frozenset({"geodata.reveal_personal_data"}),
    Role.OPERATOR: frozenset(),
    Role.SHIFT_LEADER: frozenset({"events.view_indicatorsnapshot"}),
    Role.DISPATCHER: frozenset(),
    Role.DEPARTMENT_HANDLER: frozenset(),
    Role.LEADER: frozenset({"events.view_indicatorsnapshot"}),
    Role.PLANNER: frozenset({"events.view_indicatorsnapshot", "geodata.design_grids"}),
    Role.ADMIN: frozenset(
        {
            "geodata.reveal_personal_data",
            "geodata.reveal_personal_data_anywhere",
            "events.view_indicatorsnapshot",
            "geodata.design_grids",
        }
    ),
}


class RolePermissionBackend(BaseBackend):
    """Grants the permissions of the user's role (authentication is left to ModelBackend)."""

    def get_all_permissions(self, user_obj, obj=None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous:
            return set()
        return set(ROLE_PERMISSIONS.get(getattr(user_obj, "role", ""), frozenset()))

    def has_perm(self, user_obj, perm, obj=None) -> bool:
        return perm in self.get_all_permissions(user_obj, obj)
