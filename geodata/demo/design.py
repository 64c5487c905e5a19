"""The dense street's grids, designed around its buildings by the grid-design tool.

The demo divides each community of the dense street the way a street office would with
geodata.grid_design (`design_grids`, the tool behind `manage.py design_grids` and the
planner page): social-governance grids of 300–500 households (DESIGN.md §3), built from
whole street blocks where the households allow it (the blocks' edges are the roads,
preferred as grid boundaries) and never cutting a building.

At a smaller `--scale` the dense street keeps its buildings and lets fewer rooms, and the
household range shrinks in proportion (6–10 households at 0.02), so the grids keep about
their full-size number and layout.

The designed grids come back to the storage CRS exactly as the planner's proposals do
(geodata.grid_redraw), and where a cut ends on a community boundary its end point is also
inserted into the neighbouring community's grid, so neighbouring grids share identical
edges: the stored grids remain an exact coverage of the district.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import shapely
from shapely.geometry import MultiPoint, Polygon
from shapely.geometry.base import BaseGeometry

from geodata.demo.layout import BlockShape, CommunityShape, GridShape, Layout, Projector, code_order
from geodata.demo.plan import DemoPlan
from geodata.demo.population import Placement
from geodata.demo.progress import SILENT, Progress
from geodata.grid_design import BuildingSite, DesignTarget, design_grids

# The planner's own reprojection of designed grids (vertices on the boundary put exactly on
# the stored boundary); private in grid_redraw, reused here rather than copied.
from geodata.grid_redraw import _to_storage

HOUSEHOLDS_PER_GRID = (300, 500)
# A vertex this close (degrees, about 0.1 mm) to a grid's edge lies on it: a cut's end point
# on a community boundary is inserted into the neighbouring grid's edge (as grid_redraw does
# for the neighbours of a split grid).
_NODE_DEGREES = 1e-9


def design_target(scale: float) -> DesignTarget:
    """The household range of the dense street's grids: 300–500 at full size, in proportion below it."""
    factor = min(scale, 1.0)
    low = max(1, round(HOUSEHOLDS_PER_GRID[0] * factor))
    high = max(low, round(HOUSEHOLDS_PER_GRID[1] * factor))
    return DesignTarget.by_households(low, high)


@dataclasses.dataclass(frozen=True)
class DenseDesign:
    layout: Layout  # with every grid, the dense street's included, in code order
    grid_of: list[str]  # the grid code of each placed building


def dense_grids_design(
    *, plan: DemoPlan, layout: Layout, placement: Placement, scale: float, progress: Progress = SILENT
) -> DenseDesign:
    """Design the grids of the dense street's communities (raises GridDesignError when one cannot be designed)."""
    projector = Projector()
    target = design_target(scale)
    blocks: dict[str, list[BlockShape]] = defaultdict(list)
    for block in layout.blocks:
        blocks[block.community_code].append(block)
    sites: dict[str, list[BuildingSite]] = defaultdict(list)
    for index, building in enumerate(placement.buildings):
        if building.dense:
            sites[building.community_code].append(
                BuildingSite(
                    key=index,
                    location=building.location_metric,
                    households=len(building.households),
                    footprint=building.footprint_metric,
                    label=building.address,
                )
            )
    # A light street's building was placed in its grid; the dense street's get theirs now.
    grid_of = ["" if building.dense else building.container for building in placement.buildings]
    designed: list[GridShape] = []
    communities = [c for c in layout.communities if c.code in blocks]
    for community in progress.iterate(communities, desc="按户数设计网格", unit="社区"):
        grids, members = _design_community(
            community, blocks[community.code], sites[community.code], target, projector, label=plan.label
        )
        designed.extend(grids)
        for grid, keys in zip(grids, members, strict=True):
            for key in keys:
                grid_of[key] = grid.code
    unplaced = [b.address for b, code in zip(placement.buildings, grid_of, strict=True) if not code]
    if unplaced:
        raise AssertionError(f"demo buildings outside every designed grid: {unplaced[:3]}")
    grids = _noded_across_communities([*layout.grids, *designed], layout.communities)
    return DenseDesign(layout=dataclasses.replace(layout, grids=sorted(grids, key=lambda g: g.code)), grid_of=grid_of)


def _design_community(
    community: CommunityShape,
    blocks: Sequence[BlockShape],
    sites: Sequence[BuildingSite],
    target: DesignTarget,
    projector: Projector,
    *,
    label: str,
) -> tuple[list[GridShape], list[tuple[int, ...]]]:
    region = projector.metric(community.geom)
    if not any(site.households for site in sites):
        target = DesignTarget.by_area(region.area)  # nobody lives here at this scale: one grid a part
    result = design_grids(region=region, buildings=sites, target=target, barriers=[_roads(blocks, region)])
    stored = _to_storage([grid.geom for grid in result], boundary_of=community.geom, metric_boundary_of=region)
    short_name = community.name.removesuffix(label)
    grids, members = [], []
    # Numbered as the light streets' grids are, from the stored polygons (layout.code_order).
    for serial, index in enumerate(code_order(stored, projector), start=1):
        grids.append(
            GridShape(
                code=f"{community.code}{serial:03d}",
                name=f"{short_name}第{serial}网格",
                community_code=community.code,
                geom=stored[index],
                geom_metric=result[index].geom,
            )
        )
        members.append(result[index].building_keys)
    return grids, members


def _roads(blocks: Sequence[BlockShape], region: BaseGeometry) -> BaseGeometry:
    """The roads between the blocks (their shared edges), inside the community (metric)."""
    edges = shapely.union_all(shapely.boundary(np.array([b.geom_metric for b in blocks], dtype=object)))
    return shapely.difference(edges, shapely.boundary(region))


def _noded_across_communities(grids: list[GridShape], communities: Sequence[CommunityShape]) -> list[GridShape]:
    """Insert each designed cut's end point on a community boundary into the grids on the
    other side, so that neighbouring grids of different communities keep identical edges."""
    boundary_vertices = {
        c.code: set(map(tuple, shapely.get_coordinates(c.geom.boundary).tolist())) for c in communities
    }
    boundaries = {c.code: c.geom.boundary for c in communities}
    new_points: list[tuple[float, float]] = []
    for grid in grids:
        coordinates = shapely.get_coordinates(grid.geom)
        on_boundary = shapely.dwithin(shapely.points(coordinates), boundaries[grid.community_code], _NODE_DEGREES)
        known = boundary_vertices[grid.community_code]
        new_points.extend(tuple(xy) for xy in coordinates[on_boundary].tolist() if tuple(xy) not in known)
    if not new_points:
        return grids
    points = shapely.points(sorted(set(new_points)))
    tree = shapely.STRtree(points)
    noded = []
    for grid in grids:
        near = tree.query(grid.geom, predicate="dwithin", distance=_NODE_DEGREES)
        if len(near):
            geom = shapely.snap(grid.geom, MultiPoint(list(points[near])), _NODE_DEGREES)
            if not isinstance(geom, Polygon) or not geom.is_valid:
                raise AssertionError(f"demo grid {grid.code} is not one valid polygon after noding")
            grid = dataclasses.replace(grid, geom=geom)
        noded.append(grid)
    return noded
