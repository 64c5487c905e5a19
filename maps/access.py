"""Who may open which part of the map and statistics pages, and which part of the jurisdiction they see.

Cases are always read through events.selectors.cases_visible_to; `user_scope` is the
matching scope for places (grids and what is counted in them), so that a street's staff
see their street's grids and a grid worker their own grids.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from django.db.models import QuerySet

from accounts.models import Role, User
from geodata.models import Grid, GridAssignment


def can_view_statistics(user: User) -> bool:
    """Planners' statistics (aggregates only): the right is granted by role in accounts/roles.py."""
    return user.has_perm("maps.view_statistics")


def can_monitor_workers(user: User) -> bool:
    """人员监测 (grid workers' positions and tracks): command-center staff and leaders, not planners."""
    return user.has_perm("maps.monitor_workers")


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


def user_scope(user: User) -> Scope:
    """The places `user` works in, mirroring events.selectors.cases_visible_to."""
    if user.is_superuser or user.role in (Role.ADMIN, Role.PLANNER):
        return Scope()
    if user.role == Role.GRID_WORKER:
        return Scope(grid_ids=frozenset(GridAssignment.objects.filter(worker=user).values_list("grid_id", flat=True)))
    if user.community_id:
        return Scope(community_id=user.community_id)
    if user.street_id:
        return Scope(street_id=user.street_id)
    return Scope()
