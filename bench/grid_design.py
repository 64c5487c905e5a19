"""Benchmark: how long designing the grids of a dense street takes (run by hand, not in `make test`).

    scripts/with-env env GRIDMGMT_MODE=development python -m bench.grid_design            # synthetic street
    scripts/with-env env GRIDMGMT_MODE=development python -m bench.grid_design --street 500104002

The synthetic street is deterministic: 12 km² cut into 10 communities (a Voronoi partition),
a jittered lattice of buildings with footprints (5–150 households each, a dense core of
towers), and a road every 500 m. With --street the communities, buildings and households of
that street are read from the database (read only: nothing is written) and designed exactly
as `manage.py design_grids` would, without storing the proposals.
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPoint, Point, box
from shapely.ops import voronoi_diagram


def synthetic_street(seed: int = 20260401):
    from geodata.grid_design import BuildingSite

    rng = np.random.default_rng(seed)
    x0, y0 = 500_000.0, 3_255_000.0
    street = box(x0, y0, x0 + 4_000, y0 + 3_000)
    seeds = MultiPoint(list(zip(rng.uniform(x0, x0 + 4_000, 10), rng.uniform(y0, y0 + 3_000, 10), strict=True)))
    communities = [cell.intersection(street) for cell in voronoi_diagram(seeds, envelope=street).geoms]
    roads = [LineString([(x, y0 - 10), (x, y0 + 3_010)]) for x in np.arange(x0 + 500, x0 + 4_000, 500)]
    roads += [LineString([(x0 - 10, y), (x0 + 4_010, y)]) for y in np.arange(y0 + 500, y0 + 3_000, 500)]
    road_zone = shapely.union_all([road.buffer(12) for road in roads])
    core = Point(x0 + 2_600, y0 + 1_800).buffer(700)
    buildings = []
    for x in np.arange(x0 + 20, x0 + 4_000, 40.0):
        for y in np.arange(y0 + 20, y0 + 3_000, 40.0):
            cx, cy = x + rng.uniform(-6, 6), y + rng.uniform(-6, 6)
            footprint = shapely.affinity.rotate(box(cx - 10, cy - 6, cx + 10, cy + 6), rng.uniform(0, 90))
            if footprint.intersects(road_zone) or rng.random() < 0.25:
                continue
            households = int(rng.integers(60, 150)) if core.contains(Point(cx, cy)) else int(rng.integers(5, 40))
            key = len(buildings)
            buildings.append(BuildingSite(key=key, location=Point(cx, cy), households=households, footprint=footprint))
    return communities, buildings, roads


def database_street(code: str):
    """The street's communities and buildings in the metric CRS, read only."""
    from geodata.grid_redraw import _building_sites, _storage_region, _to_metric
    from geodata.models import Community

    items = []
    for community in Community.objects.filter(street__code=code).order_by("code"):
        region = _to_metric([_storage_region(community.geom, what=community.name)])[0]
        items.append((community.name, region, _building_sites(community.geom)))
    return items


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--street", help="街道代码：用数据库中该街道的数据（只读）")
    parser.add_argument("--households", default="300-500")
    parser.add_argument("--area", type=float)
    args = parser.parse_args()
    if args.street:  # the algorithm itself needs no Django; reading the register does
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gridmgmt.settings")
        import django

        django.setup()
    from geodata.grid_design import DesignTarget, design_grids

    low, high = (int(part) for part in args.households.split("-"))
    target = DesignTarget.by_area(args.area) if args.area else DesignTarget.by_households(low, high)
    started = time.perf_counter()
    if args.street:
        items = database_street(args.street)
        roads: list = []
        if not items:
            print(f"街道 {args.street} 不存在或没有社区（先运行 make demo 加载示例数据）。")
            return 1
    else:
        communities, buildings, roads = synthetic_street()
        items = [
            (f"合成社区{i + 1:02d}", region, [b for b in buildings if region.covers(b.location)])
            for i, region in enumerate(communities)
        ]
    loaded = time.perf_counter() - started
    total_grids, total_households, total_buildings, seconds, on_target = 0, 0, 0, 0.0, 0
    compactness = []
    print(f"目标：{target.describe()}（载入数据 {loaded:.2f} 秒）")
    print(f"{'社区':<14}{'楼栋':>7}{'户数':>8}{'网格':>6}{'用时(秒)':>10}{'户数 最少/中位/最多':>22}")
    for name, region, sites in items:
        begin = time.perf_counter()
        grids = design_grids(region=region, buildings=sites, target=target, barriers=roads)
        took = time.perf_counter() - begin
        counts = [g.households for g in grids]
        households = sum(s.households for s in sites)
        print(
            f"{name:<14}{len(sites):>7}{households:>8}{len(grids):>6}{took:>10.2f}"
            f"{min(counts):>10}/{statistics.median(counts):g}/{max(counts)}"
        )
        total_grids += len(grids)
        total_households += households
        total_buildings += len(sites)
        seconds += took
        on_target += sum(target.is_met(households=g.households, area_m2=g.area_m2) for g in grids)
        compactness += [g.compactness for g in grids]
    print(
        f"合计：{len(items)} 个社区，{total_buildings} 栋楼，{total_households} 户，{total_grids} 个网格"
        f"（达标 {on_target}），紧凑度 最低 {min(compactness):.2f} 中位 {statistics.median(compactness):.2f}，"
        f"设计用时 {seconds:.2f} 秒。"
    )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.getcwd())
    sys.exit(main())
