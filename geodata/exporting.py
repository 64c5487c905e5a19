"""layer_export: any layer of the register to GeoJSON, GeoPackage or CSV.

Column names are the ones the importers read, so an exported file can be edited and imported
again (into another installation, or after deleting the rows). Choice fields are written as
their Chinese labels, which the importers accept too. Personal data leaves only masked: the
population export has no ID number or phone in clear, and so cannot be re-imported as is.

Geometries are read from PostGIS as WKB and written by GDAL (pyogrio); CSV gets lon/lat for
point layers and WKT for polygon layers. Output is in the storage SRID unless `srid` is given.
"""

import enum
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.gis.db.models import GeometryField
from django.contrib.gis.db.models.functions import AsWKB
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Coalesce

from geodata.models import (
    Building,
    Community,
    District,
    Facility,
    Grid,
    GridAssignment,
    Household,
    Person,
    PersonTag,
    Street,
)
from geodata.selectors import grids_valid_on


class ExportFormat(enum.StrEnum):
    GEOJSON = "geojson"
    GPKG = "gpkg"
    CSV = "csv"


EXPORT_LAYERS = {
    "regions": "区划",
    "grids": "网格",
    "buildings": "楼栋",
    "population": "户与人口",
    "facilities": "城市部件",
}
SUFFIXES = {ExportFormat.GEOJSON: ".geojson", ExportFormat.GPKG: ".gpkg", ExportFormat.CSV: ".csv"}
_POINT_LAYERS = {"facilities", "population"}


def _rows(queryset: QuerySet, fields: dict[str, Any], geometry: Any) -> tuple[list[dict], list]:
    rows = list(queryset.annotate(_wkb=AsWKB(geometry), **fields).values(*fields, "_wkb"))
    shapes = [shapely.from_wkb(bytes(row.pop("_wkb"))) if row["_wkb"] is not None else None for row in rows]
    return rows, shapes


def _labels(choices) -> dict[str, str]:
    return {str(code): str(label) for code, label in choices.choices}


def _regions(within: str | None) -> tuple[list[dict], list]:
    rows, shapes = [], []
    for model, level, parent in (
        (District, "区县", None),
        (Street, "街道/镇", "district__code"),
        (Community, "社区/村", "street__code"),
    ):
        queryset = model.objects.order_by("code")
        if within:
            queryset = queryset.filter(Q(code__startswith=within) | Q(code__in=_prefixes(within)))
        fields = {"region_code": F("code"), "region_name": F("name")}
        if parent:
            fields["parent"] = F(parent)
        found, found_shapes = _rows(queryset, fields, "geom")
        rows += [
            {"code": r["region_code"], "name": r["region_name"], "level": level, "parent_code": r.get("parent", "")}
            for r in found
        ]
        shapes += found_shapes
    return rows, shapes


def _prefixes(code: str) -> list[str]:
    """The codes of the regions that contain region `code` (its district and street)."""
    return [code[:length] for length in (6, 9) if len(code) > length]


def _grids(within: str | None, include_ended: bool) -> tuple[list[dict], list]:
    queryset = (Grid.objects.all() if include_ended else grids_valid_on()).order_by("code")
    if within:
        queryset = queryset.filter(code__startswith=within)
    rows, shapes = _rows(
        queryset,
        {
            "grid_code": F("code"),
            "grid_name": F("name"),
            "community_code": F("community__code"),
            "unit_code": F("responsible_unit__code"),
            "start": F("valid_from"),
            "end": F("valid_to"),
            "area": F("area_m2"),
        },
        "geom",
    )
    workers: dict[str, list[str]] = {}
    for code, username in (
        GridAssignment.objects.filter(grid__in=queryset)
        .order_by("grid__code", "worker__username")
        .values_list("grid__code", f"worker__{get_user_model().USERNAME_FIELD}")
    ):
        workers.setdefault(code, []).append(username)
    return [
        {
            "code": r["grid_code"],
            "name": r["grid_name"],
            "community_code": r["community_code"],
            "responsible_unit": r["unit_code"] or "",
            "valid_from": r["start"].isoformat(),
            "valid_to": r["end"].isoformat() if r["end"] else "",
            "area_m2": round(r["area"], 1),
            "workers": ",".join(workers.get(r["grid_code"], [])),
        }
        for r in rows
    ], shapes


def _buildings(within: str | None) -> tuple[list[dict], list]:
    queryset = Building.objects.order_by("code")
    if within:
        queryset = queryset.filter(grid__code__startswith=within)
    uses = _labels(Building.Use)
    rows, shapes = _rows(
        queryset,
        {
            "building_code": F("code"),
            "building_address": F("address"),
            "building_floors": F("floors"),
            "building_use": F("use"),
            "grid_code": F("grid__code"),
        },
        Coalesce("footprint", "location", output_field=GeometryField(srid=settings.STORAGE_SRID)),
    )
    return [
        {
            "code": r["building_code"],
            "address": r["building_address"],
            "floors": r["building_floors"],
            "use": uses[r["building_use"]],
            "grid_code": r["grid_code"] or "",
        }
        for r in rows
    ], shapes


