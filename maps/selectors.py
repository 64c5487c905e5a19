"""Reads of the command-center map dashboard (指挥地图): tiles, layer values, markers, panels.

Geometry never leaves the database as model objects: grid polygons go out as Mapbox
vector tiles built by ST_AsMVT (id and code only), and every thematic value goes out as
an id → value map that the browser applies to the polygons it already has. Counts use the
grid stored on each case, household and facility (no spatial join at request time).

Cases are always read through events.selectors.cases_visible_to; places through the
user's Scope (maps.access).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from typing import Any

import numpy as np
from django.db import connection
from django.db.models import Count, F, FloatField, Func, QuerySet
from django.utils import timezone

from accounts.models import User
from events import rollups, workflow
from events import selectors as case_selectors
from events.indicators import period_bounds
from events.models import Case, CasePhoto
from events.workflow import State
from geodata.models import Facility, Grid, GridAssignment, Household, Person, PersonTag
from geodata.selectors import grids_valid_on
from maps import classbreaks
from maps.access import (
    PopulationHidden,
    Scope,
    can_view_population,
    population_structure_for,
    sees_small_counts,
    suppress,
    user_scope,
)
from patrol import selectors as patrol_selectors

Row = dict[str, Any]

MVT_EXTENT = 4096
MVT_BUFFER = 64
MAX_MARKERS = 5000
# A change is looked for this long before the client's `since`, so that a transaction that
# committed late (its rows carry the time they were written, not the commit time) is not missed.
CHANGES_OVERLAP = dt.timedelta(seconds=30)
AGE_BANDS = ["0-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "70-79", "80+"]

# Cases that are not incidents: invalid reports and duplicates merged into another case.
NOT_INCIDENTS = (State.VOIDED, State.MERGED)

LAYERS: dict[str, dict[str, str]] = {
    "population": {"label": "实有人口", "unit": "人"},
    "population_density": {"label": "人口密度", "unit": "人/km²"},
    "households": {"label": "户数", "unit": "户"},
    "open_cases": {"label": "未结案件", "unit": "件"},
    "incident_density": {"label": "案件密度（按面积）", "unit": "件/km²"},
    "incident_rate": {"label": "案件密度（按人口）", "unit": "件/千人"},
}
# Layers drawn from the register's population: only with geodata.view_population, and with
# figures under five suppressed for users who may not see the residents (maps.access).
POPULATION_LAYERS = frozenset({"population", "population_density", "households", "incident_rate"})
SCHEMES = {"quantiles": "分位数", "natural_breaks": "自然断点"}
STATE_FILTERS = {"open": "未结案件（不限时段）", "all": "全部案件"}


@dataclasses.dataclass(frozen=True)
class CaseFilter:
    """What the dashboard shows: period (reported_at, local days, inclusive), category, state, place.

    state "open" means every case still being worked on, whenever it was reported: the
    period does not hide old open work. Any other state ("all" or one State) is limited to
    cases reported in the period.
    """

    first_day: dt.date
    last_day: dt.date
    category_id: int | None = None
    state: str = "open"
    street_id: int | None = None
    community_id: int | None = None

    @property
    def bounds(self) -> tuple[dt.datetime, dt.datetime]:
        return period_bounds(first_day=self.first_day, last_day=self.last_day)

    def apply(self, cases: QuerySet[Case]) -> QuerySet[Case]:
        if self.category_id is not None:
            cases = cases.filter(category_id=self.category_id)
        if self.street_id is not None:
            cases = cases.filter(street_id=self.street_id)
        if self.community_id is not None:
            cases = cases.filter(community_id=self.community_id)
        if self.state == "open":
            return cases.filter(state__in=workflow.OPEN_STATES)
        start, end = self.bounds
        cases = cases.filter(reported_at__gte=start, reported_at__lt=end)
        if self.state != "all":
            cases = cases.filter(state=self.state)
        return cases


def _rows(sql: str, params: list | dict) -> list[Row]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        columns = [column.name for column in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def cases_in_scope(cases: QuerySet[Case], *, scope: Scope) -> QuerySet[Case]:
    """Cases whose stored street / community / grid lies in `scope` (no spatial test)."""
    if scope.street_id is not None:
        cases = cases.filter(street_id=scope.street_id)
    if scope.community_id is not None:
        cases = cases.filter(community_id=scope.community_id)
    if scope.grid_ids is not None:
        cases = cases.filter(grid_id__in=sorted(scope.grid_ids))
    return cases


def filter_scope(*, user: User, case_filter: CaseFilter) -> Scope:
    return user_scope(user).narrowed(street_id=case_filter.street_id, community_id=case_filter.community_id)


def incident_counts(
    *, user: User, scope: Scope, first_day: dt.date, last_day: dt.date, category_id: int | None = None
) -> dict[int, int]:
    """{grid id: incidents} reported on the local days first_day..last_day (grids with none left
    out), among the cases `user` may count whose stored place lies in `scope`.

    Read from the incident rollups (events.rollups: grid × day / month / year, kept by
    triggers) when the question is theirs: no category, and cases countable by place alone.
    Otherwise — a category, a department's or a grid worker's cases — counted from events_case.
    """
    place = case_selectors.cases_countable_place(user=user)
    if category_id is None and place is not None:
        street_ids = {value for value in (scope.street_id, place.get("street_id")) if value is not None}
        community_ids = {value for value in (scope.community_id, place.get("community_id")) if value is not None}
        if len(street_ids) > 1 or len(community_ids) > 1:
            return {}  # the user's place and the scope do not meet
        return rollups.incident_counts_by_grid(
            first_day=first_day,
            last_day=last_day,
            street_id=min(street_ids, default=None),
            community_id=min(community_ids, default=None),
            grid_ids=scope.grid_ids,
        )
    return incident_counts_direct(
        user=user, scope=scope, first_day=first_day, last_day=last_day, category_id=category_id
    )


def incident_counts_direct(
    *, user: User, scope: Scope, first_day: dt.date, last_day: dt.date, category_id: int | None = None
) -> dict[int, int]:
    """incident_counts read from events_case (index case_reported_grid_idx): every filter, any period."""
    cases = cases_in_scope(case_selectors.cases_countable_by(user=user), scope=scope)
    if category_id is not None:
        cases = cases.filter(category_id=category_id)
    start, end = period_bounds(first_day=first_day, last_day=last_day)
    cases = cases.filter(reported_at__gte=start, reported_at__lt=end).exclude(state__in=NOT_INCIDENTS)
    return dict(cases.values("grid_id").annotate(n=Count("id")).order_by().values_list("grid_id", "n"))


# --- grid polygons as vector tiles ------------------------------------------------------------


def grid_tile(*, scope: Scope, z: int, x: int, y: int, day: dt.date) -> bytes:
    """A Mapbox vector tile (layer "grids", properties id and code) of the grids valid on `day` in `scope`.

    The polygons are read from the stored web-mercator copy geom_3857 (no per-request
    ST_Transform of each grid). The grids are still chosen by the bounding-box test on the
    stored geometry (GiST index grid_geom_gist): a test in web mercator would pick a slightly
    different set at the tile's edges (single-precision boxes), changing the tiles' content.
    """
    condition, params = scope.sql("g")
    sql = f"""
        WITH bounds AS (SELECT ST_TileEnvelope(%s, %s, %s) AS geom)
        SELECT ST_AsMVT(t, 'grids', {MVT_EXTENT}, 'geom') FROM (
            SELECT g.id, g.code,
                   ST_AsMVTGeom(g.geom_3857, b.geom, {MVT_EXTENT}, {MVT_BUFFER}, true) AS geom
            FROM geodata_grid g, bounds b
            WHERE g.geom && ST_Transform(b.geom, 4326)
              AND g.valid_from <= %s AND (g.valid_to IS NULL OR g.valid_to > %s)
              AND {condition}
        ) t WHERE t.geom IS NOT NULL
    """  # noqa: S608 (only the scope's own fixed SQL is interpolated; values are parameters)
    with connection.cursor() as cursor:
        cursor.execute(sql, [z, x, y, day, day, *params])
        (tile,) = cursor.fetchone()
    return bytes(tile or b"")


def scope_extent(*, scope: Scope, day: dt.date) -> list[float] | None:
    """[west, south, east, north] of the grids valid on `day` in `scope`, for fitting the map."""
    condition, params = scope.sql("g")
    sql = f"""
        SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (
            SELECT ST_Extent(g.geom) AS e FROM geodata_grid g
            WHERE g.valid_from <= %s AND (g.valid_to IS NULL OR g.valid_to > %s) AND {condition}
        ) s
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [day, day, *params])
        row = cursor.fetchone()
    return None if row is None or row[0] is None else [float(v) for v in row]


