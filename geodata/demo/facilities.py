"""City facilities (城市部件) of the demo district: lamps, trees, manholes along the streets,
and the rest (bins rooms, toilets, flower beds...) in the open space between buildings.

The streets of a light-street grid run along its boundary; in the dense street they run
along the blocks' edges (its designed grids may also bend between buildings, where no
street is).
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import Point, Polygon
from shapely.geometry.base import BaseGeometry

from geodata.demo.draw import share_out, stochastic_round, weighted
from geodata.demo.layout import BlockShape, GridShape, Layout, Projector
from geodata.demo.plan import DemoPlan, FacilityMix
from geodata.demo.population import Population
from geodata.demo.progress import SILENT, Progress
from geodata.models import Facility

# Street furniture stands 2-5 m inside the grid, between the grid boundary (the street's
# centre line) and the buildings (population.SETBACK_M = 8 m inside): never on a boundary,
# never in a house.
_EDGE_OFFSET_M = (2.0, 5.0)
# Along a dense-street block, at one of these distances inside its edge.
_KERB_OFFSETS_M = (2.5, 3.5, 4.5)
_CLEARANCE_M = 2.0
_AREA_ATTEMPTS = 30

_STATUSES = {
    "intact": Facility.Status.INTACT.value,
    "damaged": Facility.Status.DAMAGED.value,
    "missing": Facility.Status.MISSING.value,
    "occupied": Facility.Status.OCCUPIED.value,
    "decommissioned": Facility.Status.DECOMMISSIONED.value,
}


@dataclass
class FacilityDraft:
    code: str
    type_code: str  # 大类 + 小类
    name: str
    status: str
    location: Point  # storage CRS
    address: str
    grid_code: str
    maintainer: str
    manager: str
    owner: str


def facilities_build(
    *,
    plan: DemoPlan,
    layout: Layout,
    population: Population,
    type_names: dict[str, str],
    seed: int,
    scale: float,
    progress: Progress = SILENT,
) -> list[FacilityDraft]:
    """Facilities per grid; codes are 6-digit county + 大类 + 小类 + a 6-digit serial per
    category, in grid-code order, so the same seed always gives the same codes."""
    projector = Projector()
    dense = [g for g in layout.grids if g.code.startswith(plan.dense_street)]
    dense_counts = dict(
        zip(
            (g.code for g in dense),
            share_out(round(plan["dense"]["facilities"] * scale), [g.geom_metric.area for g in dense]),
            strict=True,
        )
    )
    footprints: dict[str, list[Polygon]] = defaultdict(list)
    for building in population.buildings:
        footprints[building.grid_code].append(building.footprint)
    low, high = plan["light"]["facilities_per_grid"]
    street_names = {s.code: s.name for s in plan.streets}
    mix = {str(index): entry.weight for index, entry in enumerate(plan.facility_mix)}
    statuses = plan["facility_status"]
    kerbs = _Kerbs(layout.blocks)
    drafts: list[FacilityDraft] = []
    for grid in progress.iterate(layout.grids, desc="生成城市部件", unit="网格"):
        rng = random.Random(f"{seed}:facilities:{grid.code}")
        count = dense_counts.get(grid.code)
        if count is None:
            count = stochastic_round(rng.uniform(low, high) * scale, rng)
        buildings = projector.metric(np.array(footprints[grid.code], dtype=object))
        for _ in range(count):
            entry = plan.facility_mix[int(weighted(rng, mix))]
            if grid.code in dense_counts:
                point, road = _dense_position(grid, entry, buildings, kerbs, rng, population.roads)
            else:
                point, road = _position(grid, entry, buildings, rng), population.roads[grid.code]
            drafts.append(
                FacilityDraft(
                    code="",
                    type_code=entry.type_code,
                    name=type_names[entry.type_code],
                    status=_STATUSES[weighted(rng, statuses)],
                    location=projector.storage(point),
                    address=f"{street_names[grid.code[:9]]}{road}{'沿线' if entry.placement == 'edge' else ''}",
                    grid_code=grid.code,
                    maintainer=entry.maintainer,
                    manager=entry.manager,
                    owner=entry.owner,
                )
            )
    serials: dict[str, int] = defaultdict(int)
    for draft in drafts:
        serials[draft.type_code] += 1
        draft.code = f"{plan.district_code}{draft.type_code}{serials[draft.type_code]:06d}"
    return drafts


def _position(grid: GridShape, entry: FacilityMix, buildings: np.ndarray, rng: random.Random) -> Point:
    if entry.placement == "area":
        point = _in_open_space(grid, buildings, rng)
        if point is not None:
            return point
    return _along_edge(grid, rng)


def _in_open_space(grid: GridShape, buildings: np.ndarray, rng: random.Random) -> Point | None:
    site = grid.geom_metric.buffer(-_EDGE_OFFSET_M[1])
    if not site.is_empty:
        x0, y0, x1, y1 = site.bounds
        for _ in range(_AREA_ATTEMPTS):
            point = Point(rng.uniform(x0, x1), rng.uniform(y0, y1))
            if site.contains(point) and not (len(buildings) and shapely.dwithin(buildings, point, _CLEARANCE_M).any()):
                return point
    return None


class _Kerbs:
    """The pavements of the dense street: lines a few metres inside each block's edge (metric),
    cut to each grid. Buildings stand population.SETBACK_M inside the blocks, so these lines
    keep clear of them."""

    def __init__(self, blocks: list[BlockShape]) -> None:
        self.blocks = blocks
        self.tree = shapely.STRtree([b.geom_metric for b in blocks]) if blocks else None
        self._rings: dict[tuple[int, float], BaseGeometry] = {}
        self._lines: dict[tuple[str, float], BaseGeometry] = {}

    def _ring(self, block: int, offset: float) -> BaseGeometry:
        if (block, offset) not in self._rings:
            self._rings[block, offset] = shapely.boundary(self.blocks[block].geom_metric.buffer(-offset))
        return self._rings[block, offset]

    def lines(self, grid: GridShape, offset: float) -> BaseGeometry:
        if (grid.code, offset) not in self._lines:
            near = self.tree.query(grid.geom_metric, predicate="intersects") if self.tree is not None else []
            rings = shapely.union_all([self._ring(int(block), offset) for block in sorted(near)])
            self._lines[grid.code, offset] = shapely.intersection(rings, grid.geom_metric)
        return self._lines[grid.code, offset]

    def block_at(self, point: Point) -> BlockShape:
        """The block a point of the dense street lies in (the blocks tile its communities)."""
        assert self.tree is not None
        return self.blocks[int(min(self.tree.query(point, predicate="intersects")))]


def _dense_position(
    grid: GridShape,
    entry: FacilityMix,
    buildings: np.ndarray,
    kerbs: _Kerbs,
    rng: random.Random,
    roads: dict[str, str],
) -> tuple[Point, str]:
    """A position in a dense-street grid (along a block's pavement, or in the open space
    between its buildings) and the road of the block it lies in."""
    point = _in_open_space(grid, buildings, rng) if entry.placement == "area" else None
    if point is None:
        lines = kerbs.lines(grid, rng.choice(_KERB_OFFSETS_M))
        if lines.is_empty:  # a grid with no pavement (cut out of a block's interior): its open space
            point = _in_open_space(grid, buildings, rng) or grid.geom_metric.point_on_surface()
        else:
            point = shapely.line_interpolate_point(lines, rng.uniform(0, lines.length))
    return point, roads[kerbs.block_at(point).key]


def _along_edge(grid: GridShape, rng: random.Random) -> Point:
    inner = grid.geom_metric.buffer(-rng.uniform(*_EDGE_OFFSET_M))
    if inner.is_empty:  # a grid too thin for a pavement: its middle
        return grid.geom_metric.point_on_surface()
    parts = shapely.get_parts(inner)
    ring = max(parts, key=lambda p: p.area).exterior
    return ring.interpolate(rng.uniform(0, ring.length))