def _population(within: str | None) -> tuple[list[dict], list]:
    types, sexes, tags = _labels(Household.Type), _labels(Person.Sex), _labels(PersonTag)
    households = Household.objects.order_by("code")
    if within:
        households = households.filter(grid__code__startswith=within)
    household_rows, household_shapes = _rows(
        households,
        {
            "household_id": F("id"),
            "household_code": F("code"),
            "building_code": F("building__code"),
            "household_unit": F("unit"),
            "household_room": F("room"),
            "type": F("household_type"),
            "head": F("head_name"),
            "phone": F("phone_masked"),
            "grid_code": F("grid__code"),
        },
        "building__location",
    )
    persons: dict[int, list[dict[str, Any]]] = {}
    people = Person.objects.all()
    if within:
        people = people.filter(household__grid__code__startswith=within)
    for person in people.order_by("household_id", "id").values(
        "household_id", "name", "sex", "birth_date", "ethnicity", "id_number_masked", "phone_masked", "tags"
    ):
        persons.setdefault(person["household_id"], []).append(dict(person))
    rows, shapes = [], []
    for household, shape in zip(household_rows, household_shapes, strict=True):
        common = {
            "household_code": household["household_code"],
            "building_code": household["building_code"],
            "unit": household["household_unit"],
            "room": household["household_room"],
            "household_type": types[household["type"]],
            "head_name": household["head"],
            "household_phone_masked": household["phone"],
            "grid_code": household["grid_code"] or "",
        }
        members: list[dict[str, Any] | None] = [*persons.get(household["household_id"], [])] or [None]
        for member in members:  # an empty household gets one row
            rows.append(
                common
                | {
                    "name": member["name"] if member else "",
                    "sex": sexes[member["sex"]] if member else "",
                    "birth_date": member["birth_date"].isoformat() if member else "",
                    "ethnicity": member["ethnicity"] if member else "",
                    "id_number_masked": member["id_number_masked"] if member else "",
                    "phone_masked": member["phone_masked"] if member else "",
                    "tags": ",".join(tags[t] for t in member["tags"]) if member else "",
                }
            )
            shapes.append(shape)
    return rows, shapes


def _facilities(within: str | None) -> tuple[list[dict], list]:
    queryset = Facility.objects.order_by("code")
    if within:
        queryset = queryset.filter(grid__code__startswith=within)
    statuses = _labels(Facility.Status)
    rows, shapes = _rows(
        queryset,
        {
            "facility_code": F("code"),
            "major": F("facility_type__major_code"),
            "minor": F("facility_type__minor_code"),
            "minor_name": F("facility_type__minor_name"),
            "facility_name": F("name"),
            "facility_status": F("status"),
            "facility_address": F("address"),
            "owner": F("owner_department__code"),
            "manager": F("manager_department__code"),
            "maintainer": F("maintainer_department__code"),
            "grid_code": F("grid__code"),
        },
        "location",
    )
    return [
        {
            "code": r["facility_code"],
            "major_code": r["major"],
            "minor_code": r["minor"],
            "category": r["minor_name"],
            "name": r["facility_name"],
            "status": statuses[r["facility_status"]],
            "address": r["facility_address"],
            "owner_department": r["owner"] or "",
            "manager_department": r["manager"] or "",
            "maintainer_department": r["maintainer"] or "",
            "grid_code": r["grid_code"] or "",
        }
        for r in rows
    ], shapes


def layer_rows(*, layer: str, within: str | None = None, include_ended: bool = False) -> gpd.GeoDataFrame:
    """The layer as a GeoDataFrame in the storage SRID. `within`: a region or grid code prefix
    (a street's 9 digits, a community's 12); `include_ended`: grids whose validity has ended too."""
    if layer == "regions":
        rows, shapes = _regions(within)
    elif layer == "grids":
        rows, shapes = _grids(within, include_ended)
    elif layer == "buildings":
        rows, shapes = _buildings(within)
    elif layer == "population":
        rows, shapes = _population(within)
    elif layer == "facilities":
        rows, shapes = _facilities(within)
    else:
        raise ValueError(f"unknown layer {layer!r}")
    return gpd.GeoDataFrame(pd.DataFrame(rows), geometry=gpd.GeoSeries(shapes), crs=settings.STORAGE_SRID)


def layer_export(
    *,
    layer: str,
    fmt: ExportFormat,
    path: Path,
    within: str | None = None,
    srid: int | None = None,
    include_ended: bool = False,
) -> int:
    """Write `layer` to `path` in `fmt`; return the number of rows (features) written."""
    data = layer_rows(layer=layer, within=within, include_ended=include_ended)
    if srid and srid != settings.STORAGE_SRID:
        data = data.to_crs(srid)
    geographic = data.crs.is_geographic
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt is ExportFormat.CSV:
        table = pd.DataFrame(data.drop(columns="geometry"))
        if layer in _POINT_LAYERS:
            names = ("lon", "lat") if geographic else ("x", "y")
            digits = 7 if geographic else 3
            table[names[0]] = [round(g.x, digits) if g is not None else "" for g in data.geometry]
            table[names[1]] = [round(g.y, digits) if g is not None else "" for g in data.geometry]
        else:
            table["wkt"] = [g.wkt if g is not None else "" for g in data.geometry]
        table.to_csv(path, index=False, encoding="utf-8-sig")  # with BOM: Excel and WPS read it as UTF-8
        return len(table)
    if fmt is ExportFormat.GEOJSON:
        options = {"COORDINATE_PRECISION": 7 if geographic else 3, "WRITE_NAME": "NO"}
        data.to_file(path, driver="GeoJSON", engine="pyogrio", layer_options=options)
    else:
        data.to_file(path, driver="GPKG", engine="pyogrio", layer=layer)
    return len(data)