# --- thematic values -------------------------------------------------------------------------


def classify(values: dict[int, float | None], *, scheme: str = "quantiles", k: int = 5) -> dict[str, Any]:
    """Class upper bounds for a legend, from the values that are not None.

    maps.classbreaks computes mapclassify's breaks in numpy (mapclassify is not imported).

    Natural breaks are Fisher–Jenks (optimal and deterministic); above 200 values they are
    computed on 200 evenly spaced order statistics, which keeps the shape of the
    distribution and answers in about 0.1 s instead of seconds.
    """
    present = np.array([v for v in values.values() if v is not None], dtype=float)
    if present.size == 0:
        return {"scheme": scheme, "bins": [], "min": None}
    k = max(1, min(k, np.unique(present).size))
    if k == 1:
        bins = [float(present.max())]
    elif scheme == "natural_breaks":
        sample = present
        if present.size > 200:
            sample = np.sort(present)[np.linspace(0, present.size - 1, 200).round().astype(int)]
        k = min(k, np.unique(sample).size)  # the sample of order statistics may have fewer distinct values
        bins = [float(b) for b in classbreaks.fisher_jenks_breaks(sample, k)]
        bins[-1] = float(present.max())
    else:
        bins = [float(b) for b in classbreaks.quantile_breaks(present, k)]
    bins = sorted({round(b, 6) for b in bins})
    return {"scheme": scheme, "bins": bins, "min": float(present.min())}


