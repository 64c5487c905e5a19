"""Builders of import files for the import/export tests, and a register without grids.

Files are written at test time (deterministic, no fixtures on disk) in the formats street
offices send: GeoJSON with or without a "crs" member, Shapefiles (zipped, GBK, with or
without .cpg/.prj), GeoPackage, CSV in UTF-8 or GBK.
"""

import csv
import io
import json
import warnings
import zipfile
from pathlib import Path

import geopandas as gpd
import shapely
from django.contrib.gis.geos import MultiPolygon, Polygon
from django.db import connection

from geodata.models import Community, District, FacilityType, Street
from tests.factories import ORIGIN

X0, Y0 = ORIGIN
CELL = 0.002
COMMUNITY_CODE = "500104001001"


def box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    return shapely.box(x0, y0, x1, y1)


def cell(col: int, row: int, size: float = CELL) -> shapely.Polygon:
    """Square (col, row) of a grid of `size` cells from ORIGIN, row 0 at the south."""
    return box(X0 + col * size, Y0 + row * size, X0 + (col + 1) * size, Y0 + (row + 1) * size)


def register_without_grids(cols: int = 2, rows: int = 2) -> Community:
    """District 500104 > street 500104001 > community 500104001001 covering cols x rows cells."""
    extent = Polygon.from_bbox((X0, Y0, X0 + cols * CELL, Y0 + rows * CELL))
    extent.srid = 4326
    district = District.objects.create(code="500104", name="测试区", geom=MultiPolygon(extent))
    street = Street.objects.create(code="500104001", name="测试街道", district=district, geom=MultiPolygon(extent))
    return Community.objects.create(code=COMMUNITY_CODE, name="测试社区", street=street, geom=MultiPolygon(extent))


def facility_types() -> None:
    FacilityType.objects.get_or_create(major_code="01", minor_code="01", major_name="公用设施", minor_name="上水井盖")
    FacilityType.objects.get_or_create(major_code="01", minor_code="02", major_name="公用设施", minor_name="污水井盖")


def metric_area(wkt: str, srid: int = 4544) -> float:
    """Area in m² of a lon/lat WKT geometry, computed by PostGIS (independently of the importer)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT ST_Area(ST_Transform(ST_GeomFromText(%s, 4326), %s))", [wkt, srid])
        return cursor.fetchone()[0]


def geojson(path: Path, features: list[tuple[dict, object]], *, crs: str | None = None, encoding="utf-8") -> Path:
    """A FeatureCollection; `crs` adds the (pre-RFC 7946) crs member that many Chinese tools still write."""
    collection: dict = {"type": "FeatureCollection", "features": []}
    if crs:
        collection["crs"] = {"type": "name", "properties": {"name": crs}}
    for properties, geometry in features:
        collection["features"].append(
            {
                "type": "Feature",
                "properties": properties,
                "geometry": None if geometry is None else shapely.geometry.mapping(geometry),
            }
        )
    path.write_bytes(json.dumps(collection, ensure_ascii=False).encode(encoding))
    return path


def raw_polygon_feature(properties: dict, ring: list[tuple[float, float]]) -> tuple[dict, object]:
    """A polygon that shapely would not build as valid (self-intersecting rings are allowed)."""
    return properties, shapely.Polygon(ring)


def frame(rows: list[dict], geometries: list, crs: int) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(rows, geometry=geometries, crs=4326).to_crs(crs)


def shapefile_zip(
    path: Path,
    data: gpd.GeoDataFrame,
    *,
    encoding: str = "UTF-8",
    keep_cpg: bool = True,
    keep_prj: bool = True,
    name: str = "layer",
) -> Path:
    folder = path.parent / f"{path.stem}-shp"
    folder.mkdir()
    with warnings.catch_warnings():
        # GDAL cuts long UTF-8 field names at 10 bytes, mid-character, and says so in a message
        # pyogrio cannot decode: exactly the kind of file the importer must read.
        warnings.filterwarnings("ignore", "Could not decode error message", RuntimeWarning)
        data.to_file(folder / f"{name}.shp", engine="pyogrio", encoding=encoding)
    with zipfile.ZipFile(path, "w") as archive:
        for member in sorted(folder.iterdir()):
            if (member.suffix == ".cpg" and not keep_cpg) or (member.suffix == ".prj" and not keep_prj):
                continue
            archive.write(member, member.name)
    return path


def csv_file(path: Path, rows: list[dict], *, encoding: str = "utf-8-sig", delimiter: str = ",") -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), delimiter=delimiter)
    writer.writeheader()
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def read_csv_rows(path: Path) -> list[dict]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))
