"""Import of regions (区划): districts, streets and communities from one file."""

import json

from django.contrib.gis.geos import Point

from geodata.importing.report import ImportMode
from geodata.importing.services import layer_import
from geodata.models import Community, District, Street
from tests.geodata.import_files import X0, Y0, box, geojson

DISTRICT = box(X0, Y0, X0 + 0.01, Y0 + 0.01)
STREET_WEST = box(X0, Y0, X0 + 0.005, Y0 + 0.01)
STREET_EAST = box(X0 + 0.005, Y0, X0 + 0.01, Y0 + 0.01)
COMMUNITY = box(X0, Y0, X0 + 0.005, Y0 + 0.005)


def test_one_file_registers_districts_streets_and_communities_in_any_row_order(db, tmp_path):
    # Given children listed before their parents, with Chinese headers
    path = geojson(
        tmp_path / "regions.geojson",
        [
            ({"区划代码": "500104001001", "名称": "新山村社区"}, COMMUNITY),
            ({"区划代码": "500104002", "名称": "跃进村街道"}, STREET_EAST),
            ({"区划代码": "500104001", "名称": "新山村街道"}, STREET_WEST),
            ({"区划代码": "500104", "名称": "大渡口区"}, DISTRICT),
        ],
    )

    report = layer_import(layer="regions", path=path)

    assert report.ok and not report.refused, report.lines()
    assert report.rows_loaded == 4
    assert report.created == {"区县": 1, "街道/镇": 2, "社区/村": 1}
    assert report.crs == "EPSG:4326 WGS 84"
    district = District.objects.get()
    assert (district.code, district.name, district.geom.geom_type) == ("500104", "大渡口区", "MultiPolygon")
    assert sorted(Street.objects.values_list("code", "district__code")) == [
        ("500104001", "500104"),
        ("500104002", "500104"),
    ]
    community = Community.objects.get()
    assert (community.street.code, community.name) == ("500104001", "新山村社区")
    assert community.geom.covers(Point(X0 + 0.001, Y0 + 0.001, srid=4326))


def test_children_outside_their_parent_overlapping_siblings_and_orphans_refuse_the_file(db, tmp_path):
    path = geojson(
        tmp_path / "regions.geojson",
        [
            ({"code": "500104", "name": "大渡口区"}, DISTRICT),
            ({"code": "500104001", "name": "甲街道"}, STREET_WEST),
            # overlaps 甲街道 by a 0.001° strip and sticks out of the district to the east
            ({"code": "500104002", "name": "乙街道"}, box(X0 + 0.004, Y0, X0 + 0.011, Y0 + 0.01)),
            ({"code": "500104009001", "name": "孤儿社区"}, COMMUNITY),
            ({"code": "5001", "name": "坏代码"}, COMMUNITY),
        ],
    )

    report = layer_import(layer="regions", path=path)

    assert report.refused
    assert District.objects.count() == Street.objects.count() == Community.objects.count() == 0
    problems = {p.row: p.messages for p in report.row_problems}
    assert sorted(problems) == [2, 3, 4, 5]
    assert any(m.startswith("与第 3 行（500104002）重叠") for m in problems[2])
    assert any(m.startswith("与第 2 行（500104001）重叠") for m in problems[3])
    assert any(m.startswith("超出上级区县 500104 的边界") for m in problems[3])
    assert problems[4] == ["上级街道/镇 500104009 未登记，也不在本文件中"]
    assert problems[5] == ["区划代码应为6位（区县）、9位（街道/镇）或12位（社区/村）数字，收到“5001”"]


def test_partial_mode_drops_the_children_of_a_refused_parent(db, tmp_path):
    path = geojson(
        tmp_path / "regions.geojson",
        [
            ({"code": "500104", "name": "大渡口区"}, DISTRICT),
            ({"code": "500104001", "name": ""}, STREET_WEST),  # no name: refused
            ({"code": "500104001001", "name": "新山村社区"}, COMMUNITY),
        ],
    )

    report = layer_import(layer="regions", path=path, mode=ImportMode.PARTIAL)

    assert not report.refused
    assert list(District.objects.values_list("code", flat=True)) == ["500104"]
    assert Street.objects.count() == Community.objects.count() == 0
    assert [(p.row, p.messages) for p in report.row_problems] == [
        (2, ["名称为空"]),
        (3, ["上级街道/镇 500104001（第 2 行）有问题未导入"]),
    ]
    rejected = json.loads(report.problems_file.read_text(encoding="utf-8"))
    assert [f["properties"]["code"] for f in rejected["features"]] == ["500104001", "500104001001"]
    assert rejected["features"][1]["properties"]["问题说明"] == "上级街道/镇 500104001（第 2 行）有问题未导入"


def test_a_region_code_already_registered_is_a_duplicate(db, tmp_path):
    path = geojson(tmp_path / "d.geojson", [({"code": "500104", "name": "大渡口区"}, DISTRICT)])
    assert layer_import(layer="regions", path=path).ok

    again = layer_import(layer="regions", path=path)

    assert again.refused
    assert District.objects.count() == 1
    assert again.row_problems[0].messages[0] == "区划代码 500104 已登记（大渡口区）"
