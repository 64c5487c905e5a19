"""Import of grids (网格): tiling of the community, history periods, attribution of buildings."""

import datetime as dt
import json
import re

import pytest
import shapely
from django.contrib.gis.geos import Point

from geodata.importing.report import ImportMode
from geodata.importing.services import layer_import
from geodata.models import Building, Grid, GridAssignment
from tests.factories import BuildingFactory, DepartmentFactory, UserFactory
from tests.geodata.import_files import (
    CELL,
    COMMUNITY_CODE,
    X0,
    Y0,
    box,
    cell,
    geojson,
    metric_area,
    register_without_grids,
)


def four_cells(**overrides) -> list[tuple[dict, object]]:
    features = []
    for serial, (col, row) in enumerate([(0, 1), (1, 1), (0, 0), (1, 0)], start=1):
        code = f"{COMMUNITY_CODE}{serial:03d}"
        features.append(({"code": code, "name": f"第{serial}网格"}, overrides.get(code, cell(col, row))))
    return features


def area_in(message: str) -> float:
    return float(re.search(r"([0-9.]+) m²", message).group(1))


def test_grids_tiling_the_community_are_registered_and_buildings_attributed(db, tmp_path):
    register_without_grids()
    unit = DepartmentFactory(code="ZR01", name="新山村社区居委会")
    worker = UserFactory(username="wgy01")
    waiting = BuildingFactory(location=Point(X0 + 0.0005, Y0 + 0.0005, srid=4326))  # south-west cell
    features = four_cells()
    features[2][0].update({"责任主体": "新山村社区居委会", "网格员": "wgy01", "启用日期": "2024/3/1"})
    path = geojson(tmp_path / "grids.geojson", features)

    report = layer_import(layer="grids", path=path)

    assert report.ok, report.lines()
    assert report.created == {"网格": 4, "网格员分配": 1}
    assert report.assigned == {"楼栋": 1, "城市部件": 0, "户": 0}
    grids = {g.code: g for g in Grid.objects.all()}
    assert sorted(grids) == [f"{COMMUNITY_CODE}00{i}" for i in (1, 2, 3, 4)]
    south_west = grids[f"{COMMUNITY_CODE}003"]
    assert south_west.responsible_unit == unit
    assert south_west.valid_from == dt.date(2024, 3, 1)
    assert list(GridAssignment.objects.values_list("grid__code", "worker")) == [(south_west.code, worker.pk)]
    assert south_west.area_m2 == pytest.approx(metric_area(cell(0, 0).wkt), rel=2e-3)
    assert Building.objects.get(pk=waiting.pk).grid == south_west


def test_a_blank_name_becomes_the_community_name_and_serial(db, tmp_path):
    register_without_grids(cols=1, rows=1)
    path = geojson(tmp_path / "g.geojson", [({"WGBM": f"{COMMUNITY_CODE}001"}, cell(0, 0))])

    assert layer_import(layer="grids", path=path).ok

    assert Grid.objects.get().name == "测试社区第1网格"


def test_overlapping_grids_are_refused_with_the_area_of_the_overlap(db, tmp_path):
    register_without_grids()
    # Grid 002 reaches 0.0005° west into grid 001.
    wide = box(X0 + CELL - 0.0005, Y0 + CELL, X0 + 2 * CELL, Y0 + 2 * CELL)
    path = geojson(tmp_path / "grids.geojson", four_cells(**{f"{COMMUNITY_CODE}002": wide}))

    report = layer_import(layer="grids", path=path)

    assert report.refused
    assert Grid.objects.count() == 0
    assert [p.row for p in report.row_problems] == [1, 2]
    expected = metric_area(box(X0 + CELL - 0.0005, Y0 + CELL, X0 + CELL, Y0 + 2 * CELL).wkt)
    first, second = report.row_problems[0].messages[0], report.row_problems[1].messages[0]
    assert first.startswith(f"与第 2 行（{COMMUNITY_CODE}002）重叠")
    assert second.startswith(f"与第 1 行（{COMMUNITY_CODE}001）重叠")
    assert area_in(first) == pytest.approx(expected, abs=0.2)


def test_a_gap_between_grids_is_reported_with_its_area_and_refuses_the_file(db, tmp_path):
    register_without_grids()
    # Grid 004 stops 0.0004° short of the eastern edge of the community.
    short = box(X0 + CELL, Y0, X0 + 2 * CELL - 0.0004, Y0 + CELL)
    path = geojson(tmp_path / "grids.geojson", four_cells(**{f"{COMMUNITY_CODE}004": short}))

    report = layer_import(layer="grids", path=path)

    assert report.refused and report.row_problems == []
    assert Grid.objects.count() == 0
    [gap] = report.file_problems
    assert gap.startswith(f"社区 {COMMUNITY_CODE} 测试社区 有未被网格覆盖的缝隙")
    expected = metric_area(box(X0 + 2 * CELL - 0.0004, Y0, X0 + 2 * CELL, Y0 + CELL).wkt)
    assert area_in(gap) == pytest.approx(expected, abs=0.2)


