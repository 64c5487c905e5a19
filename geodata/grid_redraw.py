"""Grid redraw (网格调整): design proposals, adjust them, adopt them without losing history.

Writes: `grid_proposal_create` (design a community with geodata.grid_design),
`grid_proposal_from_current` (start from the grids in force), `proposed_grids_merge`,
`proposed_grid_split`, `grid_proposal_adopt` / `grid_proposals_adopt`.
Reads: `proposal_balance`, `proposal_geojson`, `current_grids_geojson`,
`current_grid_balance`, `communities_for_planner`.

Adoption never rewrites the past: grids the proposal changes get valid_to = the adoption
day, new grids start that day with serials after every serial the community ever used, the
register is re-attributed only inside the changed area (geodata.services.
register_assign_grids), and grid workers follow their grid to the new grid that took most
of it. The rules are written down in docs/grid_design.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import geopandas as gpd
import numpy as np
import shapely
from django.conf import settings
from django.contrib.gis.geos import GEOSGeometry, Polygon
from django.db import connection, transaction
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from shapely.geometry.base import BaseGeometry

from geodata.grid_design import (
    BalanceRow,
    BalanceSummary,
    BuildingSite,
    DesignTarget,
    GridDesignError,
    balance_summary,
    design_grids,
    serial_order,
)
from geodata.models import (
    Building,
    Community,
    GeographyPolsbyPopper,
    Grid,
    GridAssignment,
    GridDesignProposal,
    Household,
    ProposedGrid,
)
from geodata.selectors import grids_valid_on
from geodata.services import register_assign_grids

# A designed vertex this close (metres, in the metric CRS) to the boundary of the divided
# area lies on it; it is moved exactly onto the stored boundary (see _to_storage).
_ON_BOUNDARY_M = 1e-6
# Inserting a new vertex into a neighbour's edge (after a split) uses a far smaller tolerance:
# the vertex is already on the edge up to rounding.
_NODE_DEGREES = 1e-9
# Two tilings are the same when they differ by less than this (m²), as in the tests.
_TILING_TOLERANCE_M2 = 0.01


class GridRedrawError(GridDesignError):
    """A proposal cannot be changed or adopted; the message says why, in Chinese."""


# --- writes -----------------------------------------------------------------------------


def grid_proposal_create(
    *,
    community: Community,
    target: DesignTarget,
    barriers: Sequence[GEOSGeometry] = (),
    created_by: Any = None,
    note: str = "",
) -> GridDesignProposal:
    """Design grids for `community` and store them as a draft proposal (nothing is adopted).

    `barriers` are road or river lines (storage SRID) preferred as grid boundaries. Raises
    GridDesignError with a Chinese message for a community that cannot be designed.
    """
    target.validate()
    region = _storage_region(community.geom, what=f"社区「{community.name}」的边界")
    region_metric = _to_metric([region])[0]
    sites = _building_sites(community.geom)
    lines = _to_metric([shapely.from_wkb(bytes(line.wkb)) for line in barriers]) if barriers else []
    designed = design_grids(region=region_metric, buildings=sites, target=target, barriers=lines)
    polygons = _to_storage([grid.geom for grid in designed], boundary_of=region, metric_boundary_of=region_metric)
    with transaction.atomic():
        proposal = _new_proposal(community=community, target=target, created_by=created_by, note=note)
        ProposedGrid.objects.bulk_create(
            ProposedGrid(proposal=proposal, position=position, geom=_geos(polygon))
            for position, polygon in enumerate(polygons, start=1)
        )
        _recount(proposal)
    return proposal


def grid_proposal_from_current(
    *, community: Community, target: DesignTarget, created_by: Any = None, note: str = ""
) -> GridDesignProposal:
    """A draft proposal that starts as the grids of `community` in force today, to be adjusted
    by merging and splitting; adopting it changes only the grids that were adjusted."""
    target.validate()
    current = list(grids_valid_on().filter(community=community).order_by("code"))
    if not current:
        raise GridRedrawError(f"社区「{community.name}」目前没有在用的网格，请直接生成新方案。")
    with transaction.atomic():
        proposal = _new_proposal(community=community, target=target, created_by=created_by, note=note)
        ProposedGrid.objects.bulk_create(
            ProposedGrid(proposal=proposal, position=position, geom=grid.geom)
            for position, grid in enumerate(current, start=1)
        )
        _renumber(proposal)
        _recount(proposal)
    return proposal


def proposed_grids_merge(*, proposal: GridDesignProposal, first_id: int, second_id: int) -> ProposedGrid:
    """Merge two neighbouring grids of a draft proposal into one (the first keeps its row)."""
    with transaction.atomic():
        proposal = _locked_draft(proposal)
        if first_id == second_id:
            raise GridRedrawError("请选择两个不同的网格进行合并。")
        grids = {g.pk: g for g in proposal.grids.filter(pk__in=[first_id, second_id])}
        if len(grids) != 2:
            raise GridRedrawError("所选网格不属于该方案，请刷新页面后重试。")
        first, second = grids[first_id], grids[second_id]
        merged = shapely.union(_shapely(first.geom), _shapely(second.geom))
        if merged.geom_type != "Polygon":
            raise GridRedrawError(
                f"第 {first.position} 格和第 {second.position} 格没有公共边，合并后不是一个整体，不能合并。"
            )
        first.geom = _geos(shapely.normalize(merged))
        first.save(update_fields=["geom"])
        second.delete()
        _renumber(proposal)
        _recount(proposal)
    first.refresh_from_db()
    return first


def proposed_grid_split(*, proposal: GridDesignProposal, grid_id: int) -> list[ProposedGrid]:
    """Split one grid of a draft proposal in two, balanced by the proposal's basis (by area
    when the grid has no households), without cutting a building."""
    with transaction.atomic():
        proposal = _locked_draft(proposal)
        grid = proposal.grids.filter(pk=grid_id).first()
        if grid is None:
            raise GridRedrawError("所选网格不属于该方案，请刷新页面后重试。")
        region = _storage_region(grid.geom, what=f"第 {grid.position} 格的边界")
        region_metric = _to_metric([region])[0]
        sites = _building_sites(grid.geom)
        target = proposal_target(proposal)
        if target.basis == "households" and sum(1 for site in sites if site.households) < 2:
            # Households cannot be shared out: halve the area instead (buildings stay whole).
            target = DesignTarget.by_area(max(region_metric.area / 2, 100.0))
        try:
            halves = design_grids(region=region_metric, buildings=sites, target=target, grid_count=2)
        except GridDesignError as error:
            raise GridRedrawError(f"第 {grid.position} 格无法拆分：{error}") from error
        first, second = _to_storage(
            [half.geom for half in halves], boundary_of=region, metric_boundary_of=region_metric
        )
        _node_neighbours(proposal, grid, new_parts=[first, second])
        grid.geom = _geos(first)
        grid.save(update_fields=["geom"])
        created = ProposedGrid.objects.create(proposal=proposal, position=_free_position(proposal), geom=_geos(second))
        _renumber(proposal)
        _recount(proposal)
    return list(ProposedGrid.objects.filter(pk__in=[grid.pk, created.pk]).order_by("position"))


def grid_proposal_adopt(*, proposal: GridDesignProposal, adopted_by: Any = None) -> dict[str, Any]:
    """Put a draft proposal in force today, in one transaction; returns the adoption report.

    Grids of the community in force today that the proposal does not keep unchanged get
    valid_to = today; the proposal's new grids get valid_from = today and serials after the
    highest serial the community ever used (codes are never reused for another area).
    Buildings, households and facilities inside the changed area are re-attributed; grid
    workers of an ended grid are assigned to the new grid that took most of its area. A
    refused adoption changes nothing.
    """
    with transaction.atomic():
        proposal = _locked_draft(proposal, action="采用")
        community = Community.objects.select_for_update().get(pk=proposal.community_id)
        day = timezone.localdate()
        proposed = list(proposal.grids.order_by("position"))
        if not proposed:
            raise GridRedrawError("方案中没有网格，不能采用。")
        _check_still_tiles(proposal, community)
        current = list(grids_valid_on(day).filter(community=community).select_for_update().order_by("pk"))
        kept = _unchanged(proposal, day)  # proposed id -> current grid id
        ended = [grid for grid in current if grid.pk not in kept.values()]
        new = [grid for grid in proposed if grid.pk not in kept]
        if not new and not ended:
            raise GridRedrawError("方案与现行网格完全相同，无需采用。")
        for grid in ended:
            if grid.valid_from >= day:
                raise GridRedrawError(
                    f"网格 {grid.code} 于 {grid.valid_from:%Y-%m-%d} 才启用，今天不能停用（停用日期必须晚于启用日期）；"
                    "请明天再采用新方案。"
                )
        serial = _next_serial(community, count=len(new))
        Grid.objects.filter(pk__in=[grid.pk for grid in ended]).update(valid_to=day)
        overlap = _overlaps(new_ids=[g.pk for g in new], ended_ids=[g.pk for g in ended])
        ended_by_pk = {grid.pk: grid for grid in ended}
        created: dict[int, Grid] = {}
        for offset, proposed_grid in enumerate(new):
            number = serial + offset
            largest = max(
                (pair for pair in overlap if pair[0] == proposed_grid.pk), key=lambda pair: pair[2], default=None
            )
            created[proposed_grid.pk] = Grid.objects.create(
                code=f"{community.code}{number:03d}",
                name=f"{community.name}第{number:03d}网格",
                community=community,
                geom=proposed_grid.geom,
                valid_from=day,
                responsible_unit_id=ended_by_pk[largest[1]].responsible_unit_id if largest else None,
                is_demo=community.is_demo,
            )
        for proposed_grid in proposed:
            proposed_grid.adopted_grid_id = kept.get(proposed_grid.pk) or created[proposed_grid.pk].pk
        ProposedGrid.objects.bulk_update(proposed, ["adopted_grid"])
        changed_area = _union([grid.pk for grid in ended], [grid.pk for grid in created.values()])
        reattributed = register_assign_grids(area=changed_area, day=day)
        moves = _move_assignments(ended=ended, created=created, overlap=overlap, day=day)
        covered = set(GridAssignment.objects.filter(grid__in=created.values()).values_list("grid_id", flat=True))
        report = {
            "day": day.isoformat(),
            "community": community.code,
            "unchanged": sorted(Grid.objects.filter(pk__in=kept.values()).values_list("code", flat=True)),
            "ended": [grid.code for grid in sorted(ended, key=lambda g: g.code)],
            "created": [
                {
                    "code": created[p.pk].code,
                    "position": p.position,
                    "households": p.households,
                    "area_m2": round(p.area_m2, 1),
                }
                for p in proposed
                if p.pk in created
            ],
            "reattributed": reattributed,
            "assignments": moves,
            "uncovered": [grid.code for grid in created.values() if grid.pk not in covered],
        }
        proposal.status = GridDesignProposal.Status.ADOPTED
        proposal.adopted_on = day
        proposal.adopted_by = adopted_by
        proposal.adoption_report = report
        proposal.save(update_fields=["status", "adopted_on", "adopted_by", "adoption_report"])
    return report


def grid_proposals_adopt(*, proposals: Iterable[GridDesignProposal], adopted_by: Any = None) -> list[dict[str, Any]]:
    """Adopt several proposals (a whole street) all together or not at all."""
    with transaction.atomic():
        return [grid_proposal_adopt(proposal=proposal, adopted_by=adopted_by) for proposal in proposals]


def proposal_target(proposal: GridDesignProposal) -> DesignTarget:
    if proposal.basis == GridDesignProposal.Basis.AREA:
        return DesignTarget(area_m2=proposal.target_area_m2)
    return DesignTarget(households_min=proposal.households_min, households_max=proposal.households_max)


# --- reads --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProposalBalance:
    rows: list[BalanceRow]
    summary: BalanceSummary
    target: DesignTarget


def proposal_balance(*, proposal: GridDesignProposal) -> ProposalBalance:
    """The balance table of a proposal: one row per grid in code order, and the summary.

    A row's `current_code` is the code of the grid in force today with exactly this area
    (it survives adoption unchanged), else empty.
    """
    target = proposal_target(proposal)
    kept = _unchanged(proposal, timezone.localdate())
    codes = dict(Grid.objects.filter(pk__in=kept.values()).values_list("pk", "code"))
    rows = [
        BalanceRow.of(
            key=grid.pk,
            label=f"{grid.position:03d}",
            households=grid.households,
            buildings=grid.buildings,
            area_m2=grid.area_m2,
            compactness=grid.compactness or 0.0,
            target=target,
            current_code=codes.get(kept.get(grid.pk, 0), ""),
        )
        for grid in proposal.grids.order_by("position")
    ]
    return ProposalBalance(rows=rows, summary=balance_summary(rows), target=target)


def _count_per_grid(model) -> Coalesce:
    counts = model.objects.filter(grid=OuterRef("pk")).order_by().values("grid").annotate(n=Count("*")).values("n")
    return Coalesce(Subquery(counts), 0)


def current_grid_balance(*, community: Community, target: DesignTarget) -> ProposalBalance:
    """The same table for the grids of `community` in force today (households as attributed)."""
    # Counted in subqueries, not joins: joining households and buildings multiplies the rows
    # (and the compactness computed per row) by households × buildings per grid.
    grids = (
        grids_valid_on()
        .filter(community=community)
        .annotate(
            household_count=_count_per_grid(Household),
            building_count=_count_per_grid(Building),
            polsby_popper=GeographyPolsbyPopper("geom"),
        )
        .order_by("code")
    )
    rows = [
        BalanceRow.of(
            key=grid.pk,
            label=grid.code,
            households=grid.household_count,
            buildings=grid.building_count,
            area_m2=grid.area_m2,
            compactness=grid.polsby_popper or 0.0,
            target=target,
            current_code=grid.code,
        )
        for grid in grids
    ]
    return ProposalBalance(rows=rows, summary=balance_summary(rows), target=target)


_PROPOSAL_GEOJSON = """
    SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(json_build_object(
        'type', 'Feature', 'id', p.id,
        'geometry', ST_AsGeoJSON(p.geom, 7)::json,
        'properties', json_build_object('id', p.id, 'position', p.position, 'households', p.households)
    ) ORDER BY p.position), '[]'::json))::text
    FROM geodata_proposedgrid p WHERE p.proposal_id = %s
