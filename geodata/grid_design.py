"""Grid design (网格划分): divide a community into balanced grids by weighted recursive bisection.

Pure geometry, no database. Inputs and outputs are shapely geometries in the metric CRS
(settings.METRIC_SRID); geodata.grid_redraw loads the register, calls `design_grids` and
stores the result. The method is documented in docs/grid_design.md:

1. The number of grids follows from the target: households per grid (a range such as
   300–500) or an area per grid (about 10 000 m²).
2. A region that needs k grids is cut in two, and each side gets a share of the k grids in
   proportion to its weight (households, or area). Candidate cuts: whole road blocks (the
   road/river lines crossing the region cut it into blocks), straight lines across the
   region's long and short axes at the weighted median or at the nearest position crossing
   no building, and lines at the weighted median bent around the buildings they would
   cross. The candidate with the best balance, shape and (for roads) preference wins.
3. The pieces are noded into an exact coverage (shared vertices match), and any piece a
   cut left in several parts keeps its main part while the others join the neighbour with
   which they share the longest edge, so that every grid is a single polygon.
4. Grids are numbered in code order: rows from north to south, west to east in a row
   (`serial_order`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from scipy.optimize import brentq
from shapely import STRtree
from shapely.geometry import MultiLineString, MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import split

# A grid serial has three digits (DESIGN.md §3).
MAX_GRIDS_PER_COMMUNITY = 999
# Cuts keep this far from every building, so no rounding (and no reprojection) can put a
# building on a grid boundary, where the attribution rule would have to break a tie.
BUILDING_MARGIN_M = 0.5
# A building known only by its location point is taken to be a 10 m square around it.
POINT_BUILDING_HALF_WIDTH_M = 5.0
# An area-based grid counts as balanced within ±25 % of the target area; households-based
# grids are balanced when inside the planner's range.
AREA_TOLERANCE = 0.25
# Vertices closer than this are the same vertex when the pieces are noded into a coverage.
NODING_TOLERANCE_M = 1e-6
SQUARE_COMPACTNESS = math.pi / 4

# The cut score (lower wins) adds: the balance error, in units of one grid's share; the
# shape term, _SHAPE_WEIGHT × (1 − how square the sides' grids can be); a penalty per side
# whose grids would miss the target (or, for two grids, cannot be halved on target); a
# penalty per extra part a side is left in, weighted by what the part holds (the part later
# joins a neighbour); less a preference for road cuts. The weights were tuned on the
# constructed communities of tests/geodata/test_grid_design.py and the synthetic street of
# bench/grid_design.py: every grid on target, median compactness about 0.7.
_ROAD_PREFERENCE = 0.15
_EXTRA_PART_PENALTY = 5.0
_SHAPE_WEIGHT = 0.6
_OFF_TARGET_PENALTY = 2.0
# Area errors add up over the levels of the recursion, so intermediate pieces get a tighter band.
_AREA_TOLERANCE_BEFORE_LEAVES = 0.15
# A cut that leaves one side's grids half again as heavy (or half as light) as they should
# be is not a candidate: when no other cut exists the target cannot be met.
_MAX_CUT_ERROR = 0.5
# A cut that bends around buildings is a little worse than a straight one as balanced.
_BENT_CUT_PENALTY = 0.05
# Straight-cut positions examined with real geometry per axis and share (the cheapest
# balance estimate ranks them first).
_POSITIONS_PER_AXIS = 4


class GridDesignError(ValueError):
    """The input cannot be designed; the message says why, in Chinese, for the planner."""


@dataclass(frozen=True)
class DesignTarget:
    """What a balanced grid is: a household range (社会治理网格) or an area (城市管理单元网格)."""

    households_min: int | None = None
    households_max: int | None = None
    area_m2: float | None = None

    @classmethod
    def by_households(cls, minimum: int = 300, maximum: int = 500) -> DesignTarget:
        return cls(households_min=minimum, households_max=maximum)

    @classmethod
    def by_area(cls, area_m2: float = 10_000.0) -> DesignTarget:
        return cls(area_m2=area_m2)

    @property
    def basis(self) -> str:
        return "area" if self.area_m2 is not None else "households"

    @property
    def ideal(self) -> float:
        """The value a perfect grid has: the middle of the household range, or the area."""
        if self.area_m2 is not None:
            return float(self.area_m2)
        assert self.households_min is not None and self.households_max is not None
        return (self.households_min + self.households_max) / 2

    def validate(self) -> None:
        if self.area_m2 is not None:
            if self.households_min is not None or self.households_max is not None:
                raise GridDesignError("请只选择一种划分依据：按户数或按面积。")
            if not math.isfinite(self.area_m2) or self.area_m2 < 100:
                raise GridDesignError("目标面积必须至少为 100 平方米。")
            return
        if self.households_min is None or self.households_max is None:
            raise GridDesignError("请填写每个网格的户数下限和上限。")
        if self.households_min < 1:
            raise GridDesignError("每个网格的户数下限必须至少为 1 户。")
        if self.households_min > self.households_max:
            raise GridDesignError(f"户数下限（{self.households_min} 户）不能大于上限（{self.households_max} 户）。")

    def value(self, *, households: int, area_m2: float) -> float:
        return float(area_m2) if self.basis == "area" else float(households)

    def deviation(self, *, households: int, area_m2: float) -> float:
        """Relative distance from the ideal: +0.2 means 20 % above it."""
        return (self.value(households=households, area_m2=area_m2) - self.ideal) / self.ideal

    def is_met(self, *, households: int, area_m2: float) -> bool:
        if self.basis == "area":
            return abs(self.deviation(households=households, area_m2=area_m2)) <= AREA_TOLERANCE
        assert self.households_min is not None and self.households_max is not None
        return self.households_min <= households <= self.households_max

    def describe(self) -> str:
        if self.basis == "area":
            return f"每格约 {self.area_m2:,.0f} 平方米（±{AREA_TOLERANCE:.0%}）"
        return f"每格 {self.households_min}–{self.households_max} 户"


@dataclass(frozen=True)
class BuildingSite:
    """A building as the design sees it: a location point, a footprint when known, its households."""

    key: int
    location: Point
    households: int = 0
    footprint: BaseGeometry | None = None
    label: str = ""


@dataclass(frozen=True)
class DesignedGrid:
    geom: Polygon
    households: int
    building_keys: tuple[int, ...]

    @property
    def area_m2(self) -> float:
        return float(self.geom.area)

    @property
    def compactness(self) -> float:
        return polsby_popper(area=self.geom.area, perimeter=self.geom.length)


@dataclass(frozen=True)
class BalanceRow:
    """One line of the balance table (均衡性报告)."""

    key: int
    label: str
    households: int
    buildings: int
    area_m2: float
    compactness: float
    deviation: float
    on_target: bool
    current_code: str = ""

    @classmethod
    def of(
        cls,
        *,
        key: int,
        label: str,
        households: int,
        buildings: int,
        area_m2: float,
        compactness: float,
        target: DesignTarget,
        current_code: str = "",
    ) -> BalanceRow:
        return cls(
            key=key,
            label=label,
            households=households,
            buildings=buildings,
            area_m2=area_m2,
            compactness=compactness,
            deviation=target.deviation(households=households, area_m2=area_m2),
            on_target=target.is_met(households=households, area_m2=area_m2),
            current_code=current_code,
        )


@dataclass(frozen=True)
class BalanceSummary:
    count: int
    on_target: int
    households_min: int
    households_median: float
    households_max: int
    area_min: float
    area_median: float
    area_max: float
    compactness_min: float
    compactness_median: float
    deviation_max: float  # the largest |deviation| from the ideal


def balance_summary(rows: Sequence[BalanceRow]) -> BalanceSummary:
    if not rows:
        return BalanceSummary(0, 0, 0, 0.0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    households = [row.households for row in rows]
    areas = [row.area_m2 for row in rows]
    compactness = [row.compactness for row in rows]
    return BalanceSummary(
        count=len(rows),
        on_target=sum(row.on_target for row in rows),
        households_min=min(households),
        households_median=statistics.median(households),
        households_max=max(households),
        area_min=min(areas),
        area_median=statistics.median(areas),
        area_max=max(areas),
        compactness_min=min(compactness),
        compactness_median=statistics.median(compactness),
        deviation_max=max(abs(row.deviation) for row in rows),
    )


def balance_report_lines(*, rows: Sequence[BalanceRow], target: DesignTarget) -> list[str]:
    """The balance table as aligned text (the design_grids command prints it)."""
    summary = balance_summary(rows)
    lines = [
        f"目标：{target.describe()}；共 {summary.count} 个网格，{summary.on_target} 个达标。",
        f"户数 最少/中位/最多：{summary.households_min} / {summary.households_median:g} / {summary.households_max}",
        f"面积(m²) 最小/中位/最大：{summary.area_min:,.0f} / {summary.area_median:,.0f} / {summary.area_max:,.0f}",
        f"紧凑度(Polsby–Popper) 最低/中位：{summary.compactness_min:.2f} / {summary.compactness_median:.2f}",
        f"{'网格':<16}{'户数':>6}{'楼栋':>6}{'面积(m²)':>12}{'偏差':>8}{'紧凑度':>8}  达标",
    ]
    for row in rows:
        lines.append(
            f"{row.label:<16}{row.households:>6}{row.buildings:>6}{row.area_m2:>12,.0f}"
            f"{row.deviation:>+8.0%}{row.compactness:>8.2f}  {'是' if row.on_target else '否'}"
        )
    return lines


def polsby_popper(*, area: float, perimeter: float) -> float:
    """Compactness 4πA/P²: 1 for a circle, π/4 ≈ 0.785 for a square, near 0 for a thin strip."""
    return 4 * math.pi * area / perimeter**2 if perimeter > 0 else 0.0


def serial_order(*, centroids: Sequence[tuple[float, float]], areas: Sequence[float]) -> list[int]:
    """Indices of grids in code order: west→east, north→south (DESIGN.md §3).

    With h = √(median grid area) (the side of a typical grid), a row starts at the
    northernmost centroid not yet numbered and takes every grid whose centroid lies less
    than h/2 south of it; rows run north to south, and inside a row grids run west to east
    by centroid easting. Coordinates are metric (easting, northing).
    """
    if not centroids:
        return []
    band = math.sqrt(statistics.median(areas)) or 1.0
    remaining = sorted(range(len(centroids)), key=lambda i: (-centroids[i][1], centroids[i][0], i))
    order: list[int] = []
    while remaining:
        top = centroids[remaining[0]][1]
        row = [i for i in remaining if top - centroids[i][1] < band / 2]
        order.extend(sorted(row, key=lambda i: (centroids[i][0], i)))
        remaining = [i for i in remaining if top - centroids[i][1] >= band / 2]
    return order


def design_grids(
    *,
    region: BaseGeometry,
    buildings: Sequence[BuildingSite],
    target: DesignTarget,
    barriers: Sequence[BaseGeometry] = (),
    grid_count: int | None = None,
) -> list[DesignedGrid]:
    """Divide `region` (a community, metric CRS) into grids that tile it exactly, in code order.

    `buildings` outside the region are ignored; `barriers` are road or river lines preferred
    as boundaries; `grid_count` forces the number of grids (used to split one grid in two).
    Raises GridDesignError with a Chinese message for input that cannot be designed.
    """
    target.validate()
    region = _checked_region(region)
    designer = _Designer(region=region, buildings=buildings, target=target, barriers=barriers)
    return designer.run(grid_count=grid_count)


def _checked_region(region: BaseGeometry) -> Polygon | MultiPolygon:
    if region is None or region.is_empty:
        raise GridDesignError("社区边界为空，请先导入或绘制社区边界。")
    if region.geom_type not in {"Polygon", "MultiPolygon"}:
        raise GridDesignError(f"社区边界必须是面（多边形），而不是 {region.geom_type}。")
    if not region.is_valid:
        reason = shapely.is_valid_reason(region)
        raise GridDesignError(f"社区边界不是有效的多边形（{_validity_reason_zh(reason)}），请先修正边界再划分网格。")
    if region.area < 1.0:
        raise GridDesignError("社区边界面积不足 1 平方米，无法划分网格。")
    return region  # type: ignore[return-value]


def _validity_reason_zh(reason: str) -> str:
    for english, chinese in (
        ("Self-intersection", "边界自相交"),
        ("Ring Self-intersection", "边界环自相交"),
        ("Too few points", "顶点太少"),
        ("Hole lies outside shell", "内洞在外边界之外"),
        ("Nested holes", "内洞嵌套"),
        ("Interior is disconnected", "内部不连通"),
        ("Nested shells", "外边界嵌套"),
        ("Duplicate Rings", "重复的边界环"),
        ("Invalid Coordinate", "坐标无效"),
    ):
        if reason.startswith(english):
            return f"{chinese}，位置 {reason[len(english) :].strip(' []')}".rstrip("，位置 ")
    return reason


class _Designer:
    """One design run; holds the buildings as numpy arrays so that each cut is vectorised."""

    def __init__(
        self,
        *,
        region: Polygon | MultiPolygon,
        buildings: Sequence[BuildingSite],
        target: DesignTarget,
        barriers: Sequence[BaseGeometry],
    ):
        self.region = region
        self.target = target
        inside = [b for b in buildings if region.covers(b.location)]
        self.sites = inside
        self.keys = np.array([b.key for b in inside], dtype=np.int64)
        self.households = np.array([max(b.households, 0) for b in inside], dtype=np.int64)
        self.xy = np.array([(b.location.x, b.location.y) for b in inside], dtype=float).reshape(-1, 2)
        # Each building's outline inside the community: a cut must not cross it.
        outlines = [shapely.union(shapely.intersection(self._outline(b), region), b.location) for b in inside]
        self.outlines = np.array(outlines, dtype=object)
        coords, owners = [], []
        for index, outline in enumerate(outlines):
            points = shapely.get_coordinates(outline)
            coords.append(points)
            owners.append(np.full(len(points), index))
        self.vertex_xy = np.concatenate(coords) if coords else np.empty((0, 2))
        owner = np.concatenate(owners) if owners else np.empty(0, dtype=np.int64)
        # Vertices are stored grouped by building, so per-building extents along any axis
        # come from one reduceat over the projected vertices.
        self.vertex_start = np.searchsorted(owner, np.arange(len(inside)))
        lines = shapely.get_parts(np.array(list(barriers), dtype=object)) if barriers else []
        self.barriers = [g for g in lines if g.geom_type == "LineString" and not g.is_empty]
        self.barrier_tree = STRtree(self.barriers) if self.barriers else None

    @staticmethod
    def _outline(site: BuildingSite) -> BaseGeometry:
        if site.footprint is None or site.footprint.is_empty:
            # No footprint: the building is assumed to stand within this square around its
            # location, so that no boundary runs through it.
            return site.location.buffer(POINT_BUILDING_HALF_WIDTH_M, cap_style="square")
        return shapely.union(site.footprint, site.location)

    # --- the number of grids ------------------------------------------------------------

    def run(self, *, grid_count: int | None) -> list[DesignedGrid]:
        parts = list(shapely.get_parts(self.region))
        all_sites = np.arange(len(self.sites))
        part_sites = [all_sites[shapely.covers(part, shapely.points(self.xy))] for part in parts] if parts else []
        if self.target.basis == "households" and grid_count is None:
            self._check_households()
        counts = [self._grid_count(part, sites) for part, sites in zip(parts, part_sites, strict=True)]
        if grid_count is not None:
            if len(parts) != 1:
                raise GridDesignError("只能拆分由一个多边形构成的网格。")
            counts = [grid_count]
        total = sum(counts)
        if total > MAX_GRIDS_PER_COMMUNITY:
            raise GridDesignError(
                f"按{self.target.describe()}需要 {total} 个网格，超过网格编码容量（每个社区最多"
                f" {MAX_GRIDS_PER_COMMUNITY} 个），请调大目标。"
            )
        leaves: list[tuple[BaseGeometry, np.ndarray]] = []
        for part, sites, count in zip(parts, part_sites, counts, strict=True):
            leaves.extend(self._bisect(part, sites, count))
        return self._finish(leaves)

    def _check_households(self) -> None:
        total = int(self.households.sum())
        if total == 0:
            raise GridDesignError("社区内没有登记住户，无法按户数划分网格；请先导入楼栋和住户，或改为按面积划分。")
        maximum = self.target.households_max
        assert maximum is not None
        heaviest = int(np.argmax(self.households))
        if self.households[heaviest] > maximum:
            site = self.sites[heaviest]
            raise GridDesignError(
                f"楼栋「{site.label or site.key}」有 {self.households[heaviest]} 户，超过每个网格的上限 {maximum} 户；"
                f"楼栋不能拆分到两个网格，请把上限提高到至少 {self.households[heaviest]} 户。"
            )

    def _grid_count(self, part: BaseGeometry, sites: np.ndarray) -> int:
        if self.target.basis == "area":
            assert self.target.area_m2 is not None
            return max(1, round(part.area / self.target.area_m2))
        weight = int(self.households[sites].sum())
        if weight == 0:
            return 1  # an uninhabited part (a park, an island of the community) is one grid
        assert self.target.households_min is not None and self.target.households_max is not None
        fewest = math.ceil(weight / self.target.households_max)
        most = weight // self.target.households_min
        count = round(weight / self.target.ideal)
        if fewest <= most:
            count = min(max(count, fewest), most)
        inhabited = int(np.count_nonzero(self.households[sites]))
        return max(1, min(count, inhabited))

    # --- recursive bisection ------------------------------------------------------------

    def _weight(self, geom: BaseGeometry, sites: np.ndarray) -> float:
        return float(geom.area) if self.target.basis == "area" else float(self.households[sites].sum())

    def _bisect(self, region: BaseGeometry, sites: np.ndarray, count: int) -> list[tuple[BaseGeometry, np.ndarray]]:
        if count <= 1:
            return [(region, sites)]
        cut = self._best_cut(region, sites, count)
        if cut is None:
            raise GridDesignError(
                f"在不切分楼栋的前提下无法把一块区域（约 {region.area:,.0f} 平方米，{len(sites)} 栋楼）再分成"
                f" {count} 个网格：楼栋排列太密或数量太少；请调大目标（{self.target.describe()}）。"
            )
        return self._bisect(cut.left, cut.left_sites, cut.left_count) + self._bisect(
            cut.right, cut.right_sites, cut.right_count
        )

    def _best_cut(self, region: BaseGeometry, sites: np.ndarray, count: int) -> _Cut | None:
        mean = self._weight(region, sites) / count
        if mean <= 0:
            mean = region.area / count  # no households in this piece: balance its area instead
        directions = _axes(region)
        candidates: list[_Cut] = []
        candidates.extend(self._road_cuts(region, sites, count, mean, directions))
        for direction in directions:
            candidates.extend(self._straight_cuts(region, sites, count, mean, direction))
        return min(candidates, key=lambda c: c.score, default=None)

    def _share_options(self, count: int) -> list[int]:
        return sorted({count // 2, count - count // 2})

    def _cut_from_pieces(
        self,
        left: BaseGeometry,
        right: BaseGeometry,
        sites: np.ndarray,
        left_sites_mask: np.ndarray,
        count: int,
        mean: float,
        left_counts: Sequence[int],
        preference: float,
    ) -> _Cut | None:
        if left.is_empty or right.is_empty:
            return None
        left_sites, right_sites = sites[left_sites_mask], sites[~left_sites_mask]
        left_weight, right_weight = self._weight(left, left_sites), self._weight(right, right_sites)
        extra_parts = self._loaded_extra_parts(left, left_sites) + self._loaded_extra_parts(right, right_sites)
        best: _Cut | None = None
        for left_count in left_counts:
            right_count = count - left_count
            if left_count < 1 or right_count < 1:
                continue
            if self.target.basis == "households" and self.households[sites].sum() > 0:
                # Every grid of a side needs households of its own.
                if np.count_nonzero(self.households[left_sites]) < left_count:
                    continue
                if np.count_nonzero(self.households[right_sites]) < right_count:
                    continue
            left_mean, right_mean = left_weight / left_count, right_weight / right_count
            error = max(abs(left_mean - mean), abs(right_mean - mean)) / mean
            if error > _MAX_CUT_ERROR:
                continue
            off_target = (not self._mean_on_target(left_mean)) + (not self._mean_on_target(right_mean))
            # Look one cut ahead where it is cheap: a side of two grids must be divisible in two.
            off_target += (left_count == 2 and not self._halvable(left_sites, left)) + (
                right_count == 2 and not self._halvable(right_sites, right)
            )
            shape = min(_division_quality(left, left_count), _division_quality(right, right_count))
            score = (
                error
                + _OFF_TARGET_PENALTY * off_target
                + _EXTRA_PART_PENALTY * extra_parts
                + _SHAPE_WEIGHT * max(0.0, 1 - shape)
                - preference
            )
            # Rounded, so that coordinates a few ulps apart cannot change which cut wins a tie.
            cut = _Cut(round(score, 9), left, right, left_sites, right_sites, left_count, right_count)
            if best is None or cut.score < best.score:
                best = cut
        return best

    def _loaded_extra_parts(self, side: BaseGeometry, sites: np.ndarray) -> float:
        """Parts beyond the first, weighted by what they hold: a part left over from a cut later
        joins a neighbouring grid with its households (or area), unbalancing it."""
        parts = shapely.get_parts(side)
        if len(parts) == 1:
            return 0.0
        main = max(parts, key=lambda p: p.area)
        loaded = 0.0
        for part in parts:
            if part is main:
                continue
            inside = shapely.contains_xy(part, self.xy[sites, 0], self.xy[sites, 1]) if len(sites) else []
            holds = self.households[sites][inside].sum() if len(sites) else 0
            loaded += 1.0 if holds or (self.target.basis == "area" and part.area > 0.05 * side.area) else 0.1
        return loaded

    def _halvable(self, sites: np.ndarray, side: BaseGeometry) -> bool:
        """Whether a straight line crossing no building splits these buildings into two grids
        that are both on target (households basis; the area basis is always divisible)."""
        if self.target.basis == "area" or len(sites) < 2:
            return self.target.basis == "area"
        assert self.target.households_min is not None and self.target.households_max is not None
        weights = self.households[sites]
        total = weights.sum()
        for direction in _axes(side):
            starts, ends = self._extents(sites, direction)
            order = np.argsort(starts, kind="stable")
            reach = np.maximum.accumulate(ends[order])
            # A gap before building i (in order of extent) leaves buildings order[:i] below it.
            gap_before = np.concatenate([[False], starts[order][1:] > reach[:-1]])
            below = np.concatenate([[0], np.cumsum(weights[order])])[:-1][gap_before]
            fits = (below >= self.target.households_min) & (below <= self.target.households_max)
            fits &= (total - below >= self.target.households_min) & (total - below <= self.target.households_max)
            if fits.any():
                return True
        return False

    def _mean_on_target(self, mean: float) -> bool:
        """Whether grids of this mean load can still end up on target once divided further."""
        if self.target.basis == "area":
            return abs(mean / self.target.ideal - 1) <= _AREA_TOLERANCE_BEFORE_LEAVES
        assert self.target.households_min is not None and self.target.households_max is not None
        return self.target.households_min <= mean <= self.target.households_max

    # Road cuts: the roads crossing the region cut it into blocks (街区); a cut gives whole
    # blocks to each side, so the boundary between the sides runs along roads only.

    def _road_cuts(
        self, region: BaseGeometry, sites: np.ndarray, count: int, mean: float, directions: list[np.ndarray]
    ) -> list[_Cut]:
        if self.barrier_tree is None:
            return []
        roads = [self.barriers[i] for i in self.barrier_tree.query(region, predicate="intersects")]
        if len(sites):
            # A road through a building (or within the margin of one) would cut it in two.
            roads = [r for r in roads if not shapely.dwithin(self.outlines[sites], r, BUILDING_MARGIN_M).any()]
        if not roads:
            return []
        blocks = list(shapely.get_parts(split(region, MultiLineString(roads))))
        if len(blocks) < 2:
            return []
        block_of_site = np.full(len(sites), -1)
        for index, block in enumerate(blocks):
            block_of_site[shapely.contains_xy(block, self.xy[sites, 0], self.xy[sites, 1])] = index
        if self.target.basis == "area" or self.households[sites].sum() == 0:
            weights = np.array([b.area for b in blocks])
        else:
            weights = np.bincount(
                block_of_site[block_of_site >= 0], self.households[sites][block_of_site >= 0], len(blocks)
            )
        centres = shapely.get_coordinates([b.representative_point() for b in blocks])
        total = weights.sum()
        cuts = []
        for direction in directions:
            order = np.argsort(centres @ direction, kind="stable")
            before = np.cumsum(weights[order])[:-1]
            # Rank the groupings by how close the better share of grids comes to their weight.
            closeness = [min(abs(w / total - k / count) for k in range(1, count)) for w in before]
            for split_at in np.argsort(closeness, kind="stable")[:_POSITIONS_PER_AXIS]:
                left_blocks = set(order[: split_at + 1].tolist())
                left = shapely.union_all([blocks[i] for i in left_blocks])
                right = shapely.union_all([blocks[i] for i in range(len(blocks)) if i not in left_blocks])
                mask = np.isin(block_of_site, list(left_blocks))
                cut = self._cut_from_pieces(left, right, sites, mask, count, mean, range(1, count), _ROAD_PREFERENCE)
                if cut is not None:
                    cuts.append(cut)
        return cuts

    # Straight cuts: a line across the region, perpendicular to `direction`, at a position
    # where it crosses no building, or else bent around the buildings it would cross.

    def _extents(self, sites: np.ndarray, direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each building's extent along `direction`, widened by the margin."""
        projected = self.vertex_xy @ direction
        starts = np.minimum.reduceat(projected, self.vertex_start)[sites] - BUILDING_MARGIN_M
        ends = np.maximum.reduceat(projected, self.vertex_start)[sites] + BUILDING_MARGIN_M
        return starts, ends

    def _straight_cuts(
        self, region: BaseGeometry, sites: np.ndarray, count: int, mean: float, direction: np.ndarray
    ) -> list[_Cut]:
        along = shapely.get_coordinates(region) @ direction
        low, high = float(along.min()), float(along.max())
        starts, ends = self._extents(sites, direction) if len(sites) else (np.empty(0), np.empty(0))
        gaps = _free_gaps(starts, ends, low, high)
        positions: set[float] = set()
        for left_count in self._share_options(count):
            share = left_count / count
            positions.update(self._positions_for_share(region, sites, direction, share, gaps, low, high))
        cuts = []
        for position in sorted(positions):
            sides = self._sides_at(region, sites, direction, position, starts, ends, low)
            if sides is None:
                continue
            left, right, mask, crossed = sides
            penalty = _BENT_CUT_PENALTY if crossed else 0.0
            cut = self._cut_from_pieces(left, right, sites, mask, count, mean, self._share_options(count), -penalty)
            if cut is not None:
                cuts.append(cut)
        return cuts

    def _sides_at(
        self,
        region: BaseGeometry,
        sites: np.ndarray,
        direction: np.ndarray,
        position: float,
        starts: np.ndarray,
        ends: np.ndarray,
        low: float,
    ) -> tuple[BaseGeometry, BaseGeometry, np.ndarray, int] | None:
        """The two sides of the cut at `position`: (low side, high side, which buildings are on
        the low side, how many buildings the line had to bend around)."""
        left_mask = (self.xy[sites] @ direction) < position
        crossing = (starts < position) & (ends > position)
        low_side = _half_plane(region, direction, low, position)
        if crossing.any():
            # Each building the line would cross goes wholly to the side of its location.
            around = shapely.buffer(self.outlines[sites[crossing]], BUILDING_MARGIN_M, join_style="mitre")
            grow = shapely.union_all(around[left_mask[crossing]])
            shrink = shapely.union_all(around[~left_mask[crossing]])
            if shapely.intersects(grow, shrink):
                return None  # two buildings too close together for a boundary between them
            low_side = shapely.difference(shapely.union(low_side, grow), shrink)
        left = _polygonal(shapely.intersection(region, low_side))
        right = _polygonal(shapely.difference(region, low_side))
        if left.is_empty or right.is_empty:
            return None
        if crossing.any():
            # The detour must not cut a neighbour of the buildings it goes around.
            reach = float((ends - starts)[crossing].max())
            near = (starts < position + reach) & (ends > position - reach)
            outlines = self.outlines[sites[near]]
            on_left = left_mask[near]
            if not (
                shapely.covered_by(outlines[on_left], left).all()
                and shapely.covered_by(outlines[~on_left], right).all()
            ):
                return None
        return left, right, left_mask, int(crossing.sum())

    def _positions_for_share(
        self,
        region: BaseGeometry,
        sites: np.ndarray,
        direction: np.ndarray,
        share: float,
        gaps: list[tuple[float, float]],
        low: float,
        high: float,
    ) -> list[float]:
        """Positions whose low side holds close to `share` of the weight: the best free ones
        (crossing no building) and the exact weighted median (which may have to bend)."""
        if self.target.basis == "households" and self.households[sites].sum() > 0:
            along = self.xy[sites] @ direction
            order = np.argsort(along, kind="stable")
            along, weights = along[order], self.households[sites][order]
            cumulative = np.cumsum(weights)
            total = cumulative[-1]
            positions: list[float] = []
            inner = [(a, b) for a, b in gaps if a > low and b < high]
            if inner:
                mids = np.array([(a + b) / 2 for a, b in inner])
                left_weight = np.concatenate([[0], cumulative])[np.searchsorted(along, mids)]
                best = np.argsort(np.abs(left_weight / total - share), kind="stable")[:_POSITIONS_PER_AXIS]
                positions.extend(float(mids[i]) for i in best)
            # Between the two buildings where the cumulative weight passes the share.
            median = int(np.searchsorted(cumulative, share * total))
            for k in (median, median + 1):
                if 1 <= k < len(along) and along[k - 1] < along[k]:
                    positions.append(float(along[k - 1] + along[k]) / 2)
            return positions
        # Area: find where the area share is met, and the free positions nearest to it.
        total_area = region.area

        def excess(position: float) -> float:
            return _half_plane(region, direction, low, position).intersection(region).area / total_area - share

        ideal = brentq(excess, low, high, xtol=0.01)
        candidates = [ideal]
        for a, b in gaps:
            candidates.extend(p for p in (a + 1e-3, b - 1e-3) if low < p < high and p != ideal)
        candidates.sort(key=lambda p: abs(p - ideal))
        return candidates[:_POSITIONS_PER_AXIS]

    # --- exact coverage, single polygons, code order ------------------------------------

    def _finish(self, leaves: list[tuple[BaseGeometry, np.ndarray]]) -> list[DesignedGrid]:
        polygons: list[Polygon] = []
        main: dict[int, int] = {}
        for leaf, (geom, sites) in enumerate(leaves):
            parts = list(shapely.get_parts(_polygonal(geom)))
            weights = [
                (int(self.households[sites][shapely.contains_xy(p, *self.xy[sites].T)].sum()), p.area)
                if len(sites)
                else (0, p.area)
                for p in parts
            ]
            main[leaf] = len(polygons) + max(range(len(parts)), key=lambda i: weights[i])
            polygons.extend(parts)
        polygons = _noded(polygons)
        grids: dict[int, Polygon] = {leaf: polygons[index] for leaf, index in main.items()}
        orphans = [polygons[i] for i in range(len(polygons)) if i not in set(main.values())]
        # A part a cut cut off joins the grid it shares the longest edge with.
        while orphans:
            remaining = []
            for orphan in orphans:
                shared = {leaf: g.boundary.intersection(orphan.boundary).length for leaf, g in grids.items()}
                leaf, length = max(shared.items(), key=lambda item: item[1])
                if length <= NODING_TOLERANCE_M:
                    remaining.append(orphan)
                    continue
                grids[leaf] = shapely.coverage_union_all([grids[leaf], orphan])
            if len(remaining) == len(orphans):
                raise GridDesignError("内部错误：有一块区域无法并入相邻网格，请联系系统管理员。")
            orphans = remaining
        return self._ordered(list(grids.values()))

    def _ordered(self, polygons: list[BaseGeometry]) -> list[DesignedGrid]:
        for polygon in polygons:
            if polygon.geom_type != "Polygon" or not polygon.is_valid:
                raise GridDesignError("内部错误：生成的网格不是单个有效多边形，请联系系统管理员。")
        if abs(sum(p.area for p in polygons) - self.region.area) > 0.01:
            raise GridDesignError("内部错误：生成的网格未能恰好铺满社区，请联系系统管理员。")
        tree = STRtree(polygons)
        points = shapely.points(self.xy) if len(self.xy) else np.empty(0, dtype=object)
        point_index, grid_index = tree.query(points, predicate="within") if len(points) else (np.empty(0), np.empty(0))
        members: list[list[int]] = [[] for _ in polygons]
        for site, grid in zip(point_index, grid_index, strict=True):
            members[int(grid)].append(int(site))
        for grid, sites in enumerate(members):
            for site in sites:
                outline = self.outlines[site]
                if shapely.area(shapely.difference(outline, polygons[grid])) > 1e-4:
                    raise GridDesignError(f"内部错误：楼栋「{self.sites[site].label}」被网格边界切开。")
        order = serial_order(
            centroids=[(p.centroid.x, p.centroid.y) for p in polygons], areas=[p.area for p in polygons]
        )
        return [
            DesignedGrid(
                geom=shapely.normalize(polygons[i]),
                households=int(self.households[members[i]].sum()) if members[i] else 0,
                building_keys=tuple(sorted(int(self.keys[s]) for s in members[i])),
            )
            for i in order
        ]


