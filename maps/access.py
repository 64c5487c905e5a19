"""Who may open which part of the map and statistics pages, and which part of the jurisdiction they see.

Cases are always read through events.selectors.cases_visible_to; `user_scope` is the
matching scope for places (grids and what is counted in them), so that a street's staff
see their street's grids and a grid worker their own grids.

Population figures of the register (residents, households, age structure, followed groups)
need `geodata.view_population` (`can_view_population`); without it they are left out of
every answer. Figures under SUPPRESS_BELOW are shown exactly only to users who may see the
residents themselves (`sees_small_counts`); for everyone else they go out as None, by the
one rule `suppress` (statistics exports, map layers and legends, grid and building panels,
building tiles). docs/security.md states the rule.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final

from django.db.models import QuerySet

from accounts.models import Role, User
from accounts.roles import is_district_leader
from geodata.models import Grid, GridAssignment


def can_view_statistics(user: User) -> bool:
    """Planners' statistics (aggregates only): the right is granted by role in accounts/roles.py."""
    return user.has_perm("maps.view_statistics")


def can_monitor_workers(user: User) -> bool:
    """人员监测 (grid workers' positions and tracks): command-center staff and leaders, not planners."""
    return user.has_perm("maps.monitor_workers")


def can_view_population(user: User) -> bool:
    """Population figures of the register (residents, households, age structure, followed groups):
    granted by role in accounts/roles.py; department handlers do not have it."""
    return user.has_perm("geodata.view_population")


def sees_small_counts(user: User) -> bool:
    """Whether population figures under SUPPRESS_BELOW are shown exactly: only to users with the
    right to see residents' personal data (grid workers in their grids, the admin), who may
    open those residents by name anyway. Everyone else (street and community staff, leaders,
    planners) gets them suppressed."""
    return user.has_perm("geodata.reveal_personal_data")


class PopulationHidden(PermissionError):
    """A population figure was asked for by a user without geodata.view_population (HTTP 403)."""

    def __init__(self) -> None:
        super().__init__("无权查看人口数据")


# --- small-cell suppression: the one rule ----------------------------------------------------------

Row = dict[str, Any]

# Population figures below this are not shown to users who may not see the residents themselves.
SUPPRESS_BELOW: Final = 5


def suppress(rows: list[Row], *, fields: dict[str, list[str]]) -> list[Row]:
    """Copies of `rows` with every population figure under SUPPRESS_BELOW replaced by None.

    `fields` maps each population field to the counts it is derived from: a derived value
    is suppressed when any of them is (its own value is not a count).
    """
    result = []
    for row in rows:
        out = dict(row)
        for field, sources in fields.items():
            if field not in row:
                continue
            checked = sources or [field]
            if any(row.get(source) is not None and row[source] < SUPPRESS_BELOW for source in checked):
                out[field] = None
        result.append(out)
    return result


def suppressed_sql(count: str) -> str:
    """The same rule inside SQL (vector tiles are built by PostGIS): the count `count` (an SQL
    expression), NULL when under SUPPRESS_BELOW."""
    return f"CASE WHEN ({count}) >= {int(SUPPRESS_BELOW)} THEN ({count}) END"


def population_structure_for(*, user: User, structure: Row) -> Row | None:
    """A panel's population structure as `user` may see it: None without the right, else with
    every count (totals, the sexes' totals, each sex × age band, each followed group) suppressed unless
    `sees_small_counts`. The answer says which rule applied in "suppressed_below"."""
    if not can_view_population(user):
        return None
    # the sexes' totals go out as counts of their own: a sum of suppressed bands would say nothing
    structure = {**structure, "male_total": sum(structure["male"]), "female_total": sum(structure["female"])}
    if sees_small_counts(user):
        return {**structure, "suppressed_below": None}
    totals = [
        key
        for key in ("population", "residents", "households", "followed_residents", "male_total", "female_total")
        if key in structure
    ]
    bands = {f"{sex}_{i}": n for sex in ("male", "female") for i, n in enumerate(structure[sex])}
    (shown,) = suppress(
        [{**{key: structure[key] for key in totals}, **bands}], fields={key: [] for key in [*totals, *bands]}
    )
    out: Row = {**structure, **{key: shown[key] for key in totals}}
    for sex in ("male", "female"):
        out[sex] = [shown[f"{sex}_{i}"] for i in range(len(structure[sex]))]
    out["followed"] = suppress(structure["followed"], fields={"count": []})
    out["suppressed_below"] = SUPPRESS_BELOW
    return out