"""

_CURRENT_GEOJSON = """
    SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(json_build_object(
        'type', 'Feature', 'id', g.id,
        'geometry', ST_AsGeoJSON(g.geom, 7)::json,
        'properties', json_build_object('code', g.code, 'name', g.name)
    ) ORDER BY g.code), '[]'::json))::text
    FROM geodata_grid g
    WHERE g.community_id = %(community)s
      AND g.valid_from <= %(day)s AND (g.valid_to IS NULL OR g.valid_to > %(day)s)
"""


def proposal_geojson(*, proposal: GridDesignProposal) -> str:
    """The proposal's grids as a GeoJSON FeatureCollection (EPSG:4326), built by PostGIS."""
    with connection.cursor() as cursor:
        cursor.execute(_PROPOSAL_GEOJSON, [proposal.pk])
        return cursor.fetchone()[0]


def current_grids_geojson(*, community: Community) -> str:
    with connection.cursor() as cursor:
        cursor.execute(_CURRENT_GEOJSON, {"community": community.pk, "day": timezone.localdate()})
        return cursor.fetchone()[0]


def communities_for_planner(*, user: Any) -> QuerySet[Community]:
    """Communities a planner may design: their community or street when scoped, else all."""
    communities = Community.objects.select_related("street").order_by("code")
    if getattr(user, "community_id", None):
        return communities.filter(pk=user.community_id)
    if getattr(user, "street_id", None):
        return communities.filter(street_id=user.street_id)
    return communities