@dataclass
class _Cut:
    score: float
    left: BaseGeometry
    right: BaseGeometry
    left_sites: np.ndarray
    right_sites: np.ndarray
    left_count: int
    right_count: int


def _division_quality(geom: BaseGeometry, count: int) -> float:
    """How square the `count` grids of this piece can be, 1 at best: the squarest cells of a
    rows × columns division of its enclosing rectangle, times how well it fills that rectangle.

    A long piece that will be cut again is fine; a long piece that is to be one grid is not.
    """
    largest = max(shapely.get_parts(geom), key=lambda p: p.area)
    envelope = shapely.oriented_envelope(largest)
    corners = shapely.get_coordinates(envelope)
    if envelope.geom_type != "Polygon" or envelope.area <= 0:
        return 0.0
    if count == 1:  # a finished grid: its own compactness
        return min(1.0, polsby_popper(area=largest.area, perimeter=largest.length) / SQUARE_COMPACTNESS)
    sides = sorted((math.dist(corners[0], corners[1]), math.dist(corners[1], corners[2])), reverse=True)
    long_side, short_side = sides
    squarest = min(
        max(ratio, 1 / ratio)
        for rows in range(1, count + 1)
        if (ratio := (long_side / math.ceil(count / rows)) / (short_side / rows)) > 0
    )
    return (1 / squarest) * (largest.area / envelope.area)


