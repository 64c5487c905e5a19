"""Reads of the 3-D view (三维楼栋): building and facility tiles, legend classes, a building's panel.

Buildings go out as Mapbox vector tiles built by PostGIS (ST_AsMVT), one feature per
building: its footprint, or a 10 m square around its location when no footprint is known,
with the height (floors × storey height) and the counts the browser colours by. Counts use
the building stored on each household (no spatial join for people). Cases carry no
building, so a case is attributed at query time to the nearest building within
CASE_RADIUS_M of its location (footprint or square, on the spheroid; ties to the lower id),
and only for the open cases near the buildings asked for: the case indexes (location GiST,
open cases by grid) find them, the GiST indexes on building footprints and locations find
each one's nearest building.

Buildings in the user's scope (maps.access.user_scope: their grid is in scope) carry their
id and counts; the others are drawn as grey massing with height and floors only. Cases are
counted only when the user may see them (events.selectors.cases_visible_to). Counts of
residents and households go only to users with geodata.view_population, and those under
five only to users who may see the residents (maps.access: the one suppression rule). No person is
ever named, except in a building's household list for roles with the right to see
personal data (geodata.reveal_personal_data), within the persons they may open.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Count, QuerySet
from django.utils import timezone

from accounts.models import User
from events import selectors as case_selectors
from events import workflow
from events.models import Case
from events.workflow import State
from geodata.models import Building, Grid, GridAssignment, Household, Person, PersonTag
from geodata.selectors import persons_visible_to
from maps.access import (
    PopulationHidden,
    Scope,
    can_view_population,
    population_structure_for,
    sees_small_counts,
    suppress,
    suppressed_sql,
    user_scope,
)
from maps.selectors import AGE_BANDS, MVT_BUFFER, MVT_EXTENT, classify

Row = dict[str, Any]

# Documented defaults (docs/3d.md); both can be changed per request.
STOREY_HEIGHT_M = 3.0
MIN_STOREY_HEIGHT_M, MAX_STOREY_HEIGHT_M = 2.0, 10.0
RECENT_DAYS = 30
MAX_RECENT_DAYS = 365
# Below this tile zoom a building tile is empty. At 30° N a z14 tile is ≈ 2.1 km square:
# ≈ 650 buildings and 27 kB at the density measured in docs/3d.md (30 000 buildings on 214 km²).
MIN_BUILDING_ZOOM = 14
MIN_FACILITY_ZOOM = 15
# A case belongs to the nearest building within this distance of its location.
CASE_RADIUS_M = 30.0
# Half the side of the square drawn for a building whose footprint is not known.
NO_FOOTPRINT_HALF_SIDE_M = 5.0
# A legend is classified over the buildings in view, at most this box (≈ 4 km) around its
# centre: the browser sends no more, the server refuses more.
MAX_CLASS_BOX_DEGREES = 0.04
MAX_PANEL_CASES = 20

COLOUR_BY: dict[str, dict[str, str]] = {
    "households": {"label": "户数", "unit": "户"},
    "residents": {"label": "实有人口", "unit": "人"},
    "followed": {"label": "重点关注人群", "unit": "人"},
    "open_cases": {"label": "未结案件", "unit": "件"},
}
# Colours drawn from the register's population: only with geodata.view_population, and with
# counts under five suppressed for users who may not see the residents (maps.access).
POPULATION_COLOURS = frozenset({"households", "residents", "followed"})


def colours_for(user: User) -> dict[str, dict[str, str]]:
    """The colourings offered to `user`: without the right to population figures, cases only."""
    return {key: item for key, item in COLOUR_BY.items() if key not in POPULATION_COLOURS or can_view_population(user)}


_SRID = settings.STORAGE_SRID
_METRIC_SRID = settings.METRIC_SRID
# Metres per degree of latitude; only for conservative index pre-filters (see _degrees).
_METRES_PER_DEGREE = 111_000.0
# A building without footprint is found by its location: its square (NO_FOOTPRINT_HALF_SIDE_M)
# reaches at most this far from it, up to 60° of latitude.
_LOCATION_MARGIN_DEGREES = 0.0002


@dataclasses.dataclass(frozen=True)
class BuildingView:
    """What a tile or a legend is computed for: the storey height and the case window."""

    storey_m: float = STOREY_HEIGHT_M
    days: int = RECENT_DAYS

    def since(self, now: dt.datetime) -> dt.datetime:
        return now - dt.timedelta(days=self.days)


# --- SQL pieces ----------------------------------------------------------------------------
# Only module constants, settings integers and alias names are interpolated; every value is
# a positional parameter.


def _shape(alias: str) -> str:
    """A building's ground shape in the storage SRID: its footprint, or a square around its location."""
    square = (
        f"ST_Transform(ST_Expand(ST_Transform({alias}.location, {_METRIC_SRID}), {NO_FOOTPRINT_HALF_SIDE_M}), {_SRID})"
    )
    return f"COALESCE({alias}.footprint, {square})"


