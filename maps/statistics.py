"""Planners' spatial statistics (aggregates only; planners never see a person).

- case counts per grid / community / street × category × month, and time series;
- hot spots per grid (Getis–Ord Gi* or local Moran's I, PySAL esda) on incidents per km²
  or per 1 000 residents, with permutation p-values and a false-discovery-rate cut;
- within-distance questions answered in PostGIS (elderly living alone far from a facility
  type, households near a facility type);
- patrol coverage per grid and day / week beside the cases the grid workers found.

Counts use the grid stored on each case and household. Incidents are cases that were not
voided (作废) and not merged into another case (duplicates). Grids are those valid on the
last day of the period; cases recorded on grids that ended before it are not on today's
map (they keep their own grid in counts per grid).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import warnings
import zoneinfo
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection
from django.db.models import Count, QuerySet
from django.db.models.functions import TruncDay, TruncMonth, TruncWeek

from accounts.models import User
from events import selectors as case_selectors
from events.indicators import period_bounds
from events.models import Case, Category
from geodata.models import Community, Grid, PersonTag, Street
from geodata.selectors import grids_valid_on
from maps.access import SUPPRESS_BELOW, Scope, suppress  # noqa: F401 (the one rule, also kept reachable here)
from maps.selectors import NOT_INCIDENTS, cases_in_scope, incident_counts
from patrol import selectors as patrol_selectors

Row = dict[str, Any]

LEVELS = {"grid": Grid, "community": Community, "street": Street}
LEVEL_LABELS = {"grid": "网格", "community": "社区", "street": "街道"}
INTERVALS = {"month": TruncMonth, "week": TruncWeek, "day": TruncDay}
# A rate per 1 000 residents over fewer residents than this says nothing; such grids are left out of hot-spot analysis.
MIN_POPULATION_FOR_RATE = 5
# Two grids are neighbours (queen contiguity) when they share an edge or a corner; the
# tolerance absorbs the sub-decimetre slivers left between imported polygons.
NEIGHBOUR_TOLERANCE_DEG = 1e-6


def _rows(sql: str, params: list | dict) -> list[Row]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        columns = [column.name for column in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def _tz() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def scoped_cases(*, user: User, scope: Scope) -> QuerySet[Case]:
    """Incidents the user may see, reported in grids of `scope` (by the grid stored on the case)."""
    return cases_in_scope(case_selectors.cases_countable_by(user=user), scope=scope).exclude(state__in=NOT_INCIDENTS)


# --- counts and time series -----------------------------------------------------------------


def case_counts(
    *,
    user: User,
    scope: Scope,
    first_day: dt.date,
    last_day: dt.date,
    level: str = "grid",
    by_category: bool = True,
    by_month: bool = True,
    category_id: int | None = None,
) -> list[Row]:
    """Incidents reported in the period per region (× category) (× month), with codes and names."""
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}")
    start, end = period_bounds(first_day=first_day, last_day=last_day)
    cases = scoped_cases(user=user, scope=scope).filter(reported_at__gte=start, reported_at__lt=end)
    if category_id is not None:
        cases = cases.filter(category_id=category_id)
    group = [f"{level}_id"]
    if by_category:
        group.append("category_id")
    if by_month:
        cases = cases.annotate(month=TruncMonth("reported_at", tzinfo=_tz()))
        group.append("month")
    counted = list(cases.values(*group).annotate(count=Count("id")).order_by())
    regions = {r.pk: r for r in LEVELS[level]._default_manager.filter(pk__in={row[f"{level}_id"] for row in counted})}
    categories = {c.pk: c for c in Category.objects.filter(pk__in={row.get("category_id") for row in counted})}
    result = []
    for row in counted:
        region = regions[row[f"{level}_id"]]
        out: Row = {"level": level, "region_id": region.pk, "code": region.code, "name": region.name}  # type: ignore[attr-defined]
        if by_category:
            category = categories[row["category_id"]]
            out |= {"category_code": category.code, "category": f"{category.major_name}/{category.minor_name}"}
        if by_month:
            out["month"] = f"{row['month']:%Y-%m}"
        out["count"] = row["count"]
        result.append(out)
    return sorted(result, key=lambda r: (r["code"], r.get("category_code", ""), r.get("month", "")))


def _period_starts(first_day: dt.date, last_day: dt.date, interval: str) -> list[dt.date]:
    if interval == "month":
        day = first_day.replace(day=1)
        starts = []
        while day <= last_day:
            starts.append(day)
            day = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        return starts
    step = 7 if interval == "week" else 1
    day = first_day - dt.timedelta(days=first_day.weekday()) if interval == "week" else first_day
    starts = []
    while day <= last_day:
        starts.append(day)
        day += dt.timedelta(days=step)
    return starts


def case_series(
    *,
    user: User,
    scope: Scope,
    first_day: dt.date,
    last_day: dt.date,
    interval: str = "month",
    category_id: int | None = None,
) -> list[Row]:
    """Incidents per month / week (Monday) / day over the period, with zeros where there were none."""
    if interval not in INTERVALS:
        raise ValueError(f"unknown interval {interval!r}")
    start, end = period_bounds(first_day=first_day, last_day=last_day)
    cases = scoped_cases(user=user, scope=scope).filter(reported_at__gte=start, reported_at__lt=end)
    if category_id is not None:
        cases = cases.filter(category_id=category_id)
    counted = {
        row["bucket"].date() if isinstance(row["bucket"], dt.datetime) else row["bucket"]: row["n"]
        for row in cases.annotate(bucket=INTERVALS[interval]("reported_at", tzinfo=_tz()))
        .values("bucket")
        .annotate(n=Count("id"))
        .order_by()
    }
    return [
        {"period": day.isoformat(), "count": counted.get(day, 0)}
        for day in _period_starts(first_day, last_day, interval)
    ]


# --- hot spots ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class HotSpot:
    grid_id: int
    code: str
    name: str
    incidents: int
    value: float | None  # the analysed rate: per km² or per 1 000 residents
    statistic: float | None  # Gi* z-score, or local Moran's I
    p_value: float | None  # permutation (pseudo) p-value
    kind: str  # hot, cold, high_low, low_high, none, excluded

    def as_row(self) -> Row:
        return {**dataclasses.asdict(self), "kind_label": HOT_SPOT_LABELS[self.kind]}


HOT_SPOT_LABELS = {
    "hot": "热点",
    "cold": "冷点",
    "high_low": "高值孤立点",
    "low_high": "低值孤立点",
    "none": "不显著",
    "excluded": "未参与分析",
}


def grid_neighbours(*, grid_ids: list[int]) -> dict[int, list[int]]:
    """Queen contiguity among `grid_ids`, found by PostGIS (GiST bounding-box join)."""
    pairs = _rows(
        """
        SELECT a.id AS a, b.id AS b FROM geodata_grid a JOIN geodata_grid b
          ON a.id < b.id AND ST_DWithin(a.geom, b.geom, %(tolerance)s)
        WHERE a.id = ANY(%(ids)s) AND b.id = ANY(%(ids)s)
        """,
        {"ids": grid_ids, "tolerance": NEIGHBOUR_TOLERANCE_DEG},
    )
    neighbours: dict[int, list[int]] = {gid: [] for gid in grid_ids}
    for pair in pairs:
        neighbours[pair["a"]].append(pair["b"])
        neighbours[pair["b"]].append(pair["a"])
    return neighbours


def _local_statistic(method: str, y: np.ndarray, w: Any, *, permutations: int, seed: int) -> tuple[Any, Any, Any, Any]:
    """(esda result, statistic per grid, pseudo p-value, spread of the permuted statistic)."""
    import esda  # imported here: PySAL weighs ≈ 60 MB in every web worker (docs/performance.md §8)

    if method == "gi_star":
        w.transform = "B"
        gi = esda.G_Local(y, w, transform="B", star=True, permutations=permutations, seed=seed, n_jobs=1)
        return gi, gi.Zs, gi.p_sim, gi.seG_sim
    w.transform = "R"
    moran = esda.Moran_Local(y, w, transformation="r", permutations=permutations, seed=seed, n_jobs=1)
    return moran, moran.Is, moran.p_sim, moran.seI_sim


def hot_spots(
    *,
    user: User,
    scope: Scope,
    first_day: dt.date,
    last_day: dt.date,
    normalise: str = "area",
    method: str = "gi_star",
    category_id: int | None = None,
    alpha: float = 0.05,
    permutations: int = 999,
    seed: int = 12345,
) -> list[HotSpot]:
    """Hot and cold spots of incident rates per grid.

    normalise: "area" (incidents per km²) or "population" (per 1 000 residents; grids with
    fewer than MIN_POPULATION_FOR_RATE residents are left out). method: "gi_star"
    (Getis–Ord Gi*, binary queen weights with the grid itself) or "moran" (local Moran's I,
    row-standardised queen weights). Significance: conditional permutation p-values (fixed
    seed, so a rerun gives the same answer), cut by the Benjamini–Hochberg false discovery
    rate at `alpha` across all grids, so that testing many grids does not paint random
    noise as hot spots. Grids without neighbours are left out.
    """
    if normalise not in ("area", "population"):
        raise ValueError(f"unknown normalisation {normalise!r}")
    if method not in ("gi_star", "moran"):
        raise ValueError(f"unknown method {method!r}")
    grids = scope.grids(grids_valid_on(last_day))
    if normalise == "population":
        grid_rows = list(
            grids.annotate(population=Count("households__persons")).values(
                "id", "code", "name", "area_m2", "population"
            )
        )
    else:
        grid_rows = list(grids.values("id", "code", "name", "area_m2"))  # type: ignore[arg-type]
    # Grids outside grid_rows (ended ones) are counted too and left unused.
    counted = incident_counts(user=user, scope=scope, first_day=first_day, last_day=last_day, category_id=category_id)
    values: dict[int, float | None] = {}
    for grid in grid_rows:
        n = counted.get(grid["id"], 0)
        if normalise == "population":
            population = grid["population"]
            values[grid["id"]] = n * 1000 / population if population >= MIN_POPULATION_FOR_RATE else None
        else:
            values[grid["id"]] = n / (grid["area_m2"] / 1_000_000) if grid["area_m2"] else None
    analysed = [gid for gid, v in values.items() if v is not None]
    neighbours = grid_neighbours(grid_ids=analysed)
    analysed = [gid for gid in analysed if neighbours[gid]]
    statistic: dict[int, float] = {}
    p_values: dict[int, float] = {}
    kinds: dict[int, str] = {}
    y = np.array([values[gid] for gid in analysed], dtype=float)
    if len(analysed) >= 3 and np.ptp(y) > 0:
        import esda  # imported when a hot-spot analysis runs, not by every web worker (§8)
        import libpysal

        keep = set(analysed)
        w = libpysal.weights.W(
            {gid: [n for n in neighbours[gid] if n in keep] for gid in analysed},
            id_order=analysed,
            silence_warnings=True,
        )
        with warnings.catch_warnings():
            # esda warns that its default alternative hypothesis will change; we read p_sim as
            # documented for this version (folded, in the direction observed) and pin the version.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", RuntimeWarning)  # degenerate neighbourhoods: handled below
            result, scores, p, spread = _local_statistic(method, y, w, permutations=permutations, seed=seed)
        # A grid whose neighbourhood is (nearly) every other grid cannot be tested: every
        # permutation gives the same sum, the statistic has no spread and its p-value means nothing.
        testable = np.isfinite(scores) & (spread > 1e-12)
        threshold = esda.fdr(p[testable], alpha) if testable.any() else 0.0
        for index, gid in enumerate(analysed):
            if not testable[index]:
                kinds[gid] = "none"
                continue
            statistic[gid] = float(scores[index])
            p_values[gid] = float(p[index])
            significant = p[index] <= threshold
            if not significant:
                kinds[gid] = "none"
            elif method == "gi_star":
                kinds[gid] = "hot" if scores[index] > 0 else "cold"
            else:
                kinds[gid] = {1: "hot", 2: "low_high", 3: "cold", 4: "high_low"}[int(result.q[index])]
    else:
        kinds = {gid: "none" for gid in analysed}
    return [
        HotSpot(
            grid_id=g["id"],
            code=g["code"],
            name=g["name"],
            incidents=counted.get(g["id"], 0),
            value=None if values[g["id"]] is None else round(values[g["id"]], 3),  # type: ignore[arg-type]
            statistic=None if g["id"] not in statistic else round(statistic[g["id"]], 4),
            p_value=p_values.get(g["id"]),
            kind=kinds.get(g["id"], "excluded"),
        )
        for g in sorted(grid_rows, key=lambda g: g["code"])
    ]


# --- within-distance questions ---------------------------------------------------------------

# Buildings near a facility of the type, found from the facilities' side: one GiST index
# probe on building locations per facility (a degree window never narrower than the metric
# distance at the facility's latitude, as in geodata.selectors.within_metres), then the exact
# test on the spheroid. Facilities of one type are few; buildings are many.
_NEAR_BUILDINGS = """
    near_buildings AS (
        SELECT DISTINCT b.id
        FROM geodata_facility f
        JOIN geodata_building b ON ST_DWithin(
                b.location, f.location,
                %(metres)s / (111000.0 * GREATEST(cos(radians(abs(ST_Y(f.location)) + 1.0)), 0.01)))
            AND ST_DWithin(b.location::geography, f.location::geography, %(metres)s)
        WHERE f.facility_type_id = %(type)s AND f.status <> 'decommissioned'
    )