# --- helpers ------------------------------------------------------------------------------


def _new_proposal(*, community: Community, target: DesignTarget, created_by: Any, note: str) -> GridDesignProposal:
    return GridDesignProposal.objects.create(
        community=community,
        basis=target.basis,
        households_min=target.households_min,
        households_max=target.households_max,
        target_area_m2=target.area_m2,
        created_by=created_by,
        note=note[:200],
    )


def _locked_draft(proposal: GridDesignProposal, action: str = "调整") -> GridDesignProposal:
    locked = GridDesignProposal.objects.select_for_update().select_related("community").get(pk=proposal.pk)
    if locked.status != GridDesignProposal.Status.DRAFT:
        raise GridRedrawError(f"该方案已于 {locked.adopted_on:%Y-%m-%d} 采用，不能再{action}；请生成新方案。")
    return locked


def _shapely(geometry: GEOSGeometry) -> BaseGeometry:
    return shapely.from_wkb(bytes(geometry.wkb))


def _geos(geometry: BaseGeometry) -> Polygon:
    """A shapely polygon as a GEOS polygon in the storage SRID (WKB: no precision lost)."""
    return cast(Polygon, GEOSGeometry(shapely.to_wkb(geometry, hex=True), srid=settings.STORAGE_SRID))


def _storage_region(geometry: GEOSGeometry | None, *, what: str) -> BaseGeometry:
    if geometry is None or geometry.empty:
        raise GridDesignError(f"{what}为空，无法划分网格。")
    region = _shapely(geometry)
    if not region.is_valid:
        raise GridDesignError(f"{what}不是有效的多边形（{shapely.is_valid_reason(region)}），请先修正边界再划分网格。")
    return region