def test_partial_mode_loads_the_good_grids_and_reports_the_gap_they_leave(db, tmp_path):
    register_without_grids()
    bowtie = shapely.Polygon([(X0 + CELL, Y0), (X0 + 2 * CELL, Y0 + CELL), (X0 + 2 * CELL, Y0), (X0 + CELL, Y0 + CELL)])
    path = geojson(tmp_path / "grids.geojson", four_cells(**{f"{COMMUNITY_CODE}004": bowtie}))

    report = layer_import(layer="grids", path=path, mode=ImportMode.PARTIAL)

    assert not report.refused
    assert sorted(Grid.objects.values_list("code", flat=True)) == [f"{COMMUNITY_CODE}00{i}" for i in (1, 2, 3)]
    [problem] = report.row_problems
    assert (problem.row, problem.key) == (4, f"{COMMUNITY_CODE}004")
    assert problem.messages == ["几何无效：自相交，位置 (106.403000, 29.401000)"]
    [gap_warning] = [w for w in report.warnings if "缝隙" in w]
    assert area_in(gap_warning) == pytest.approx(metric_area(cell(1, 0).wkt), abs=0.5)
    rejected = json.loads(report.problems_file.read_text(encoding="utf-8"))
    [feature] = rejected["features"]
    assert feature["properties"]["code"] == f"{COMMUNITY_CODE}004"
    assert feature["properties"]["导入行号"] == 4
    assert feature["properties"]["问题说明"] == problem.messages[0]
    assert feature["geometry"]["type"] == "Polygon"

    # The problems file, corrected, imports as is: its two extra columns are ignored.
    feature["geometry"] = shapely.geometry.mapping(cell(1, 0))
    report.problems_file.write_text(json.dumps(rejected), encoding="utf-8")
    fixed = layer_import(layer="grids", path=report.problems_file)
    assert fixed.ok and fixed.warnings == [], fixed.lines()
    assert Grid.objects.count() == 4


@pytest.mark.parametrize(
    ("geometry", "message"),
    [
        (shapely.LineString([(X0, Y0), (X0 + CELL, Y0 + CELL)]), "几何类型应为面（Polygon），收到 LineString"),
        (
            shapely.MultiPolygon([cell(0, 0), cell(1, 1)]),
            "几何应为单个面，收到由 2 个面组成的多面",
        ),
        (None, "缺少几何"),
    ],
)
def test_a_grid_of_the_wrong_geometry_type_is_refused(db, tmp_path, geometry, message):
    register_without_grids(cols=1, rows=1)
    path = geojson(tmp_path / "g.geojson", [({"code": f"{COMMUNITY_CODE}001"}, geometry)])

    report = layer_import(layer="grids", path=path)

    assert report.refused
    assert report.row_problems[0].messages == [message]
    assert Grid.objects.count() == 0


def test_codes_outside_the_community_unknown_communities_and_duplicates_are_refused(db, tmp_path):
    register_without_grids()
    features = four_cells()
    features[1] = ({"code": "500104001009001"}, cell(1, 1))  # no such community
    features[3] = ({"code": f"{COMMUNITY_CODE}001"}, box(X0 + CELL, Y0, X0 + 2 * CELL + 0.001, Y0 + CELL))
    path = geojson(tmp_path / "grids.geojson", features)

    report = layer_import(layer="grids", path=path)

    assert report.refused
    problems = {p.row: p.messages for p in report.row_problems}
    assert problems[2] == ["所属社区 500104001009（网格编码前12位）未登记，请先导入区划"]
    assert problems[4][0] == f"网格编码“{COMMUNITY_CODE}001”在文件中重复（与第 1 行相同）"
    assert problems[4][1].startswith(f"超出所属社区 {COMMUNITY_CODE} 测试社区 的边界")
    assert Grid.objects.count() == 0


