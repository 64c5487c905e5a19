"""Reads for 人员监测: last known positions, tracks of a day, patrol coverage per grid."""

import datetime as dt
from typing import Any

from django.db import connection
from django.db.models import QuerySet

from patrol.models import PatrolSession


def _rows(sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        columns = [column.name for column in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def worker_positions_latest(*, since: dt.datetime) -> list[dict[str, Any]]:
    """The last point of every worker who sent one since `since` (one index scan per worker)."""
    return _rows(
        """
        SELECT DISTINCT ON (p.worker_id) p.worker_id, u.username, u.first_name, u.last_name,
               p.recorded_at, ST_X(p.point) AS lon, ST_Y(p.point) AS lat, p.accuracy_m
        FROM patrol_patrolpoint p JOIN accounts_user u ON u.id = p.worker_id
        WHERE p.recorded_at >= %(since)s
        ORDER BY p.worker_id, p.recorded_at DESC
        """,
        {"since": since},
    )


def patrol_sessions_between(*, start: dt.datetime, end: dt.datetime) -> QuerySet[PatrolSession]:
    """Sessions that overlap [start, end), with the worker."""
    return (
        PatrolSession.objects.filter(started_at__lt=end)
        .exclude(ended_at__lt=start)
        .select_related("worker")
        .order_by("worker_id", "started_at")
    )


def patrol_tracks_geojson(*, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """Tracks of [start, end) as a GeoJSON FeatureCollection built by PostGIS.

    Open sessions have no stored line yet; their line is made from their points here.
    """
    rows = _rows(
        """
        SELECT s.id, s.worker_id, u.username, s.started_at, s.ended_at,
               ST_AsGeoJSON(COALESCE(s.track, (
                   SELECT CASE WHEN count(*) >= 2 THEN ST_MakeLine(p.point ORDER BY p.recorded_at) END
                   FROM patrol_patrolpoint p WHERE p.session_id = s.id
               )), 6)::json AS geometry
        FROM patrol_patrolsession s JOIN accounts_user u ON u.id = s.worker_id
        WHERE s.started_at < %(end)s AND (s.ended_at IS NULL OR s.ended_at >= %(start)s)
        ORDER BY s.worker_id, s.started_at
        """,
        {"start": start, "end": end},
    )
    features = [
        {
            "type": "Feature",
            "geometry": row.pop("geometry"),
            "properties": {**row, "started_at": row["started_at"].isoformat(), "ended_at": _iso(row["ended_at"])},
        }
        for row in rows
    ]
    return {"type": "FeatureCollection", "features": [f for f in features if f["geometry"] is not None]}


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def patrol_coverage(*, start: dt.datetime, end: dt.datetime, day: dt.date, buffer_m: float = 25.0) -> list[dict]:
    """Share of each grid (valid on `day`, with assigned workers) swept by its own workers' tracks.

    A track covers a corridor of `buffer_m` metres on each side (measured on geography).
    Grids whose workers did not patrol get 0.
    """
    return _rows(
        """
        WITH swept AS (
            SELECT a.grid_id, ST_Union(ST_Buffer(s.track::geography, %(buffer)s)::geometry) AS area
            FROM geodata_gridassignment a
            JOIN patrol_patrolsession s ON s.worker_id = a.worker_id
            WHERE s.track IS NOT NULL AND s.started_at >= %(start)s AND s.started_at < %(end)s
            GROUP BY a.grid_id
        )
        SELECT g.id AS grid_id, g.code,
               round(
                   COALESCE(ST_Area(ST_Intersection(g.geom, w.area)::geography) / NULLIF(g.area_m2, 0), 0)::numeric, 4
               ) AS covered_share
        FROM geodata_grid g
        LEFT JOIN swept w ON w.grid_id = g.id
        WHERE g.valid_from <= %(day)s AND (g.valid_to IS NULL OR g.valid_to > %(day)s)
          AND EXISTS (SELECT 1 FROM geodata_gridassignment a WHERE a.grid_id = g.id)
        ORDER BY g.code
        """,
        {"start": start, "end": end, "day": day, "buffer": buffer_m},
    )