def _to_metric(geometries: Sequence[BaseGeometry]) -> list[BaseGeometry]:
    series = gpd.GeoSeries(list(geometries), crs=settings.STORAGE_SRID)
    return list(series.to_crs(settings.METRIC_SRID))


def _to_storage(
    polygons: Sequence[BaseGeometry], *, boundary_of: BaseGeometry, metric_boundary_of: BaseGeometry
) -> list[BaseGeometry]:
    """Metric polygons back in the storage SRID, their vertices on the boundary of the divided
    area put exactly on the stored boundary.

    A boundary edge straight in degrees is slightly curved in the Gauss–Krüger plane (about
    a centimetre over a kilometre), so a cut that ends on the metric boundary would end off
    the stored one after reprojection and leave slivers. Which vertices lie on the boundary
    is decided in the metric CRS, where they lie on it up to rounding.
    """
    boundary = boundary_of.boundary
    rings = shapely.get_parts(boundary)
    metric_boundary = metric_boundary_of.boundary
    boundary_vertices = shapely.multipoints(shapely.get_coordinates(boundary))
    stored_polygons = gpd.GeoSeries(list(polygons), crs=settings.METRIC_SRID).to_crs(settings.STORAGE_SRID)
    stored = []
    for metric_polygon, polygon in zip(polygons, stored_polygons, strict=True):
        on_boundary = shapely.dwithin(
            shapely.points(shapely.get_coordinates(metric_polygon)), metric_boundary, _ON_BOUNDARY_M
        )

        def onto_boundary(coords: np.ndarray, on_boundary: np.ndarray = on_boundary) -> np.ndarray:
            if on_boundary.any():
                points = shapely.points(coords[on_boundary])
                # Nearest ring first: linear referencing along a multi-ring boundary is not reliable.
                ring = rings[np.argmin(shapely.distance(points[:, np.newaxis], rings[np.newaxis, :]), axis=1)]
                located = shapely.line_interpolate_point(ring, shapely.line_locate_point(ring, points))
                coords = coords.copy()
                coords[on_boundary] = shapely.get_coordinates(located)
            return coords

        polygon = shapely.transform(polygon, onto_boundary)
        # The boundary's own vertices come back from the round trip a few ulps off: use them exactly.
        polygon = shapely.remove_repeated_points(shapely.snap(polygon, boundary_vertices, _NODE_DEGREES))
        if polygon.geom_type != "Polygon" or not polygon.is_valid:
            raise GridDesignError("内部错误：网格坐标转换后不再是有效多边形，请联系系统管理员。")
        stored.append(shapely.normalize(polygon))
    return stored