def test_redrawn_grids_may_overlap_grids_that_end_before_they_start(db, tmp_path):
    register_without_grids(cols=1, rows=1)
    old = geojson(
        tmp_path / "old.geojson",
        [({"code": f"{COMMUNITY_CODE}001", "启用日期": "2020-01-01", "停用日期": "2025-01-01"}, cell(0, 0))],
    )
    assert layer_import(layer="grids", path=old).ok
    new = geojson(tmp_path / "new.geojson", [({"code": f"{COMMUNITY_CODE}002", "启用日期": "2025-01-01"}, cell(0, 0))])
    clash = geojson(
        tmp_path / "clash.geojson", [({"code": f"{COMMUNITY_CODE}003", "启用日期": "2024-12-31"}, cell(0, 0))]
    )

    assert layer_import(layer="grids", path=new).ok
    refused = layer_import(layer="grids", path=clash)

    assert refused.refused
    assert refused.row_problems[0].messages[0].startswith(f"与已登记的网格 {COMMUNITY_CODE}001 测试社区第1网格重叠")
    assert sorted(Grid.objects.values_list("code", flat=True)) == [f"{COMMUNITY_CODE}001", f"{COMMUNITY_CODE}002"]


def test_a_large_tiling_with_computed_coordinates_has_no_false_gaps_or_overlaps(db, tmp_path):
    # 3 x 12 grids whose edges are computed two ways (x0 + 12 * size versus x0 + 11 * size + size):
    # they differ in the last bit, which exact overlays turn into needle slivers along every edge.
    size, rows, cols = 0.002, 12, 3
    register_without_grids(cols=cols, rows=rows)
    features = []
    for serial, (row, col) in enumerate(((r, c) for r in range(rows) for c in range(cols)), start=1):
        x, y = X0 + col * size, Y0 + (rows - 1 - row) * size
        features.append(({"code": f"{COMMUNITY_CODE}{serial:03d}"}, box(x, y, x + size, y + size)))
    path = geojson(tmp_path / "grids.geojson", features)

    report = layer_import(layer="grids", path=path, tolerance_m2=0.01)

    assert report.ok, report.lines()
    assert Grid.objects.count() == 36


@pytest.mark.parametrize(("tolerance", "refused"), [(1.0, False), (0.1, True)])
def test_the_tolerance_decides_whether_a_small_gap_counts(db, tmp_path, tolerance, refused):
    register_without_grids(cols=1, rows=1)
    # 0.00000002 degree short of the northern edge: about 2 mm x 194 m, some 0.4 m².
    path = geojson(
        tmp_path / "g.geojson", [({"code": f"{COMMUNITY_CODE}001"}, box(X0, Y0, X0 + CELL, Y0 + CELL - 2e-8))]
    )
    expected = metric_area(box(X0, Y0 + CELL - 2e-8, X0 + CELL, Y0 + CELL).wkt)
    assert 0.1 < expected < 1.0

    report = layer_import(layer="grids", path=path, tolerance_m2=tolerance)

    assert report.refused is refused
    assert Grid.objects.count() == (0 if refused else 1)
    if refused:
        assert area_in(report.file_problems[0]) == pytest.approx(expected, abs=0.05)


def test_partial_mode_accounts_for_every_row(db, tmp_path):
    register_without_grids()
    features = four_cells()
    features[1] = ({"code": "bad"}, features[1][1])
    path = geojson(tmp_path / "grids.geojson", features)

    report = layer_import(layer="grids", path=path, mode=ImportMode.PARTIAL)

    assert report.rows_read == 4
    assert report.rows_loaded + report.rows_with_problems == report.rows_read
    assert Grid.objects.count() == report.rows_loaded == 3
    assert len(json.loads(report.problems_file.read_text())["features"]) == report.rows_with_problems == 1


def test_geometries_that_cannot_even_be_built_are_problems_of_their_row(db, tmp_path):
    register_without_grids(cols=1, rows=1)
    ring = [[X0, Y0], [X0 + CELL, Y0], [X0 + CELL, Y0 + CELL], [X0, Y0 + CELL]]
    collection = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"code": code}, "geometry": {"type": "Polygon", "coordinates": [points]}}
            for code, points in [
                (f"{COMMUNITY_CODE}001", [*ring, ring[0]]),
                (f"{COMMUNITY_CODE}002", ring),  # not closed
                (f"{COMMUNITY_CODE}003", [*ring[:2], ring[0]]),  # closed, but only two distinct points
            ]
        ],
    }
    path = tmp_path / "g.geojson"
    path.write_text(json.dumps(collection))

    report = layer_import(layer="grids", path=path, mode=ImportMode.PARTIAL)

    assert [(p.row, p.messages) for p in report.row_problems] == [
        (2, ["几何无法解析：环未闭合（首尾坐标不同）"]),
        (3, ["几何无效：顶点过少，位置 (106.400000, 29.400000)"]),
    ]
    assert list(Grid.objects.values_list("code", flat=True)) == [f"{COMMUNITY_CODE}001"]