def _per_km2(count: int, area_m2: float) -> float | None:
    return round(count / (area_m2 / 1_000_000), 2) if area_m2 else None


def _per_thousand(count: int, population: int) -> float | None:
    return round(count * 1000 / population, 2) if population else None


# Register counts change only through imports and edits; they are kept per process for a
# few minutes, keyed by scope, day and a version of the register (the highest ids and row
# estimates are not enough to see an edit, so the time limit bounds staleness).
REGISTER_CACHE_SECONDS = 300
_register_cache: dict[tuple, tuple[float, dict[int, tuple[float, int, int]]]] = {}


def _register_version() -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT max(id) FROM geodata_grid), (SELECT max(id) FROM geodata_household),"
            " (SELECT max(id) FROM geodata_person)"
        )
        return tuple(cursor.fetchone())


def grid_register_counts(*, scope: Scope, day: dt.date, with_people: bool = True) -> dict[int, tuple[float, int, int]]:
    """grid id → (area m², residents, households) for the grids valid on `day` in `scope`.

    Without people only the areas are read (residents and households are 0). With people,
    per grid two correlated counts walk the indexes on household.grid_id and
    person.household_id; the answer is cached for REGISTER_CACHE_SECONDS in this process.
    """
    condition, params = scope.sql("g")
    if not with_people:
        sql = f"""
            SELECT g.id, g.area_m2, 0, 0 FROM geodata_grid g
            WHERE g.valid_from <= %s AND (g.valid_to IS NULL OR g.valid_to > %s) AND {condition}
        """  # noqa: S608 (only the scope's own fixed SQL is interpolated)
        with connection.cursor() as cursor:
            cursor.execute(sql, [day, day, *params])
            return {gid: (area, 0, 0) for gid, area, _, _ in cursor.fetchall()}
    key = (scope, day, _register_version())
    cached = _register_cache.get(key)
    if cached is not None and time.monotonic() - cached[0] < REGISTER_CACHE_SECONDS:
        return cached[1]
    sql = f"""
        SELECT g.id, g.area_m2,
               (SELECT count(*) FROM geodata_person p JOIN geodata_household h ON h.id = p.household_id
                WHERE h.grid_id = g.id) AS population,
               (SELECT count(*) FROM geodata_household h WHERE h.grid_id = g.id) AS households
        FROM geodata_grid g
        WHERE g.valid_from <= %s AND (g.valid_to IS NULL OR g.valid_to > %s) AND {condition}
    """  # noqa: S608 (only the scope's own fixed SQL is interpolated)
    with connection.cursor() as cursor:
        cursor.execute(sql, [day, day, *params])
        counts = {gid: (area, population, households) for gid, area, population, households in cursor.fetchall()}
    if len(_register_cache) > 256:
        _register_cache.clear()
    _register_cache[key] = (time.monotonic(), counts)
    return counts