def _building_sites(area: GEOSGeometry) -> list[BuildingSite]:
    """Buildings whose location `area` covers, with their household counts, in the metric CRS."""
    rows = list(
        Building.objects.filter(location__coveredby=area)
        .annotate(household_count=Count("households"))
        .order_by("pk")
        .values_list("pk", "address", "location", "footprint", "household_count")
    )
    if not rows:
        return []
    locations = _to_metric([_shapely(row[2]) for row in rows])
    footprints = gpd.GeoSeries(
        [_shapely(row[3]) if row[3] is not None else None for row in rows], crs=settings.STORAGE_SRID
    ).to_crs(settings.METRIC_SRID)
    return [
        BuildingSite(key=row[0], label=row[1], location=location, footprint=footprint, households=row[4])
        for row, location, footprint in zip(rows, locations, footprints, strict=True)
    ]


_RECOUNT = """
    WITH owner AS (
        -- a building on an edge shared by two proposed grids counts once, in the first
        SELECT DISTINCT ON (b.id) b.id AS building_id, p.id AS grid_id
        FROM geodata_proposedgrid p
        JOIN geodata_building b ON ST_Covers(p.geom, b.location)
        WHERE p.proposal_id = %(proposal)s
        ORDER BY b.id, p.position
    ), counts AS (
        SELECT o.grid_id, count(DISTINCT o.building_id) AS buildings, count(h.id) AS households
        FROM owner o LEFT JOIN geodata_household h ON h.building_id = o.building_id
        GROUP BY o.grid_id
    )
    UPDATE geodata_proposedgrid p
    SET buildings = coalesce(c.buildings, 0), households = coalesce(c.households, 0)
    FROM geodata_proposedgrid q LEFT JOIN counts c ON c.grid_id = q.id
    WHERE p.id = q.id AND q.proposal_id = %(proposal)s
"""


