"""Export of every layer to GeoJSON, GeoPackage and CSV, and re-import of what was exported."""

import datetime as dt
import json

import pyogrio
import pytest
import shapely
from django.contrib.gis.geos import MultiPolygon, Point, Polygon

from geodata import pii
from geodata.exporting import ExportFormat, layer_export
from geodata.importing.services import layer_import
from geodata.models import Building, Community, District, Facility, Grid, GridAssignment, Household, Person, Street
from geodata.services import register_assign_grids
from tests.factories import (
    ORIGIN,
    BuildingFactory,
    DepartmentFactory,
    FacilityFactory,
    FacilityTypeFactory,
    HouseholdFactory,
    PersonFactory,
    UserFactory,
)
from tests.geodata.import_files import read_csv_rows

X0, Y0 = ORIGIN


@pytest.fixture
def register(district):
    """The tiled district plus one building with a footprint, one with a point only, a facility,
    a household with two residents and an empty household."""
    grid = district["grids"][2]
    grid.responsible_unit = DepartmentFactory(code="ZR01")
    grid.save()
    GridAssignment.objects.create(grid=grid, worker=UserFactory(username="wgy01"))
    footprint = Polygon.from_bbox((X0 + 0.0002, Y0 + 0.0002, X0 + 0.0006, Y0 + 0.0005))
    footprint.srid = 4326
    tower = BuildingFactory(
        code="B01",
        address="一号楼",
        floors=18,
        use="mixed",
        footprint=MultiPolygon(footprint),
        location=footprint.point_on_surface,
    )
    BuildingFactory(code="B02", address="二号楼", location=Point(X0 + 0.003, Y0 + 0.003, srid=4326))
    FacilityFactory(
        code="5001040101000001",
        location=Point(X0 + 0.0011, Y0 + 0.0012, srid=4326),
        facility_type=FacilityTypeFactory(),
        maintainer_department=DepartmentFactory(code="SZ01"),
        status="damaged",
    )
    household = HouseholdFactory(code="H001", building=tower, household_type="rental", head_name="张三")
    PersonFactory(household=household, name="张三", tags=["elderly_alone"])
    PersonFactory(household=household, name="李四")
    HouseholdFactory(code="H002", building=tower)
    register_assign_grids()
    return district


def test_grids_to_geojson_with_codes_areas_workers_and_exact_geometry(register, tmp_path):
    path = tmp_path / "grids.geojson"

    count = layer_export(layer="grids", fmt=ExportFormat.GEOJSON, path=path)

    assert count == 4
    data = json.loads(path.read_text(encoding="utf-8"))
    features = {f["properties"]["code"]: f for f in data["features"]}
    assert sorted(features) == [g.code for g in Grid.objects.order_by("code")]
    south_west = features["500104001001003"]
    grid = Grid.objects.get(code="500104001001003")
    assert south_west["properties"] | {"area_m2": None} == {
        "code": "500104001001003",
        "name": "第3网格",
        "community_code": "500104001001",
        "responsible_unit": "ZR01",
        "valid_from": "2020-01-01",
        "valid_to": "",
        "area_m2": None,
        "workers": "wgy01",
    }
    assert south_west["properties"]["area_m2"] == round(grid.area_m2, 1)
    assert shapely.geometry.shape(south_west["geometry"]).equals_exact(shapely.from_wkt(grid.geom.wkt), 1e-7)


def test_ended_grids_are_left_out_unless_asked_for(register, tmp_path):
    Grid.objects.filter(code="500104001001001").update(valid_to=dt.date(2021, 1, 1))

    current = layer_export(layer="grids", fmt=ExportFormat.CSV, path=tmp_path / "a.csv")
    everything = layer_export(layer="grids", fmt=ExportFormat.CSV, path=tmp_path / "b.csv", include_ended=True)

    assert (current, everything) == (3, 4)
    assert [r["valid_to"] for r in read_csv_rows(tmp_path / "b.csv")] == ["2021-01-01", "", "", ""]


def test_population_export_contains_masked_personal_data_only(register, tmp_path):
    path = tmp_path / "population.csv"

    count = layer_export(layer="population", fmt=ExportFormat.CSV, path=path)

    assert count == 3  # two residents of H001, and one row for the empty household H002
    rows = read_csv_rows(path)
    assert [(r["household_code"], r["name"], r["household_type"]) for r in rows] == [
        ("H001", "张三", "出租户"),
        ("H001", "李四", "出租户"),
        ("H002", "", "常住户"),
    ]
    assert rows[0]["tags"] == "独居老人"
    assert rows[0]["id_number_masked"] == "5001**********" + rows[0]["id_number_masked"][-4:]
    text = path.read_text(encoding="utf-8-sig")
    for household in Household.objects.all():
        for person in household.persons.all():
            assert pii.decrypt(person.id_number_encrypted) not in text
    assert (rows[0]["lon"], rows[0]["lat"]) != ("", "")


