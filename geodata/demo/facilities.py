"""City facilities (城市部件) of the demo district: lamps, trees, manholes along the grid's
streets, and the rest (bins rooms, toilets, flower beds...) in the open space between buildings.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import Point, Polygon

from geodata.demo.draw import share_out, stochastic_round, weighted
from geodata.demo.layout import GridShape, Layout, Projector
from geodata.demo.plan import DemoPlan, FacilityMix
from geodata.demo.population import Population
from geodata.demo.progress import SILENT, Progress
from geodata.models import Facility

# Street furniture stands 2-5 m inside the grid, between the grid boundary (the street's
# centre line) and the buildings (population.SETBACK_M = 8 m inside): never on a boundary,
# never in a house.
_EDGE_OFFSET_M = (2.0, 5.0)
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
    drafts: list[FacilityDraft] = []
    for grid in progress.iterate(layout.grids, desc="生成城市部件", unit="网格"):
        rng = random.Random(f"{seed}:facilities:{grid.code}")
        count = dense_counts.get(grid.code)
        if count is None:
            count = stochastic_round(rng.uniform(low, high) * scale, rng)
        buildings = projector.metric(np.array(footprints[grid.code], dtype=object))
        road = population.roads[grid.code]
        for _ in range(count):
            entry = plan.facility_mix[int(weighted(rng, mix))]
            point = _position(grid, entry, buildings, rng)
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
        site = grid.geom_metric.buffer(-_EDGE_OFFSET_M[1])
        if not site.is_empty:
            x0, y0, x1, y1 = site.bounds
            for _ in range(_AREA_ATTEMPTS):
                point = Point(rng.uniform(x0, x1), rng.uniform(y0, y1))
                if site.contains(point) and not (
                    len(buildings) and shapely.dwithin(buildings, point, _CLEARANCE_M).any()
                ):
                    return point
    return _along_edge(grid, rng)


def _along_edge(grid: GridShape, rng: random.Random) -> Point:
    inner = grid.geom_metric.buffer(-rng.uniform(*_EDGE_OFFSET_M))
    if inner.is_empty:  # a grid too thin for a pavement: its middle
        return grid.geom_metric.point_on_surface()
    parts = shapely.get_parts(inner)
    ring = max(parts, key=lambda p: p.area).exterior
    return ring.interpolate(rng.uniform(0, ring.length))