def _degrees(geometry: str, metres: float) -> str:
    """`metres` as degrees of longitude at the latitude of `geometry`, one degree further from the
    equator so that it is never too small: the bounding-box pre-filter that lets a GiST index work."""
    return f"({metres} / ({_METRES_PER_DEGREE} * cos(radians(least(abs(ST_Y(ST_Centroid({geometry}))) + 1.0, 89.0)))))"


def _building_near(alias: str, area: str) -> str:
    """Buildings whose shape may touch `area` (a 4326 geometry): footprint by its index, else location by its index."""
    return (
        f"({alias}.footprint && {area} OR ({alias}.footprint IS NULL"
        f" AND {alias}.location && ST_Expand({area}, {_LOCATION_MARGIN_DEGREES})))"
    )


def _nearest_building(case_alias: str) -> str:
    """A LATERAL subquery: the id of the building a case is attributed to (nearest within CASE_RADIUS_M)."""
    location = f"{case_alias}.location"
    reach = f"ST_Expand({location}, {_degrees(location, CASE_RADIUS_M)})"
    return f"""
        SELECT nb.id FROM geodata_building nb
        WHERE {_building_near("nb", reach)}
          AND ST_DWithin({_shape("nb")}::geography, {location}::geography, {CASE_RADIUS_M})
        ORDER BY ST_Distance({_shape("nb")}::geography, {location}::geography), nb.id
        LIMIT 1
    """  # noqa: S608 (see "SQL pieces")


def _in_scope(scope: Scope, alias: str) -> tuple[str, list[Any]]:
    """Whether the building or facility `alias` is in `scope` (by its stored grid), as SQL."""
    if scope.is_everything:
        return "TRUE", []
    condition, params = scope.sql("g")
    return f"{alias}.grid_id IN (SELECT g.id FROM geodata_grid g WHERE {condition})", params  # noqa: S608


def _open_cases_sql(*, user: User, since: dt.datetime) -> tuple[str, list[Any]]:
    """SQL of the open cases reported since `since` that `user` may see (id, location, grid_id)."""
    cases = (
        case_selectors.cases_countable_by(user=user)
        .filter(state__in=workflow.OPEN_STATES, reported_at__gte=since)
        .order_by()
        .values("id", "location", "grid_id")
    )
    try:
        sql, params = cases.query.sql_with_params()
    except EmptyResultSet:  # no case the user may count: an empty relation of the same shape
        return "SELECT NULL::bigint AS id, NULL::geometry AS location, NULL::bigint AS grid_id WHERE FALSE", []
    return sql, list(params)


