"""Geometry checks of an import, in shapely (the same GEOS that PostGIS uses).

Validity is judged on the geometry as it will be stored (after reprojection to the storage
SRID), so that a row accepted here also passes the ST_IsValid check constraints. Areas of
overlaps, gaps and overhangs are measured in the jurisdiction's metric CRS
(settings.METRIC_SRID, a CGCS2000 Gauss–Krüger zone), never in square degrees.
"""

from dataclasses import dataclass
from enum import Enum

import numpy as np
import shapely
from django.conf import settings
from pyproj import Transformer
from shapely.geometry.base import BaseGeometry

_REASONS = {
    "Ring Self-intersection": "环自相交",
    "Self-intersection": "自相交",
    "Too few points in geometry component": "顶点过少",
    "Hole lies outside shell": "内环（洞）位于外环之外",
    "Nested holes": "内环相互嵌套",
    "Nested shells": "多个外环相互嵌套",
    "Interior is disconnected": "内部不连通（内环把面分割开）",
    "Duplicate Rings": "存在重复的环",
    "Invalid Coordinate": "坐标无效（非数值或无穷大）",
    "Ring is not closed": "环未闭合",
}


class Shape(Enum):
    """What a layer stores: one polygon, a multipolygon, a point, or a point or a footprint."""

    POLYGON = "面（Polygon）"
    MULTIPOLYGON = "面（Polygon/MultiPolygon）"
    POINT = "点（Point）"
    POINT_OR_POLYGON = "点或面（Point/Polygon）"


def _lonlat(point: BaseGeometry) -> str:
    return f"({point.x:.6f}, {point.y:.6f})"


def explain_invalid(geometry: BaseGeometry) -> str:
    reason = shapely.is_valid_reason(geometry)
    text, _, where = reason.partition("[")
    label = _REASONS.get(text.strip(), text.strip())
    if where:
        coords = where.rstrip("]").split()
        if len(coords) >= 2:
            return f"几何无效：{label}，位置 ({float(coords[0]):.6f}, {float(coords[1]):.6f})"
    return f"几何无效：{label}"


def coerce(geometry: BaseGeometry | None, shape: Shape) -> BaseGeometry:
    """The geometry in the type the layer stores, or ValueError saying what is wrong with it."""
    if geometry is None or geometry.is_empty:
        raise ValueError("缺少几何")
    kind = geometry.geom_type
    if kind.startswith("Multi") and len(geometry.geoms) == 1 and shape is not Shape.MULTIPOLYGON:
        geometry, kind = geometry.geoms[0], geometry.geoms[0].geom_type
    wanted = {
        Shape.POLYGON: {"Polygon"},
        Shape.MULTIPOLYGON: {"Polygon", "MultiPolygon"},
        Shape.POINT: {"Point"},
        Shape.POINT_OR_POLYGON: {"Point", "Polygon", "MultiPolygon"},
    }[shape]
    if kind not in wanted:
        if shape is Shape.POLYGON and kind == "MultiPolygon":
            raise ValueError(f"几何应为单个面，收到由 {len(geometry.geoms)} 个面组成的多面")
        raise ValueError(f"几何类型应为{shape.value}，收到 {kind}")
    if not shapely.is_valid(geometry):
        raise ValueError(explain_invalid(geometry))
    if kind == "Polygon" and (shape is Shape.MULTIPOLYGON or shape is Shape.POINT_OR_POLYGON):
        geometry = shapely.MultiPolygon([geometry])
    return geometry


# Overlays (intersection, difference, union) run on a grid of 1e-9 degree (about 0.1 mm):
# coordinates computed as x0 + 11 * 0.002 and x0 + 12 * 0.002 - 0.002 differ in the last bit,
# and exact overlays of tiled polygons then leave needle-thin slivers along shared edges.
GRID_SIZE_DEGREES = 1e-9
# Pieces are densified to this spacing (about 20 m) before projection, so that a straight
# edge in lon/lat is measured as the same curve whichever polygon it belongs to.
DENSIFY_DEGREES = 0.0002