def _suppressed_layer_values(
    values: dict[int, float | None], *, register: dict[int, tuple[float, int, int]], layer: str
) -> dict[int, float | None]:
    """A population layer's values through maps.access.suppress: None where the count the value
    shows or is computed from (households for "households", else residents) is under five."""
    source = 2 if layer == "households" else 1
    rows = [{"grid": gid, "value": value, "count": register[gid][source]} for gid, value in values.items()]
    return {row["grid"]: row["value"] for row in suppress(rows, fields={"value": ["count"]})}


def grid_layer_values(
    *,
    user: User,
    layer: str,
    case_filter: CaseFilter,
    day: dt.date | None = None,
    scheme: str = "quantiles",
) -> dict[str, Any]:
    """{"values": {grid id: value}, "classes": legend} for one thematic layer over the grids in scope.

    Every grid in scope gets a value (0 where nothing is counted; None where a rate has no
    denominator). Case layers count only cases the user may see. POPULATION_LAYERS need
    geodata.view_population (else PopulationHidden) and are suppressed under five for users
    who may not see the residents (maps.access.suppress), legend included.
    """
    if layer not in LAYERS:
        raise ValueError(f"unknown layer {layer!r}")
    if layer in POPULATION_LAYERS and not can_view_population(user):
        raise PopulationHidden
    day = day or timezone.localdate()
    scope = filter_scope(user=user, case_filter=case_filter)
    register = grid_register_counts(
        scope=scope, day=day, with_people=layer in ("population", "population_density", "households", "incident_rate")
    )
    area = {gid: row[0] for gid, row in register.items()}
    population = {gid: row[1] for gid, row in register.items()}
    values: dict[int, float | None]
    if layer == "population":
        values = {gid: float(n) for gid, n in population.items()}
    elif layer == "population_density":
        values = {gid: _per_km2(n, area[gid]) for gid, n in population.items()}
    elif layer == "households":
        values = {gid: float(row[2]) for gid, row in register.items()}
    else:
        if layer == "open_cases":
            cases = cases_in_scope(case_selectors.cases_countable_by(user=user), scope=scope)
            if case_filter.category_id is not None:
                cases = cases.filter(category_id=case_filter.category_id)
            cases = cases.filter(state__in=workflow.OPEN_STATES)
            counted = dict(cases.values("grid_id").annotate(n=Count("id")).order_by().values_list("grid_id", "n"))
        else:
            counted = incident_counts(
                user=user,
                scope=scope,
                first_day=case_filter.first_day,
                last_day=case_filter.last_day,
                category_id=case_filter.category_id,
            )
        if layer == "open_cases":
            values = {gid: float(counted.get(gid, 0)) for gid in area}
        elif layer == "incident_density":
            values = {gid: _per_km2(counted.get(gid, 0), a) for gid, a in area.items()}
        else:
            values = {gid: _per_thousand(counted.get(gid, 0), population[gid]) for gid in area}
    if layer in POPULATION_LAYERS and not sees_small_counts(user):
        values = _suppressed_layer_values(values, register=register, layer=layer)
    return {
        "layer": layer,
        "label": LAYERS[layer]["label"],
        "unit": LAYERS[layer]["unit"],
        "values": {str(gid): v for gid, v in values.items()},
        "classes": classify(values, scheme=scheme),
    }