def _recount(proposal: GridDesignProposal) -> None:
    """Households and buildings per proposed grid, counted by the database in one statement."""
    with connection.cursor() as cursor:
        cursor.execute(_RECOUNT, {"proposal": proposal.pk})


_CENTROIDS = """
    SELECT p.id, ST_X(c), ST_Y(c), ST_Area(t)
    FROM geodata_proposedgrid p,
         LATERAL ST_Transform(p.geom, %(metric)s) AS t,
         LATERAL ST_Centroid(t) AS c
    WHERE p.proposal_id = %(proposal)s
"""


def _renumber(proposal: GridDesignProposal) -> None:
    """Positions in code order (geodata.grid_design.serial_order), computed in the metric CRS."""
    with connection.cursor() as cursor:
        cursor.execute(_CENTROIDS, {"proposal": proposal.pk, "metric": settings.METRIC_SRID})
        rows = cursor.fetchall()
    order = serial_order(centroids=[(row[1], row[2]) for row in rows], areas=[row[3] for row in rows])
    grids = [ProposedGrid(pk=rows[index][0], position=position) for position, index in enumerate(order, start=1)]
    ProposedGrid.objects.bulk_update(grids, ["position"])  # the unique position check is deferred


def _free_position(proposal: GridDesignProposal) -> int:
    last = proposal.grids.order_by("-position").values_list("position", flat=True).first()
    return (last or 0) + 1