def _building_values_sql(
    *,
    area_sql: str,
    area_params: list[Any],
    user: User,
    scope: Scope,
    view: BuildingView,
    now: dt.datetime,
    values: frozenset[str] = frozenset(COLOUR_BY),
) -> tuple[str, list[Any]]:
    """A WITH … SELECT of every building whose shape touches `area_sql` (a 4326 geometry):
    id, floors, shape (4326), detail (in scope) and the counts named in `values` (NULL for
    those not asked for; meaningful only where detail).

    Every count is an index walk per building (households by building_id, persons by
    household_id). Cases are looked for only near the buildings in detail: open cases of
    the grids around them (partial index case_open_grid_idx), then each one's nearest
    building (GiST on building footprints and locations).
    """
    detail, detail_params = _in_scope(scope, "b")
    params: list[Any] = [*area_params, *detail_params]
    attributed = ""
    if "open_cases" in values:
        cases_sql, cases_params = _open_cases_sql(user=user, since=view.since(now))
        params += cases_params
        attributed = f"""
        , reach AS MATERIALIZED (
            SELECT ST_Expand(e.box, {_degrees("e.box", CASE_RADIUS_M)}) AS geom
            FROM (SELECT ST_SetSRID(ST_Extent(shape)::geometry, {_SRID}) AS box FROM buildings WHERE detail) e
        ),
        attributed AS MATERIALIZED (
            SELECT nearest.id AS building_id, count(*) AS n
            FROM ({cases_sql}) c
            CROSS JOIN reach r
            CROSS JOIN LATERAL ({_nearest_building("c")}) nearest
            WHERE c.location && r.geom
              -- a case lies in its grid, so its grid touches the reach: lets the planner walk
              -- the open cases of those grids instead of every case ever reported there
              AND c.grid_id = ANY(ARRAY(SELECT g.id FROM geodata_grid g, reach r2 WHERE g.geom && r2.geom))
            GROUP BY 1
        )"""  # noqa: S608 (see "SQL pieces")
    households = (
        "(SELECT count(*) FROM geodata_household h WHERE b.detail AND h.building_id = b.id)"
        if "households" in values
        else "NULL::bigint"
    )
    people = (
        "people.residents AS residents, people.followed AS followed"
        if {"residents", "followed"} & values
        else "NULL::bigint AS residents, NULL::bigint AS followed"
    )
    people_join = (
        """
        LEFT JOIN LATERAL (
            SELECT count(*) AS residents, count(*) FILTER (WHERE cardinality(p.tags) > 0) AS followed
            FROM geodata_household h JOIN geodata_person p ON p.household_id = h.id
            WHERE b.detail AND h.building_id = b.id
        ) people ON TRUE"""
        if {"residents", "followed"} & values
        else ""
    )
    open_cases = (
        "COALESCE((SELECT a.n FROM attributed a WHERE a.building_id = b.id), 0)" if attributed else "NULL::bigint"
    )
    sql = f"""
        WITH area AS MATERIALIZED (SELECT {area_sql} AS geom),
        buildings AS MATERIALIZED (
            SELECT b.id, b.floors, {_shape("b")} AS shape, ({detail}) AS detail
            FROM geodata_building b, area a
            WHERE {_building_near("b", "a.geom")} AND ST_Intersects({_shape("b")}, a.geom)
        ){attributed}
        SELECT b.id, b.floors, b.shape, b.detail,
               {households} AS households, {people}, {open_cases} AS open_cases
        FROM buildings b{people_join}
    """  # noqa: S608 (see "SQL pieces")
    return sql, params


# --- tiles ---------------------------------------------------------------------------------