@dataclasses.dataclass(frozen=True)
class Scope:
    """Part of the jurisdiction: everything, a street, a community, or a set of grids.

    Narrowing (a street chosen in a filter) never widens a scope: see `narrowed`.
    """

    street_id: int | None = None
    community_id: int | None = None
    grid_ids: frozenset[int] | None = None

    @property
    def is_everything(self) -> bool:
        return self.street_id is None and self.community_id is None and self.grid_ids is None

    def grids(self, queryset: QuerySet[Grid]) -> QuerySet[Grid]:
        if self.street_id is not None:
            queryset = queryset.filter(community__street_id=self.street_id)
        if self.community_id is not None:
            queryset = queryset.filter(community_id=self.community_id)
        if self.grid_ids is not None:
            queryset = queryset.filter(id__in=sorted(self.grid_ids))
        return queryset

    def sql(self, alias: str = "g") -> tuple[str, list[Any]]:
        """The same restriction as a SQL condition on the grid table `alias` (positional parameters)."""
        parts: list[str] = ["TRUE"]
        params: list[Any] = []
        if self.street_id is not None:
            parts.append(f"{alias}.community_id IN (SELECT id FROM geodata_community WHERE street_id = %s)")  # noqa: S608
            params.append(self.street_id)
        if self.community_id is not None:
            parts.append(f"{alias}.community_id = %s")
            params.append(self.community_id)
        if self.grid_ids is not None:
            parts.append(f"{alias}.id = ANY(%s)")
            params.append(sorted(self.grid_ids))
        return " AND ".join(parts), params

    def narrowed(self, *, street_id: int | None = None, community_id: int | None = None) -> Scope:
        """This scope further restricted to a street and/or a community; a choice that conflicts
        with the scope gives an empty scope, never a wider one."""
        conflict = (street_id is not None and self.street_id not in (None, street_id)) or (
            community_id is not None and self.community_id not in (None, community_id)
        )
        if conflict:
            return Scope(grid_ids=frozenset())
        return dataclasses.replace(
            self,
            street_id=street_id if street_id is not None else self.street_id,
            community_id=community_id if community_id is not None else self.community_id,
        )


# The scope of a user bound to no place: no grid at all (never "everything" by default).
NOWHERE = Scope(grid_ids=frozenset())


def user_scope(user: User) -> Scope:
    """The places `user` works in, decided per role (mirroring events.selectors.cases_visible_to):

    - the admin and planners: the whole district (planners work on aggregates);
    - department handlers: the whole district, on purpose: a department (环卫所, 园林所 ...)
      serves every grid, cases reach it from anywhere and its facilities stand everywhere.
      What they see of those places excludes the register's figures (no
      geodata.view_population), so the scope shows them grids, buildings, facilities and
      their own cases, never residents;
    - grid workers: the grids assigned to them;
    - command-center staff and leaders: their community, else their street; a leader bound
      to neither is the district's leader: the whole district;
    - anybody else bound to nothing of the above (staff without a street or community, a
      handler without a department): NOWHERE.
    """
    if user.is_superuser or user.role in (Role.ADMIN, Role.PLANNER):
        return Scope()
    if user.role == Role.DEPARTMENT_HANDLER:
        return Scope() if user.department_id is not None else NOWHERE
    if user.role == Role.GRID_WORKER:
        return Scope(grid_ids=frozenset(GridAssignment.objects.filter(worker=user).values_list("grid_id", flat=True)))
    if user.community_id:
        return Scope(community_id=user.community_id)
    if user.street_id:
        return Scope(street_id=user.street_id)
    return Scope() if is_district_leader(user) else NOWHERE