def _node_neighbours(proposal: GridDesignProposal, grid: ProposedGrid, *, new_parts: Sequence[BaseGeometry]) -> None:
    """Give the neighbours of a split grid the vertices where the new cut meets their edges,
    so that shared edges stay identical (an exact coverage) and later merges are exact."""
    vertices = shapely.multipoints(np.concatenate([shapely.get_coordinates(part) for part in new_parts]))
    for neighbour in proposal.grids.filter(geom__intersects=grid.geom).exclude(pk=grid.pk):
        before = _shapely(neighbour.geom)
        after = shapely.snap(before, vertices, _NODE_DEGREES)
        if shapely.get_num_coordinates(after) != shapely.get_num_coordinates(before):
            neighbour.geom = _geos(after)
            neighbour.save(update_fields=["geom"])


# Stored geometries are planar in the storage SRID (every PostGIS predicate reads them so);
# the tiling is exact in that plane. Its error is measured there and converted to m² with
# the community's own m²-per-square-degree: ST_Area on geography would read each edge as a
# geodesic, which bulges about a centimetre from a kilometre-long edge, and report metres
# of "difference" between a grid edge split at a vertex and the same edge unsplit.
_TILING = """
    SELECT ST_Area(ST_SymDifference(u.geom, c.geom)) * k.m2_per_unit,
           (s.total - ST_Area(u.geom)) * k.m2_per_unit
    FROM geodata_community c,
         LATERAL (SELECT ST_Area(c.geom::geography) / ST_Area(c.geom) AS m2_per_unit) k,
         (SELECT ST_Union(geom) AS geom FROM geodata_proposedgrid WHERE proposal_id = %(proposal)s) u,
         (SELECT sum(ST_Area(geom)) AS total FROM geodata_proposedgrid WHERE proposal_id = %(proposal)s) s
    WHERE c.id = %(community)s
"""


def _check_still_tiles(proposal: GridDesignProposal, community: Community) -> None:
    with connection.cursor() as cursor:
        cursor.execute(_TILING, {"proposal": proposal.pk, "community": community.pk})
        difference, overlap = cursor.fetchone()
    if difference > _TILING_TOLERANCE_M2 or overlap > _TILING_TOLERANCE_M2:
        raise GridRedrawError(
            f"方案网格与社区「{community.name}」的边界不一致（相差 {difference:.2f} 平方米，"
            f"重叠 {overlap:.2f} 平方米），可能社区边界已修改；请重新生成方案。"
        )


_UNCHANGED = """
    SELECT p.id, g.id
    FROM geodata_proposedgrid p
    JOIN geodata_griddesignproposal d ON d.id = p.proposal_id
    JOIN geodata_grid g ON g.community_id = d.community_id AND g.geom && p.geom AND ST_Equals(g.geom, p.geom)
    WHERE p.proposal_id = %(proposal)s
      AND g.valid_from <= %(day)s AND (g.valid_to IS NULL OR g.valid_to > %(day)s)
"""


def _unchanged(proposal: GridDesignProposal, day: Any) -> dict[int, int]:
    """Proposed grid id -> id of the grid in force on `day` that covers exactly the same area."""
    with connection.cursor() as cursor:
        cursor.execute(_UNCHANGED, {"proposal": proposal.pk, "day": day})
        return dict(cursor.fetchall())