@pytest.mark.parametrize("fmt", list(ExportFormat))
def test_buildings_exported_and_imported_again_are_the_same(register, tmp_path, fmt):
    path = tmp_path / f"buildings.{fmt.value}"
    before = {
        b.code: (b.address, b.floors, b.use, b.footprint.wkt if b.footprint else None, b.location.wkt, b.grid_id)
        for b in Building.objects.all()
    }
    assert layer_export(layer="buildings", fmt=fmt, path=path) == 2
    Person.objects.all().delete()  # residents protect their households, households their buildings
    Household.objects.all().delete()
    Building.objects.all().delete()

    report = layer_import(layer="buildings", path=path)

    assert report.ok, report.lines()
    assert report.warnings == ["以下列未使用：grid_code"]
    after = {b.code: b for b in Building.objects.all()}
    assert sorted(after) == sorted(before)
    for code, (address, floors, use, footprint, location, grid_id) in before.items():
        building = after[code]
        assert (building.address, building.floors, building.use, building.grid_id) == (address, floors, use, grid_id)
        if footprint:
            assert building.footprint.equals_exact(MultiPolygon.from_ewkt(footprint), 1e-7)
        else:
            assert building.footprint is None and building.location.equals_exact(Point.from_ewkt(location), 1e-7)


@pytest.mark.parametrize("fmt", list(ExportFormat))
def test_facilities_exported_and_imported_again_are_the_same(register, tmp_path, fmt):
    path = tmp_path / f"facilities.{fmt.value}"
    layer_export(layer="facilities", fmt=fmt, path=path)
    before = list(Facility.objects.values_list("code", "status", "facility_type", "maintainer_department", "grid"))
    location = Facility.objects.get().location
    Facility.objects.all().delete()

    report = layer_import(layer="facilities", path=path)

    assert report.ok, report.lines()
    assert (
        list(Facility.objects.values_list("code", "status", "facility_type", "maintainer_department", "grid")) == before
    )
    assert Facility.objects.get().location.equals_exact(location, 1e-7)


def test_regions_and_grids_exported_rebuild_an_empty_register(register, tmp_path):
    layer_export(layer="regions", fmt=ExportFormat.GPKG, path=tmp_path / "regions.gpkg")
    layer_export(layer="grids", fmt=ExportFormat.GPKG, path=tmp_path / "grids.gpkg")
    grids_before = {g.code: g.geom.wkt for g in Grid.objects.all()}
    Person.objects.all().delete()
    Household.objects.all().delete()
    Building.objects.all().delete()
    Facility.objects.all().delete()
    Grid.objects.all().delete()
    Community.objects.all().delete()
    Street.objects.all().delete()
    District.objects.all().delete()

    regions = layer_import(layer="regions", path=tmp_path / "regions.gpkg")
    grids = layer_import(layer="grids", path=tmp_path / "grids.gpkg")

    assert regions.ok and grids.ok, regions.lines() + grids.lines()
    assert regions.created == {"区县": 1, "街道/镇": 1, "社区/村": 1}
    assert {g.code: g.geom.wkt for g in Grid.objects.all()} == grids_before
    assert Grid.objects.get(code="500104001001003").responsible_unit.code == "ZR01"
    assert list(GridAssignment.objects.values_list("grid__code", "worker__username")) == [("500104001001003", "wgy01")]


def test_export_in_a_metric_crs_and_within_a_community(register, tmp_path):
    path = tmp_path / "facilities.gpkg"

    count = layer_export(layer="facilities", fmt=ExportFormat.GPKG, path=path, srid=4544, within="500104001001")
    none = layer_export(layer="facilities", fmt=ExportFormat.GEOJSON, path=tmp_path / "x.geojson", within="500104002")

    assert (count, none) == (1, 0)
    frame = pyogrio.read_dataframe(path)
    assert frame.crs.to_epsg() == 4544
    assert frame.geometry.iloc[0].x == pytest.approx(
        Facility.objects.get().location.transform(4544, clone=True).x, abs=0.001
    )


def test_an_empty_layer_exports_an_empty_file(db, tmp_path):
    for fmt in ExportFormat:
        assert layer_export(layer="grids", fmt=fmt, path=tmp_path / f"g.{fmt.value}") == 0
    assert json.loads((tmp_path / "g.geojson").read_text())["features"] == []


def test_no_export_format_contains_an_id_number_or_phone_in_clear(register, tmp_path):
    Household.objects.filter(code="H001").update(phone_encrypted=pii.encrypt("13800001111"), phone_masked="138****1111")
    secrets = [pii.decrypt(p.id_number_encrypted) for h in Household.objects.all() for p in h.persons.all()]
    assert len(secrets) == 2
    for fmt in ExportFormat:
        path = tmp_path / f"p.{fmt.value}"
        layer_export(layer="population", fmt=fmt, path=path)
        content = path.read_bytes()
        assert all(secret.encode() not in content for secret in [*secrets, "13800001111"])
        assert b"138****1111" in content
