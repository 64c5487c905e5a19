"""What each role may do, as Django permissions. The one place that maps roles to rights.

Apps check rights with `user.has_perm("app.codename")` and never compare role strings, so
`geodata` and `events` need not import this app. RolePermissionBackend grants these
permissions on top of Django's per-user and per-group ones.
"""

from accounts.models import Role

_MONITOR = "maps.monitor_workers"  # 人员监测: positions and tracks of grid workers
_STATISTICS = "maps.view_statistics"  # planners' aggregates (never personal data)
_INDICATORS = "events.view_indicatorsnapshot"  # 综合评价
# Population figures of the register (residents, households, age structure, followed groups):
# everyone whose work is about places, not departments; figures under five are shown exactly
# only with geodata.reveal_personal_data (maps.access.sees_small_counts).
_POPULATION = "geodata.view_population"

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    Role.GRID_WORKER: frozenset({"geodata.reveal_personal_data", "patrol.add_patrolsession", _POPULATION}),
    Role.OPERATOR: frozenset({_MONITOR, _POPULATION}),
    Role.SHIFT_LEADER: frozenset({_INDICATORS, _MONITOR, _POPULATION}),
    Role.DISPATCHER: frozenset({_MONITOR, _POPULATION}),
    Role.DEPARTMENT_HANDLER: frozenset(),  # a department's work is its cases, not the register
    Role.LEADER: frozenset({_INDICATORS, _MONITOR, _STATISTICS, _POPULATION}),
    Role.PLANNER: frozenset({_INDICATORS, _STATISTICS, "geodata.design_grids", _POPULATION}),
    Role.ADMIN: frozenset(
        {
            "geodata.reveal_personal_data",
            "geodata.reveal_personal_data_anywhere",
            "geodata.design_grids",
            _INDICATORS,
            _MONITOR,
            _STATISTICS,
            _POPULATION,
        }
    ),
}


def is_district_leader(user) -> bool:
    """A leader bound to no street or community leads the whole district. Other staff bound to
    no place see nothing: events.selectors, events.indicators and maps.access follow this."""
    return getattr(user, "role", "") == Role.LEADER and user.community_id is None and user.street_id is None


class RolePermissionBackend:
    """Grants the permissions of the user's role.

    Deliberately not a full authentication backend (no get_user): sessions and log-in stay
    with ModelBackend, so listing this backend first costs nothing but a set look-up.
    """

    def authenticate(self, request, **credentials):
        return None

    def get_all_permissions(self, user_obj, obj=None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous:
            return set()
        return set(ROLE_PERMISSIONS.get(getattr(user_obj, "role", ""), frozenset()))

    def has_perm(self, user_obj, perm, obj=None) -> bool:
        return perm in self.get_all_permissions(user_obj, obj)
