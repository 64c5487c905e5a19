"""Exports of planners' tables: CSV (Excel-friendly), GeoJSON built by PostGIS, GeoPackage.

Rows reach this module already suppressed (maps.statistics.suppress): a suppressed value
is None, written as "<5" in CSV and as null in GeoJSON / GeoPackage, with the note in the
file's metadata. Geometry is joined in the database from the region table named by
`level` (grid, community or street), by `region_id`.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection

from maps.statistics import SUPPRESS_BELOW

Row = dict[str, Any]
Columns = list[tuple[str, str]]

_TABLES = {"grid": "geodata_grid", "community": "geodata_community", "street": "geodata_street"}
SUPPRESSED_MARK = f"<{SUPPRESS_BELOW}"


def export_csv(*, columns: Columns, rows: list[Row], suppressed: set[str] = frozenset()) -> bytes:  # type: ignore[assignment]
    """CSV with Chinese headers, UTF-8 with BOM; None in a suppressed column is written "<5"."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([header for _, header in columns])
    for row in rows:
        cells = []
        for field, _ in columns:
            value = row.get(field)
            cells.append(SUPPRESSED_MARK if value is None and field in suppressed else ("" if value is None else value))
        writer.writerow(cells)
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def _properties(columns: Columns, rows: list[Row]) -> list[dict[str, Any]]:
    return [{field: row.get(field) for field, _ in columns} for row in rows]


def export_geojson(*, level: str, columns: Columns, rows: list[Row], note: str = "") -> bytes:
    """A FeatureCollection (EPSG:4326, 6 decimals) assembled by PostGIS from the region table.

    Properties are passed in as one JSON array and joined by position, so the database
    writes the geometry and never sends it back to Python.
    """
    table = _TABLES[level]
    properties = _properties(columns, rows)
    ids = [row["region_id"] for row in rows]
    sql = f"""
        SELECT json_build_object(
            'type', 'FeatureCollection',
            'name', %s,
            'features', COALESCE(json_agg(json_build_object(
                'type', 'Feature',
                'geometry', ST_AsGeoJSON(r.geom, 6)::json,
                'properties', p.props
            ) ORDER BY p.ordinality), '[]'::json)
        )::text
        FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS p(props, ordinality)
        JOIN unnest(%s::bigint[]) WITH ORDINALITY AS i(id, ordinality) USING (ordinality)
        JOIN {table} r ON r.id = i.id
    """  # noqa: S608 (the table name comes from a fixed mapping)
    with connection.cursor() as cursor:
        cursor.execute(sql, [note or level, json.dumps(properties, cls=DjangoJSONEncoder), ids])
        (text,) = cursor.fetchone()
    return text.encode("utf-8")


def export_geopackage(*, level: str, columns: Columns, rows: list[Row], layer: str) -> bytes:
    """A GeoPackage with one layer (EPSG:4326), written by pyogrio through geopandas."""
    import geopandas
    import pandas
    import shapely

    table = _TABLES[level]
    ids = [row["region_id"] for row in rows]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, ST_AsBinary(geom) FROM {table} WHERE id = ANY(%s)", [ids])  # noqa: S608
        geometries = {pk: shapely.from_wkb(bytes(wkb)) for pk, wkb in cursor.fetchall()}
    frame = pandas.DataFrame(_properties(columns, rows), columns=[field for field, _ in columns])
    for field in frame.columns:
        if frame[field].dtype == object:
            frame[field] = frame[field].map(lambda v: v if v is None or isinstance(v, str) else float(v))
    data = geopandas.GeoDataFrame(frame, geometry=[geometries[i] for i in ids], crs="EPSG:4326")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "export.gpkg"
        data.to_file(path, layer=layer, driver="GPKG", engine="pyogrio")
        return path.read_bytes()