def _axes(region: BaseGeometry) -> list[np.ndarray]:
    """Unit vectors along the region's long and short sides (east–west/north–south unless
    the region is clearly rotated), so cuts across the long side come first."""
    x0, y0, x1, y1 = region.bounds
    bbox_area = (x1 - x0) * (y1 - y0)
    rectangle = shapely.oriented_envelope(region)
    if rectangle.geom_type == "Polygon" and rectangle.area < 0.9 * bbox_area:
        corners = np.array(rectangle.exterior.coords)
        sides = [corners[1] - corners[0], corners[2] - corners[1]]
        sides.sort(key=lambda v: -float(np.hypot(*v)))
        long_side = sides[0] / np.hypot(*sides[0])
    else:
        # East–west first for a square (within rounding), whatever the last digits say.
        long_side = np.array([1.0, 0.0]) if x1 - x0 >= (y1 - y0) * (1 - 1e-9) else np.array([0.0, 1.0])
    return [long_side, np.array([-long_side[1], long_side[0]])]


def _half_plane(region: BaseGeometry, direction: np.ndarray, low: float, position: float) -> Polygon:
    """A rectangle covering the part of `region` whose projection on `direction` is below `position`."""
    x0, y0, x1, y1 = region.bounds
    reach = math.hypot(x1 - x0, y1 - y0) + 10  # from the centre of the bounds past every corner
    normal = np.array([-direction[1], direction[0]])
    offset = float(np.array([(x0 + x1) / 2, (y0 + y1) / 2]) @ normal)
    start, end = direction * (low - 1) + normal * offset, direction * position + normal * offset
    return Polygon([start - normal * reach, end - normal * reach, end + normal * reach, start + normal * reach])