# --- cases on the map ------------------------------------------------------------------------


def _marker_rows(cases: QuerySet[Case], *, now: dt.datetime, limit: int) -> list[Row]:
    rows = (
        case_selectors.with_timer_light(cases, now=now)
        .annotate(
            lon=Func(F("location"), function="ST_X", output_field=FloatField()),
            lat=Func(F("location"), function="ST_Y", output_field=FloatField()),
        )
        .order_by("-reported_at", "-id")
        .values(
            "id",
            "number",
            "lon",
            "lat",
            "timer_light",
            "state",
            "grid_id",
            "reported_at",
            "deadline",
            "category__major_name",
            "category__minor_name",
        )[:limit]
    )
    labels = dict(State.choices)
    return [
        {
            "id": row["id"],
            "number": row["number"],
            "lon": round(row["lon"], 6),
            "lat": round(row["lat"], 6),
            "light": row["timer_light"],
            "state": row["state"],
            "state_label": labels.get(row["state"], row["state"]),
            "category": f"{row['category__major_name']}/{row['category__minor_name']}",
            "grid_id": row["grid_id"],
            "reported_at": row["reported_at"].isoformat(),
            "deadline": row["deadline"].isoformat() if row["deadline"] else None,
        }
        for row in rows
    ]


def case_markers(
    *, user: User, case_filter: CaseFilter, now: dt.datetime | None = None, limit: int = MAX_MARKERS
) -> dict[str, Any]:
    """Markers of the cases matching the filter, newest first, at most `limit` (then "truncated")."""
    now = now or timezone.now()
    cases = case_filter.apply(case_selectors.cases_visible_to(user=user))
    rows = _marker_rows(cases, now=now, limit=limit + 1)
    return {"now": now.isoformat(), "cases": rows[:limit], "truncated": len(rows) > limit}


def case_changes(
    *, user: User, case_filter: CaseFilter, since: dt.datetime, now: dt.datetime | None = None
) -> dict[str, Any]:
    """Cases that changed since `since`: new cases, any transition, a timer turning yellow or red.

    `cases` holds those that match the filter (add or update the marker), `removed` the ids
    of those that no longer match (for instance a case just closed when showing open work).
    Every test below is an index range scan: history by (action, created_at), timers by the
    partial indexes on warn_at and (state, deadline).
    """
    now = now or timezone.now()
    from_ = since - CHANGES_OVERLAP
    from events.models import CaseHistory  # local: only this reader needs the history table

    changed = (
        CaseHistory.objects.filter(action__in=workflow.Action.values, created_at__gte=from_)
        .values("case_id")
        .union(
            Case.objects.filter(state__in=workflow.TIMED_STATES, warn_at__gte=from_, warn_at__lte=now).values("id"),
            Case.objects.filter(state__in=workflow.TIMED_STATES, deadline__gte=from_, deadline__lte=now).values("id"),
        )
    )
    visible = case_selectors.cases_visible_to(user=user).filter(id__in=changed)
    matching = _marker_rows(case_filter.apply(visible), now=now, limit=MAX_MARKERS)
    matching_ids = {row["id"] for row in matching}
    removed = sorted(set(visible.values_list("id", flat=True)) - matching_ids)
    return {"now": now.isoformat(), "cases": matching, "removed": removed}


