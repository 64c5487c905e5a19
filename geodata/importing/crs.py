"""Which coordinate reference system a source file is in.

Order of trust: the system named by the user (--srs / the upload form), then the one the
file declares (.prj, GeoPackage srs, GeoJSON "crs" member), then a guess from the
coordinates themselves. Guessing covers what Chinese street-office data actually contains:

- longitude/latitude: CGCS2000 (EPSG:4490); the same as WGS84 within centimetres;
- CGCS2000 Gauss–Krüger with the zone number in front of the easting (35 500 000 m):
  6-degree zones 13–23 (EPSG:4491–4501) and 3-degree zones 25–45 (EPSG:4513–4533);
- Gauss–Krüger eastings without a zone number (500 000 m ± 400 km): the jurisdiction's
  metric zone, settings.METRIC_SRID;
- surveyors' axis order (X = northing, Y = easting) is recognised and swapped.

A declared geographic CRS whose coordinates cannot be degrees (GDAL reports every GeoJSON
without a "crs" member as WGS84) is treated as undeclared, and the report says so.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings
from pyproj import CRS
from pyproj.exceptions import CRSError

CGCS2000_GEOGRAPHIC = 4490


class CrsError(ValueError):
    """The source CRS cannot be determined or is not usable; the message is for the user."""


@dataclass
class CrsDecision:
    crs: CRS
    swap_axes: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def description(self) -> str:
        code = self.crs.to_epsg(min_confidence=70)
        name = f"EPSG:{code} {self.crs.name}" if code else self.crs.name
        return name + ("（X/Y 轴互换）" if self.swap_axes else "")


def parse_user_crs(text: str) -> CRS:
    """A CRS named by the user: "4544", "EPSG:4544" or a WKT/PROJ string."""
    value = text.strip()
    try:
        return CRS.from_epsg(int(value)) if value.isdigit() else CRS.from_user_input(value)
    except CRSError:
        raise CrsError(f"无法识别坐标系“{text}”，请填写 EPSG 代码，例如 4490 或 4544") from None


def _degrees(bounds) -> bool:
    minx, miny, maxx, maxy = bounds
    return -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90


def _gauss_kruger_for_easting(minx: float, maxx: float, northing_min: float, northing_max: float) -> int | None:
    """The EPSG code of the CGCS2000 Gauss–Krüger zone these eastings/northings fit, or None."""
    if not (0 <= northing_min <= northing_max <= 10_000_000):
        return None
    zone_min, zone_max = int(minx // 1_000_000), int(maxx // 1_000_000)
    if zone_min == zone_max and 13 <= zone_min <= 23:
        return 4491 + zone_min - 13
    if zone_min == zone_max and 25 <= zone_min <= 45:
        return 4513 + zone_min - 25
    if minx > 0 and maxx < 1_000_000:
        return settings.METRIC_SRID
    return None


def _classify(bounds) -> tuple[int, bool] | None:
    """(EPSG code, axes swapped) that one geometry's coordinates fit, or None."""
    minx, miny, maxx, maxy = bounds
    if _degrees(bounds):
        return CGCS2000_GEOGRAPHIC, False
    code = _gauss_kruger_for_easting(minx, maxx, miny, maxy)
    if code is not None:
        return code, False
    code = _gauss_kruger_for_easting(miny, maxy, minx, maxx)
    if code is not None:
        return code, True
    return None


def _majority(samples: Sequence[Sequence[float]]) -> tuple[int, bool] | None:
    """The class most geometries fit. Voting per geometry keeps one mistyped
    row (latitude and longitude swapped by hand) from deciding the CRS of the whole file; that
    row is then reported on its own, outside the jurisdiction."""
    votes = Counter(_classify(b) for b in samples)
    return votes.most_common(1)[0][0]


def decide_crs(*, declared: CRS | None, requested: str | None, samples: Sequence[Sequence[float]]) -> CrsDecision:
    """Choose the CRS to read the coordinates in; `samples` are the bounds of each raw geometry."""
    if requested:
        decision = CrsDecision(crs=parse_user_crs(requested))
        if declared is not None and not declared.equals(decision.crs, ignore_axis_order=True):
            decision.warnings.append(f"文件声明的坐标系为 {declared.name}，已按指定的 {decision.crs.name} 处理")
        return decision
    if not len(samples):
        return CrsDecision(crs=declared or CRS.from_epsg(CGCS2000_GEOGRAPHIC))
    winner = _majority(samples)
    if declared is not None and not (declared.is_geographic and winner != (CGCS2000_GEOGRAPHIC, False)):
        if not (declared.is_geographic or declared.is_projected):
            raise CrsError(f"文件的坐标系 {declared.name} 不是地理或投影坐标系，无法导入")
        return CrsDecision(crs=declared)
    if winner is None:
        x, y = samples[0][0], samples[0][1]
        raise CrsError(
            f"无法判断坐标系：坐标（如 {x:.0f}, {y:.0f}）既不像经纬度也不像 CGCS2000 高斯-克吕格坐标，"
            "请指定源坐标系（EPSG 代码）"
        )
    decision = CrsDecision(crs=CRS.from_epsg(winner[0]), swap_axes=winner[1])
    if declared is not None:
        decision.warnings.append(
            f"文件声明为地理坐标系 {declared.name}，但坐标不是经纬度；已按 {decision.description} 处理，请核对"
        )
    elif decision.crs.is_projected:
        # Undeclared longitude/latitude needs no warning: CGCS2000 and WGS84 agree within centimetres.
        decision.warnings.append(f"文件未声明坐标系，根据坐标范围按 {decision.description} 处理，请核对")
    return decision