def _next_serial(community: Community, *, count: int) -> int:
    """The first serial after every serial the community ever used (ended grids included)."""
    codes = Grid.objects.filter(code__startswith=community.code).values_list("code", flat=True)
    first = max((int(code[-3:]) for code in codes), default=0) + 1
    if first + count - 1 > 999:
        raise GridRedrawError(
            f"社区「{community.name}」的网格序号已用到 {first - 1:03d}，剩余编码不足 {count} 个"
            "（编码不能重复使用）；请联系系统管理员。"
        )
    return first


_OVERLAPS = """
    SELECT p.id, g.id, ST_Area(ST_Intersection(p.geom, g.geom)::geography)
    FROM geodata_proposedgrid p JOIN geodata_grid g ON g.geom && p.geom AND ST_Intersects(g.geom, p.geom)
    WHERE p.id = ANY(%(new)s) AND g.id = ANY(%(ended)s)
"""


def _overlaps(*, new_ids: list[int], ended_ids: list[int]) -> list[tuple[int, int, float]]:
    """(proposed grid id, ended grid id, shared area in m²) for every pair that shares area."""
    if not new_ids or not ended_ids:
        return []
    with connection.cursor() as cursor:
        cursor.execute(_OVERLAPS, {"new": new_ids, "ended": ended_ids})
        return [(p, g, area) for p, g, area in cursor.fetchall() if area > _TILING_TOLERANCE_M2]


def _union(ended_ids: list[int], created_ids: list[int]) -> GEOSGeometry | None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT ST_AsEWKB(ST_Union(geom)) FROM geodata_grid WHERE id = ANY(%s)", [ended_ids + created_ids]
        )
        wkb = cursor.fetchone()[0]
    return GEOSGeometry(memoryview(bytes(wkb))) if wkb is not None else None


def _move_assignments(
    *, ended: list[Grid], created: dict[int, Grid], overlap: list[tuple[int, int, float]], day: Any
) -> list[dict[str, Any]]:
    """Assign the workers of each ended grid to the new grid that took most of its area.

    The old assignment rows stay: they record who covered the ended grid while it was in force.
    """
    moves = []
    for grid in ended:
        shares = [(proposed_id, area) for proposed_id, grid_id, area in overlap if grid_id == grid.pk]
        if not shares:
            continue
        successor = created[max(shares, key=lambda share: share[1])[0]]
        for assignment in GridAssignment.objects.filter(grid=grid).select_related("worker").order_by("pk"):
            GridAssignment.objects.get_or_create(
                grid=successor,
                worker=assignment.worker,
                defaults={"is_primary": assignment.is_primary, "since": day},
            )
            moves.append(
                {
                    "worker": str(assignment.worker),
                    "worker_id": assignment.worker_id,
                    "from": grid.code,
                    "to": successor.code,
                    "also": sorted(
                        created[proposed_id].code for proposed_id, _ in shares if created[proposed_id] != successor
                    ),
                }
            )
    return moves


def adoption_report_lines(report: dict[str, Any]) -> list[str]:
    """The adoption report as lines of Chinese text, for the command and the page."""
    lines = [
        f"生效日期 {report['day']}：停用 {len(report['ended'])} 个网格，新建 {len(report['created'])} 个，"
        f"保留 {len(report['unchanged'])} 个。",
        "重新归属：楼栋 {buildings} 栋，住户 {households} 户，部件 {facilities} 个。".format(**report["reattributed"]),
    ]
    if report["ended"]:
        lines.append("停用：" + "、".join(report["ended"]))
    if report["created"]:
        lines.append("新建：" + "、".join(item["code"] for item in report["created"]))
    for move in report["assignments"]:
        also = f"（原网格另有部分划入 {'、'.join(move['also'])}）" if move["also"] else ""
        lines.append(f"网格员 {move['worker']}：{move['from']} → {move['to']}{also}")
    if report["uncovered"]:
        lines.append("以下新网格尚无网格员，请安排：" + "、".join(report["uncovered"]))
    return lines