def building_tile(
    *, user: User, z: int, x: int, y: int, view: BuildingView | None = None, now: dt.datetime | None = None
) -> bytes:
    """A Mapbox vector tile, layer "buildings", of the buildings in tile z/x/y (empty below MIN_BUILDING_ZOOM).

    Every building: height_m (floors × storey height, 0.1 m) and floors. Buildings in the
    user's scope also: id, households, residents, followed (residents in at least one
    followed group) and open_cases (open cases reported in the last `days` days, visible to
    the user, attributed to their nearest building).
    """
    if z < MIN_BUILDING_ZOOM:
        return b""
    sql, params = _building_tile_sql(user=user, z=z, x=x, y=y, view=view or BuildingView(), now=now or timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        (tile,) = cursor.fetchone()
    return bytes(tile or b"")


def _building_tile_sql(
    *, user: User, z: int, x: int, y: int, view: BuildingView, now: dt.datetime
) -> tuple[str, list[Any]]:
    # Population counts: not computed at all without the right (NULL attributes are left out of
    # the tile), under five suppressed for users who may not see the residents.
    values = frozenset(colours_for(user))
    values_sql, params = _building_values_sql(
        area_sql="ST_Transform(ST_TileEnvelope(%s, %s, %s), 4326)",
        area_params=[z, x, y],
        user=user,
        scope=user_scope(user),
        view=view,
        now=now,
        values=values,
    )
    exact = sees_small_counts(user)
    counts = {
        name: (f"v.{name}" if exact else suppressed_sql(f"v.{name}")) if name in values else "NULL::bigint"
        for name in POPULATION_COLOURS
    }
    sql = f"""
        SELECT ST_AsMVT(t, 'buildings', {MVT_EXTENT}, 'geom') FROM (
            SELECT CASE WHEN v.detail THEN v.id END AS id,
                   round((v.floors * %s)::numeric, 1)::float8 AS height_m,
                   v.floors,
                   CASE WHEN v.detail THEN {counts["households"]} END AS households,
                   CASE WHEN v.detail THEN {counts["residents"]} END AS residents,
                   CASE WHEN v.detail THEN {counts["followed"]} END AS followed,
                   CASE WHEN v.detail THEN v.open_cases END AS open_cases,
                   ST_AsMVTGeom(ST_Transform(v.shape, 3857), ST_TileEnvelope(%s, %s, %s),
                                {MVT_EXTENT}, {MVT_BUFFER}, true) AS geom
            FROM ({values_sql}) v
        ) t WHERE t.geom IS NOT NULL
    """  # noqa: S608 (see "SQL pieces")
    return sql, [view.storey_m, z, x, y, *params]


def facility_tile(*, user: User, z: int, x: int, y: int) -> bytes:
    """A Mapbox vector tile, layer "facilities" (id, status, type), of the facilities in the user's
    scope (their stored grid) in tile z/x/y; empty below MIN_FACILITY_ZOOM."""
    if z < MIN_FACILITY_ZOOM:
        return b""
    condition, params = _in_scope(user_scope(user), "f")
    sql = f"""
        WITH bounds AS (SELECT ST_TileEnvelope(%s, %s, %s) AS geom)
        SELECT ST_AsMVT(t, 'facilities', {MVT_EXTENT}, 'geom') FROM (
            SELECT f.id, f.status, ft.minor_name AS type,
                   ST_AsMVTGeom(ST_Transform(f.location, 3857), b.geom, {MVT_EXTENT}, {MVT_BUFFER}, true) AS geom
            FROM geodata_facility f JOIN geodata_facilitytype ft ON ft.id = f.facility_type_id, bounds b
            WHERE f.location && ST_Transform(b.geom, 4326) AND {condition}
        ) t WHERE t.geom IS NOT NULL
    """  # noqa: S608 (see "SQL pieces")
    with connection.cursor() as cursor:
        cursor.execute(sql, [z, x, y, *params])
        (tile,) = cursor.fetchone()
    return bytes(tile or b"")


# --- legend --------------------------------------------------------------------------------


def building_values(
    *,
    user: User,
    bbox: tuple[float, float, float, float],
    colour_by: str,
    view: BuildingView | None = None,
    now: dt.datetime | None = None,
) -> dict[int, float | None]:
    """building id → value of `colour_by`, for the buildings in the user's scope that touch
    `bbox` (west, south, east, north in EPSG:4326): the same numbers as the tiles (population
    counts under five None for users who may not see the residents)."""
    if colour_by not in COLOUR_BY:
        raise ValueError(f"unknown colour {colour_by!r}")
    if colour_by in POPULATION_COLOURS and not can_view_population(user):
        raise PopulationHidden
    view = view or BuildingView()
    now = now or timezone.now()
    values_sql, params = _building_values_sql(
        area_sql=f"ST_MakeEnvelope(%s, %s, %s, %s, {_SRID})",
        area_params=list(bbox),
        user=user,
        scope=user_scope(user),
        view=view,
        now=now,
        values=frozenset({colour_by}),
    )
    sql = f"SELECT v.id, v.{colour_by} FROM ({values_sql}) v WHERE v.detail"  # noqa: S608 (colour_by is checked above)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        values: dict[int, float | None] = {building_id: float(value) for building_id, value in cursor.fetchall()}
    if colour_by in POPULATION_COLOURS and not sees_small_counts(user):
        rows = suppress([{"id": key, "n": value} for key, value in values.items()], fields={"n": []})
        values = {row["id"]: row["n"] for row in rows}
    return values


def building_classes(
    *,
    user: User,
    bbox: tuple[float, float, float, float],
    colour_by: str,
    scheme: str = "quantiles",
    view: BuildingView | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """The legend for `colour_by`: mapclassify classes (maps.selectors.classify, as the 2-D
    choropleth) over the buildings in scope in view."""
    values = building_values(user=user, bbox=bbox, colour_by=colour_by, view=view, now=now)
    return {
        "colour_by": colour_by,
        "label": COLOUR_BY[colour_by]["label"],
        "unit": COLOUR_BY[colour_by]["unit"],
        "buildings": len(values),
        "classes": classify(dict(values), scheme=scheme),
    }


# --- a building's panel ------------------------------------------------------------------


def building_in_scope(*, user: User, building_id: int) -> Building | None:
    """The building when its stored grid is in the user's scope (any building for an unlimited scope)."""
    buildings = Building.objects.filter(pk=building_id).select_related("grid__community__street")
    scope = user_scope(user)
    if not scope.is_everything:
        buildings = buildings.filter(grid__in=scope.grids(Grid.objects.all()))
    return buildings.first()


def attributed_case_ids(*, building: Building, cases: QuerySet[Case]) -> list[int]:
    """Ids of `cases` attributed to `building`: within CASE_RADIUS_M, and no other building nearer."""
    try:
        cases_sql, cases_params = cases.order_by().values("id", "location").query.sql_with_params()
    except EmptyResultSet:  # the user may open no case at all (a planner): nothing to attribute
        return []
    sql = f"""
        WITH building AS (SELECT b.id, {_shape("b")} AS shape FROM geodata_building b WHERE b.id = %s)
        SELECT c.id FROM ({cases_sql}) c, building b
        WHERE c.location && ST_Expand(b.shape, {_degrees("b.shape", CASE_RADIUS_M)})
          AND ST_DWithin(b.shape::geography, c.location::geography, {CASE_RADIUS_M})
          AND ({_nearest_building("c")}) = b.id
    """  # noqa: S608 (see "SQL pieces")
    with connection.cursor() as cursor:
        cursor.execute(sql, [building.pk, *cases_params])
        return [row[0] for row in cursor.fetchall()]


def building_population_structure(*, building_id: int, day: dt.date) -> dict[str, Any]:
    """Counts only: residents by sex and 10-year age band on `day`, residents in followed groups
    (重点关注人群: in any, and per group)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT p.sex, LEAST(floor(extract(year FROM age(%s::date, p.birth_date)) / 10), 8)::int AS band,
                   count(*) AS n, count(*) FILTER (WHERE cardinality(p.tags) > 0) AS followed
            FROM geodata_person p JOIN geodata_household h ON h.id = p.household_id
            WHERE h.building_id = %s
            GROUP BY 1, 2
            """,
            [day, building_id],
        )
        persons = cursor.fetchall()
        cursor.execute(
            """
            SELECT t.tag, count(*) FROM geodata_person p JOIN geodata_household h ON h.id = p.household_id,
                   unnest(p.tags) AS t(tag)
            WHERE h.building_id = %s
            GROUP BY 1
            """,
            [building_id],
        )
        tag_counts = dict(cursor.fetchall())
    pyramid = {sex: [0] * len(AGE_BANDS) for sex in Person.Sex.values}
    followed = 0
    for sex, band, n, tagged in persons:
        pyramid[sex][max(band, 0)] += n
        followed += tagged
    return {
        "age_bands": AGE_BANDS,
        "male": pyramid[Person.Sex.MALE],
        "female": pyramid[Person.Sex.FEMALE],
        "residents": sum(pyramid[Person.Sex.MALE]) + sum(pyramid[Person.Sex.FEMALE]),
        "followed_residents": followed,
        "followed": [{"tag": tag, "label": label, "count": tag_counts.get(tag, 0)} for tag, label in PersonTag.choices],
    }


_CASE_FIELDS = ("id", "number", "state", "timer_light", "reported_at", "category__major_name", "category__minor_name")


def _case_rows(case_ids: list[int], *, now: dt.datetime) -> list[Row]:
    cases = case_selectors.with_timer_light(Case.objects.filter(id__in=case_ids), now=now)
    rows = cases.order_by("-reported_at", "-id").values(*_CASE_FIELDS)  # timer_light: annotated above
    labels = dict(State.choices)
    return [
        {
            "id": row["id"],
            "number": row["number"],
            "state": row["state"],
            "state_label": labels.get(row["state"], row["state"]),
            "light": row["timer_light"],
            "category": f"{row['category__major_name']}/{row['category__minor_name']}",
            "reported_at": row["reported_at"].isoformat(),
        }
        for row in rows
    ]


def can_see_households(*, user: User) -> bool:
    """Whether the panel may list households by name: the right to see personal data (accounts/roles.py)."""
    return user.has_perm("geodata.reveal_personal_data")


def building_household_list(*, user: User, building: Building) -> list[Row]:
    """The building's households whose residents `user` may open: room, type, head of household
    and the masked phone (never in clear), and how many live there. Only for can_see_households."""
    visible = persons_visible_to(user=user).filter(household__building=building).values("household_id")
    rows = (
        Household.objects.filter(building=building, id__in=visible)
        .annotate(residents=Count("persons"))
        .order_by("unit", "room", "id")
        .values("id", "unit", "room", "household_type", "head_name", "phone_masked", "residents")
    )
    types = dict(Household.Type.choices)
    return [{**row, "household_type": types.get(row["household_type"], row["household_type"])} for row in rows]


def building_panel(
    *,
    user: User,
    building_id: int,
    view: BuildingView | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any] | None:
    """What a click on a building shows; None when the building is outside the user's scope.

    Counts and age structure of its residents (left out without geodata.view_population, under
    five suppressed for users who may not see the residents), its open cases (reported in the last `days`
    days: the number its colour shows) and its other cases of that period, its grid and
    grid workers. Households are listed by name only for roles allowed to see personal data.
    """
    view = view or BuildingView()
    now = now or timezone.now()
    building = building_in_scope(user=user, building_id=building_id)
    if building is None:
        return None
    day = timezone.localdate(now)
    period = (
        case_selectors.cases_visible_to(user=user)
        .filter(reported_at__gte=view.since(now))
        .exclude(state__in=[State.VOIDED, State.MERGED])
    )
    cases = _case_rows(attributed_case_ids(building=building, cases=period), now=now)
    open_cases = [row for row in cases if row["state"] in workflow.OPEN_STATES]
    other_cases = [row for row in cases if row["state"] not in workflow.OPEN_STATES]
    grid = building.grid
    workers = (
        [
            {"name": a.worker.get_full_name() or a.worker.username, "primary": a.is_primary}
            for a in GridAssignment.objects.filter(grid=grid).select_related("worker").order_by("-is_primary", "id")
        ]
        if grid is not None
        else []
    )
    households = building_household_list(user=user, building=building) if can_see_households(user=user) else None
    structure = (
        population_structure_for(
            user=user,
            structure={
                **building_population_structure(building_id=building.pk, day=day),
                "households": Household.objects.filter(building=building).count(),
            },
        )
        if can_view_population(user)
        else None
    )
    return {
        "id": building.pk,
        "code": building.code,
        "address": building.address,
        "use": building.get_use_display(),
        "floors": building.floors,
        "height_m": round(building.floors * view.storey_m, 1),
        "storey_m": view.storey_m,
        "has_footprint": building.footprint is not None,
        "grid": (
            {
                "id": grid.pk,
                "code": grid.code,
                "name": grid.name,
                "community": grid.community.name,
                "street": grid.community.street.name,
            }
            if grid is not None
            else None
        ),
        "workers": workers,
        # population figures: with the right only (maps.access.population_structure_for)
        **({"households": structure.pop("households"), "structure": structure} if structure is not None else {}),
        "days": view.days,
        "open_cases_count": len(open_cases),
        "open_cases": open_cases[:MAX_PANEL_CASES],
        "other_cases_count": len(other_cases),
        "other_cases": other_cases[:MAX_PANEL_CASES],
        "household_list": households,
    }