def _polygonal(geometry: BaseGeometry) -> BaseGeometry:
    """Only the areal part of an overlay result (which may carry stray lines or points)."""
    if geometry.geom_type in {"Polygon", "MultiPolygon"}:
        return geometry
    polygons = [part for part in shapely.get_parts(geometry) if part.geom_type == "Polygon" and not part.is_empty]
    return shapely.union_all(polygons) if polygons else Polygon()


def _free_gaps(starts: np.ndarray, ends: np.ndarray, low: float, high: float) -> list[tuple[float, float]]:
    """Open intervals of (low, high) that no building extent covers."""
    if len(starts) == 0:
        return [(low, high)]
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], ends[order]
    reach = np.maximum.accumulate(ends)
    gaps = []
    if starts[0] > low:
        gaps.append((low, float(starts[0])))
    for i in range(1, len(starts)):
        if starts[i] > reach[i - 1]:
            gaps.append((float(reach[i - 1]), float(starts[i])))
    if reach[-1] < high:
        gaps.append((float(reach[-1]), high))
    return [(a, b) for a, b in gaps if b > a and b > low and a < high]


def _noded(polygons: list[Polygon]) -> list[Polygon]:
    """The pieces as an exact coverage: a cut that ends on a neighbour's edge leaves a
    T-junction, and two overlays can compute the same intersection a few ulps apart; GEOS's
    coverage cleaner snaps such vertices together and makes every shared edge identical."""
    if len(polygons) < 2:
        return polygons
    cleaned = shapely.coverage_clean(np.array(polygons, dtype=object), snapping_distance=NODING_TOLERANCE_M)
    return [shapely.normalize(p) for p in cleaned]