def overdue_cases(
    *, user: User, case_filter: CaseFilter, now: dt.datetime | None = None, limit: int = 100
) -> list[Row]:
    """Open cases past their step deadline, most overdue first (uses case_open_deadline_idx)."""
    now = now or timezone.now()
    scoped = dataclasses.replace(case_filter, state="open")
    cases = case_selectors.cases_overdue(now=now, queryset=scoped.apply(case_selectors.cases_visible_to(user=user)))
    rows = cases.values(
        "id",
        "number",
        "deadline",
        "step",
        "state",
        "grid__name",
        "category__minor_name",
        "current_department__name",
    )[:limit]
    labels = dict(State.choices)
    return [
        {
            "id": row["id"],
            "number": row["number"],
            "category": row["category__minor_name"],
            "grid": row["grid__name"],
            "state_label": labels.get(row["state"], row["state"]),
            "department": row["current_department__name"] or "",
            "deadline": deadline.isoformat(),
            "overdue_hours": round((now - deadline).total_seconds() / 3600, 1),
        }
        for row in rows
        if (deadline := row["deadline"]) is not None  # always set: overdue cases have a deadline
    ]


# --- a grid's panel ------------------------------------------------------------------------


def grid_in_scope(*, user: User, grid_id: int) -> Grid | None:
    return user_scope(user).grids(Grid.objects.filter(pk=grid_id)).select_related("community__street").first()


def grid_population_structure(*, grid_ids: list[int], day: dt.date) -> dict[str, Any]:
    """Counts only: persons by sex and 10-year age band on `day`, households, followed groups (重点关注人群)."""
    rows = _rows(
        """
        SELECT p.sex, LEAST(floor(extract(year FROM age(%(day)s::date, p.birth_date)) / 10), 8)::int AS band,
               count(*) AS n
        FROM geodata_person p JOIN geodata_household h ON h.id = p.household_id
        WHERE h.grid_id = ANY(%(grids)s)
        GROUP BY 1, 2
        """,
        {"day": day, "grids": grid_ids},
    )
    pyramid = {sex: [0] * len(AGE_BANDS) for sex in Person.Sex.values}
    for row in rows:
        pyramid[row["sex"]][max(row["band"], 0)] += row["n"]
    tags = _rows(
        """
        SELECT t.tag, count(*) AS n
        FROM geodata_person p JOIN geodata_household h ON h.id = p.household_id, unnest(p.tags) AS t(tag)
        WHERE h.grid_id = ANY(%(grids)s)
        GROUP BY 1
        """,
        {"grids": grid_ids},
    )
    tag_counts = {row["tag"]: row["n"] for row in tags}
    return {
        "age_bands": AGE_BANDS,
        "male": pyramid[Person.Sex.MALE],
        "female": pyramid[Person.Sex.FEMALE],
        "population": sum(pyramid[Person.Sex.MALE]) + sum(pyramid[Person.Sex.FEMALE]),
        "households": Household.objects.filter(grid_id__in=grid_ids).count(),
        "followed": [{"tag": tag, "label": label, "count": tag_counts.get(tag, 0)} for tag, label in PersonTag.choices],
    }


def grid_panel(
    *, user: User, grid_id: int, day: dt.date | None = None, now: dt.datetime | None = None
) -> dict[str, Any] | None:
    """What a click on a grid shows: population structure (counts only; left out without
    geodata.view_population, small counts suppressed as maps.access.population_structure_for says),
    facilities by status, recent cases the user may see, the grid's workers. None when the grid is
    outside the user's scope."""
    day = day or timezone.localdate()
    now = now or timezone.now()
    grid = grid_in_scope(user=user, grid_id=grid_id)
    if grid is None:
        return None
    facilities = dict(
        Facility.objects.filter(grid=grid)
        .values("status")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("status", "n")
    )
    recent = _marker_rows(case_selectors.cases_visible_to(user=user).filter(grid=grid), now=now, limit=10)
    workers = [
        {"name": a.worker.get_full_name() or a.worker.username, "primary": a.is_primary}
        for a in GridAssignment.objects.filter(grid=grid).select_related("worker").order_by("-is_primary", "id")
    ]
    structure = (
        population_structure_for(user=user, structure=grid_population_structure(grid_ids=[grid.pk], day=day))
        if can_view_population(user)
        else None
    )
    return {
        "id": grid.pk,
        "code": grid.code,
        "name": grid.name,
        "community": grid.community.name,
        "street": grid.community.street.name,
        "area_km2": round(grid.area_m2 / 1_000_000, 4),
        **({"structure": structure} if structure is not None else {}),  # population figures: with the right only
        "facilities": [
            {"status": status, "label": label, "count": facilities.get(status, 0)}
            for status, label in Facility.Status.choices
        ],
        "recent_cases": recent,
        "workers": workers,
    }