"""


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def elderly_alone_far_from(
    *, scope: Scope, facility_type_id: int, metres: float = 500, min_age: int = 80, day: dt.date
) -> dict[int, int]:
    """Per grid: residents aged `min_age`+ on `day` who live alone — tagged 独居老人, or the only
    person registered in their household — and whose building lies farther than `metres`
    from every facility of the type that is in service (not 废弃). Counts only."""
    condition, params = scope.sql("g")
    sql = f"""
        WITH {_NEAR_BUILDINGS}
        SELECT h.grid_id, count(*) AS n
        FROM geodata_person p
        JOIN geodata_household h ON h.id = p.household_id
        JOIN geodata_grid g ON g.id = h.grid_id
        WHERE p.birth_date <= %(born_by)s
          AND (%(tag)s = ANY(p.tags)
               OR NOT EXISTS (SELECT 1 FROM geodata_person o WHERE o.household_id = p.household_id AND o.id <> p.id))
          AND h.building_id NOT IN (SELECT id FROM near_buildings)
          AND g.valid_from <= %(day)s AND (g.valid_to IS NULL OR g.valid_to > %(day)s)
          AND {_named(condition, params)}
        GROUP BY h.grid_id
    """  # noqa: S608 (fixed SQL fragments; every value is a parameter)
    rows = _rows(
        sql,
        {
            "born_by": _years_before(day, min_age),
            "tag": PersonTag.ELDERLY_ALONE.value,
            "type": facility_type_id,
            "metres": metres,
            "day": day,
            **_named_params(params),
        },
    )
    return {row["grid_id"]: row["n"] for row in rows}


def households_near(*, scope: Scope, facility_type_id: int, metres: float = 300, day: dt.date) -> dict[int, Row]:
    """Per grid: households, and those whose building lies within `metres` of a facility of the type (in service)."""
    condition, params = scope.sql("g")
    sql = f"""
        WITH {_NEAR_BUILDINGS}
        SELECT h.grid_id, count(*) AS households, count(n.id) AS within
        FROM geodata_household h
        JOIN geodata_grid g ON g.id = h.grid_id
        LEFT JOIN near_buildings n ON n.id = h.building_id
        WHERE g.valid_from <= %(day)s AND (g.valid_to IS NULL OR g.valid_to > %(day)s)
          AND {_named(condition, params)}
        GROUP BY h.grid_id
    """  # noqa: S608
    rows = _rows(sql, {"type": facility_type_id, "metres": metres, "day": day, **_named_params(params)})
    return {row["grid_id"]: {"households": row["households"], "within": row["within"]} for row in rows}


def _named(condition: str, params: list) -> str:
    """Scope.sql uses positional placeholders; give them names to mix with the named ones above."""
    for index in range(len(params)):
        condition = condition.replace("%s", f"%(scope_{index})s", 1)
    return condition


def _named_params(params: list) -> dict[str, Any]:
    return {f"scope_{index}": value for index, value in enumerate(params)}


# --- patrol coverage -------------------------------------------------------------------------


def patrol_coverage_table(
    *, user: User, scope: Scope, first_day: dt.date, last_day: dt.date, period: str = "day"
) -> list[Row]:
    """Per grid and day (or ISO week, Monday to Sunday): the share of the grid swept by its own
    workers' tracks (patrol.selectors.patrol_coverage, 25 m each side) and the cases its grid
    workers reported there in the same days."""
    if period not in ("day", "week"):
        raise ValueError(f"unknown period {period!r}")
    starts = _period_starts(first_day, last_day, period)
    in_scope = set(scope.grids(Grid.objects.all()).values_list("id", flat=True))
    start, end = period_bounds(
        first_day=starts[0], last_day=max(last_day, starts[-1] + dt.timedelta(days=6 if period == "week" else 0))
    )
    found = {
        (row["grid_id"], row["bucket"].date()): row["n"]
        for row in scoped_cases(user=user, scope=scope)
        .filter(source=Case.Source.GRID_WORKER, reported_at__gte=start, reported_at__lt=end)
        .annotate(bucket=INTERVALS[period]("reported_at", tzinfo=_tz()))
        .values("grid_id", "bucket")
        .annotate(n=Count("id"))
        .order_by()
    }
    table = []
    for first in starts:
        last = first + dt.timedelta(days=6 if period == "week" else 0)
        window_start, window_end = period_bounds(first_day=first, last_day=last)
        for row in patrol_selectors.patrol_coverage(start=window_start, end=window_end, day=last):
            if row["grid_id"] not in in_scope:
                continue
            table.append(
                {
                    "period": first.isoformat(),
                    "grid_id": row["grid_id"],
                    "code": row["code"],
                    "covered_share": float(row["covered_share"]),
                    "cases_found": found.get((row["grid_id"], first), 0),
                }
            )
    return table


# --- the grid profile (population figures) --------------------------------------------------


def grid_profile(*, scope: Scope, day: dt.date) -> list[Row]:
    """Per grid valid on `day`: area, population, households, density, residents 60+ and 80+,
    and the followed groups. Population figures: export them through `suppress`."""
    condition, params = scope.sql("g")
    born_60 = _years_before(day, 60)
    born_80 = _years_before(day, 80)
    tag_columns = ", ".join(
        f"count(p.id) FILTER (WHERE %(tag_{t})s = ANY(p.tags)) AS tag_{t}" for t in PersonTag.values
    )
    sql = f"""
        SELECT g.id AS grid_id, g.code, g.name, c.name AS community, g.area_m2,
               (SELECT count(*) FROM geodata_household hh WHERE hh.grid_id = g.id) AS households,
               count(p.id) AS population,
               count(p.id) FILTER (WHERE p.birth_date <= %(born_60)s) AS aged_60,
               count(p.id) FILTER (WHERE p.birth_date <= %(born_80)s) AS aged_80,
               {tag_columns}
        FROM geodata_grid g
        JOIN geodata_community c ON c.id = g.community_id
        LEFT JOIN geodata_household h ON h.grid_id = g.id
        LEFT JOIN geodata_person p ON p.household_id = h.id
        WHERE g.valid_from <= %(day)s AND (g.valid_to IS NULL OR g.valid_to > %(day)s)
          AND {_named(condition, params)}
        GROUP BY g.id, c.name
        ORDER BY g.code
    """  # noqa: S608
    rows = _rows(
        sql,
        {
            "day": day,
            "born_60": born_60,
            "born_80": born_80,
            **{f"tag_{t}": t for t in PersonTag.values},
            **_named_params(params),
        },
    )
    for row in rows:
        row["area_km2"] = round(row.pop("area_m2") / 1_000_000, 4)
        row["population_density"] = round(row["population"] / row["area_km2"], 1) if row["area_km2"] else None
    return rows


PROFILE_COLUMNS = [
    ("code", "网格编码"),
    ("name", "网格名称"),
    ("community", "社区"),
    ("area_km2", "面积(km²)"),
    ("population", "实有人口"),
    ("households", "户数"),
    ("population_density", "人口密度(人/km²)"),
    ("aged_60", "60岁及以上"),
    ("aged_80", "80岁及以上"),
    *[(f"tag_{t}", label) for t, label in PersonTag.choices],
]
# Figures about residents: counts under SUPPRESS_BELOW are not exported, and neither are
# values computed from a suppressed count (a density times the area gives the count back).
PROFILE_POPULATION_FIELDS = {
    "population": [],
    "households": [],
    "population_density": ["population"],
    "aged_60": [],
    "aged_80": [],
    **{f"tag_{t}": [] for t in PersonTag.values},
}