class Metric:
    """Areas in m², measured in the metric CRS.

    Topology (intersection, difference, containment) is computed on the stored lon/lat
    coordinates, exactly as PostGIS will see them; only the resulting pieces are projected to
    be measured. Projecting first would bend shared edges differently (a vertex in the middle
    of a neighbour's edge leaves that edge's chord) and report millimetre slivers as overlaps.
    """

    def __init__(self) -> None:
        self._forward = Transformer.from_crs(settings.STORAGE_SRID, settings.METRIC_SRID, always_xy=True)

    def _project(self, xy: np.ndarray) -> np.ndarray:
        return np.column_stack(self._forward.transform(xy[:, 0], xy[:, 1]))

    def area(self, geometries) -> np.ndarray:
        dense = shapely.segmentize(np.asarray(geometries, dtype=object), DENSIFY_DEGREES)
        return shapely.area(shapely.transform(dense, self._project))


def where(geometry: BaseGeometry) -> str:
    """A point on the surface of a lon/lat geometry, as text for the report."""
    return _lonlat(shapely.point_on_surface(geometry))


@dataclass
class Overlap:
    first: int  # index into the new geometries
    second: int  # index into the new geometries, or into `existing` when `with_existing`
    with_existing: bool
    area_m2: float
    where: str


def overlaps(new: np.ndarray, existing: np.ndarray, *, metric: Metric, tolerance_m2: float) -> list[Overlap]:
    """Pairs of polygons whose common area exceeds the tolerance: new×new and new×existing.

    Neighbours that only share an edge have a zero-area intersection and are not reported.
    """
    found: list[Overlap] = []
    if len(new):
        left, right = shapely.STRtree(new).query(new, predicate="intersects")
        pairs = left < right
        found += _measured(new, left[pairs], new, right[pairs], False, metric, tolerance_m2)
    if len(new) and len(existing):
        right, left = shapely.STRtree(existing).query(new, predicate="intersects")[::-1]
        found += _measured(new, left, existing, right, True, metric, tolerance_m2)
    return found


def _measured(a, left, b, right, with_existing, metric, tolerance_m2) -> list[Overlap]:
    if not len(left):
        return []
    common = shapely.intersection(a[left], b[right], grid_size=GRID_SIZE_DEGREES)
    areas = metric.area(common)
    return [
        Overlap(int(i), int(j), with_existing, float(area), where(piece))
        for i, j, area, piece in zip(left, right, areas, common, strict=True)
        if area > tolerance_m2  # edge-sharing neighbours intersect in a line (area 0)
    ]


@dataclass
class Gap:
    area_m2: float
    where: str


def gaps(boundary: BaseGeometry, pieces: np.ndarray, *, metric: Metric, tolerance_m2: float) -> list[Gap]:
    """The parts of `boundary` that no piece covers, larger than the tolerance, biggest first."""
    if len(pieces):
        covered = shapely.union_all(pieces, grid_size=GRID_SIZE_DEGREES)
        uncovered = shapely.difference(boundary, covered, grid_size=GRID_SIZE_DEGREES)
    else:
        uncovered = boundary
    parts = shapely.get_parts(uncovered)
    found = [
        Gap(float(area), where(part))
        for part, area in zip(parts, metric.area(parts), strict=True)
        if area > tolerance_m2
    ]
    return sorted(found, key=lambda gap: -gap.area_m2)


def overhang(inner: BaseGeometry, outer: BaseGeometry, *, metric: Metric) -> tuple[float, str]:
    """Area in m² of `inner` outside `outer`, and where it is."""
    outside = shapely.difference(inner, outer, grid_size=GRID_SIZE_DEGREES)
    if outside.is_empty:
        return 0.0, ""
    return float(metric.area([outside])[0]), where(outside)