# --- a case's timeline -----------------------------------------------------------------------


def case_detail(*, user: User, case_id: int, now: dt.datetime | None = None) -> dict[str, Any] | None:
    """A case and its timeline with photos (as ids for the photo view); None when not visible.

    Reporter name and phone are never part of it: the map is not the place for personal data.
    """
    now = now or timezone.now()
    case = (
        case_selectors.with_timer_light(case_selectors.cases_visible_to(user=user), now=now)
        .select_related("category", "grid", "current_department")
        .filter(pk=case_id)
        .first()
    )
    if case is None:
        return None
    history = list(case_selectors.case_timeline(case=case))
    before = CasePhoto.objects.filter(case=case, history__isnull=True).values_list("id", flat=True)
    return {
        "id": case.pk,
        "number": case.number,
        "category": f"{case.category.major_name}/{case.category.minor_name}",
        "state": case.state,
        "state_label": case.get_state_display(),
        "light": case.timer_light,  # type: ignore[attr-defined]
        "description": case.description,
        "address": case.address,
        "grid": case.grid.name,
        "department": case.current_department.name if case.current_department else "",
        "reported_at": case.reported_at.isoformat(),
        "deadline": case.deadline.isoformat() if case.deadline else None,
        "photos": list(before),
        "timeline": [
            {
                "at": row.created_at.isoformat(),
                "action": row.get_action_display(),
                "from_state": row.get_from_state_display(),
                "to_state": row.get_to_state_display(),
                "actor": (row.actor.get_full_name() or row.actor.username) if row.actor else "系统",
                "role": workflow.ROLE_LABELS.get(row.actor_role, row.actor_role),
                "department": row.department.name if row.department else "",
                "comment": row.comment,
                "photos": [photo.pk for photo in row.attachments.all()],
            }
            for row in history
        ],
    }


def case_photo_visible(*, user: User, photo_id: int) -> CasePhoto | None:
    """The photo when its case is visible to `user`, else None."""
    return (
        CasePhoto.objects.filter(pk=photo_id, case__in=case_selectors.cases_visible_to(user=user).values("id"))
        .only("id", "image", "image_format")
        .first()
    )


# --- 人员监测 -----------------------------------------------------------------------------


def worker_monitor(*, user: User, day: dt.date | None = None) -> dict[str, Any]:
    """Last known positions (today) and today's tracks of the grid workers of the user's grids."""
    day = day or timezone.localdate()
    start, end = period_bounds(first_day=day, last_day=day)
    scope = user_scope(user)
    workers = set(
        GridAssignment.objects.filter(grid__in=scope.grids(grids_valid_on(day))).values_list("worker_id", flat=True)
    )
    positions = [
        {
            "worker_id": row["worker_id"],
            "name": f"{row['last_name']}{row['first_name']}" or row["username"],
            "lon": round(row["lon"], 6),
            "lat": round(row["lat"], 6),
            "recorded_at": row["recorded_at"].isoformat(),
            "accuracy_m": row["accuracy_m"],
        }
        for row in patrol_selectors.worker_positions_latest(since=start)
        if row["worker_id"] in workers
    ]
    tracks = patrol_selectors.patrol_tracks_geojson(start=start, end=end)
    tracks["features"] = [f for f in tracks["features"] if f["properties"]["worker_id"] in workers]
    return {"positions": positions, "tracks": tracks}
