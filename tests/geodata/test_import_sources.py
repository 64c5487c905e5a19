"""Import sources: formats, encodings and coordinate systems, on the buildings and facilities layers."""

import zipfile

import pytest
import shapely
from django.contrib.gis.geos import Point

from geodata.importing.report import ImportMode
from geodata.importing.services import layer_import
from geodata.models import Building, Facility
from tests.factories import DepartmentFactory
from tests.geodata.import_files import (
    X0,
    Y0,
    box,
    csv_file,
    facility_types,
    frame,
    geojson,
    read_csv_rows,
    shapefile_zip,
)

FOOTPRINT = box(X0 + 0.0002, Y0 + 0.0002, X0 + 0.0006, Y0 + 0.0005)  # in the south-west grid (003)
POINT_NE = shapely.Point(X0 + 0.0031, Y0 + 0.0032)  # in the north-east grid (002)
FOOTPRINT_NE = box(X0 + 0.0030, Y0 + 0.0031, X0 + 0.0032, Y0 + 0.0033)


def buildings_frame(crs: int, *, second=POINT_NE):
    """Two buildings: a footprint in grid 003 and (by default) a bare point in grid 002.
    Shapefiles hold one geometry type, so they get a second footprint instead."""
    rows = [
        {"楼栋编码": "B0001", "地址": "新山村街道1号", "层数": 6, "用途": "住宅"},
        {"楼栋编码": "B0002", "地址": "跃进村路8号附2号", "层数": 18, "用途": "商住"},
    ]
    return frame(rows, [FOOTPRINT, second], crs)


def assert_two_buildings_loaded(report, *, tolerance=1e-7, second=POINT_NE):
    assert report.ok, report.lines()
    one, two = Building.objects.order_by("code")
    assert (one.code, one.address, one.floors, one.use) == ("B0001", "新山村街道1号", 6, "residential")
    assert (two.code, two.address, two.floors, two.use) == ("B0002", "跃进村路8号附2号", 18, "mixed")
    assert same_shape(one.footprint, shapely.MultiPolygon([FOOTPRINT]), tolerance)
    assert one.footprint.covers(one.location)
    if second is POINT_NE:
        assert two.footprint is None
        assert two.location.equals_exact(Point(POINT_NE.x, POINT_NE.y, srid=4326), tolerance)
    else:
        assert same_shape(two.footprint, shapely.MultiPolygon([second]), tolerance)
    # Grid attribution was done set-based after the COPY (tiled_district: 003 south-west, 002 north-east)
    assert (one.grid.code, two.grid.code) == ("500104001001003", "500104001001002")
    assert report.assigned["楼栋"] == 2


def same_shape(stored, expected, tolerance) -> bool:
    """The same vertices within `tolerance`, whatever the ring orientation and start vertex
    (Shapefiles store outer rings clockwise)."""
    mine = shapely.from_wkt(stored.wkt)
    return (
        shapely.get_num_coordinates(mine) == shapely.get_num_coordinates(expected)
        and shapely.hausdorff_distance(mine, expected) <= tolerance
    )


def test_zipped_shapefile_in_gbk_without_cpg_in_gauss_kruger_is_read_correctly(district, tmp_path):
    # The worst common case: written by a Chinese desktop GIS in GBK, the .cpg lost on the
    # way, coordinates in CGCS2000 3-degree Gauss-Krüger CM 105E with a .prj.
    data = buildings_frame(4544, second=FOOTPRINT_NE)
    path = shapefile_zip(tmp_path / "楼栋.zip", data, encoding="GBK", keep_cpg=False)

    report = layer_import(layer="buildings", path=path)

    assert_two_buildings_loaded(report, tolerance=1e-8, second=FOOTPRINT_NE)
    assert report.encoding == "GBK/GB18030"
    assert report.crs == "EPSG:4544 CGCS2000 / 3-degree Gauss-Kruger CM 105E"
    assert report.source_format == "Shapefile（zip）"


@pytest.mark.parametrize(
    ("epsg", "name"),
    [(4523, "CGCS2000 / 3-degree Gauss-Kruger zone 35"), (4496, "CGCS2000 / Gauss-Kruger zone 18")],
)
def test_gauss_kruger_with_zone_prefix_and_no_prj_is_recognised(district, tmp_path, epsg, name):
    data = buildings_frame(epsg, second=FOOTPRINT_NE)  # 3-degree zone 35 / 6-degree zone 18
    path = shapefile_zip(tmp_path / "b.zip", data, keep_prj=False)

    report = layer_import(layer="buildings", path=path)

    assert_two_buildings_loaded(report, tolerance=1e-8, second=FOOTPRINT_NE)
    assert report.crs == f"EPSG:{epsg} {name}"
    assert f"文件未声明坐标系，根据坐标范围按 EPSG:{epsg} {name} 处理，请核对" in report.warnings


def test_surveyors_axis_order_is_recognised_in_a_geojson_without_crs(district, tmp_path):
    data = buildings_frame(4523)
    swapped = shapely.transform(data.geometry.values, lambda xy: xy[:, ::-1])
    path = geojson(
        tmp_path / "b.geojson",
        [
            ({k: str(v) for k, v in row.items()}, g)
            for row, g in zip(data.drop(columns="geometry").to_dict("records"), swapped, strict=True)
        ],
    )

    report = layer_import(layer="buildings", path=path)

    assert_two_buildings_loaded(report, tolerance=1e-8)
    assert report.crs == "EPSG:4523 CGCS2000 / 3-degree Gauss-Kruger zone 35（X/Y 轴互换）"
    assert any(w.startswith("文件声明为地理坐标系 WGS 84，但坐标不是经纬度") for w in report.warnings)


def test_geopackage_in_cgcs2000_geographic(district, tmp_path):
    path = tmp_path / "b.gpkg"
    buildings_frame(4490).to_file(path, layer="buildings", engine="pyogrio")
    buildings_frame(4490).iloc[:0].to_file(path, layer="other", engine="pyogrio")

    report = layer_import(layer="buildings", path=path)

    assert_two_buildings_loaded(report)
    assert report.crs == "EPSG:4490 China Geodetic Coordinate System 2000"


def test_geojson_in_gbk_with_a_crs_member(district, tmp_path):
    data = buildings_frame(4544)
    features = [
        ({k: str(v) for k, v in row.items()}, g)
        for row, g in zip(data.drop(columns="geometry").to_dict("records"), data.geometry, strict=True)
    ]
    path = geojson(tmp_path / "b.geojson", features, crs="urn:ogc:def:crs:EPSG::4544", encoding="gbk")

    report = layer_import(layer="buildings", path=path)

    assert_two_buildings_loaded(report, tolerance=1e-8)
    assert report.encoding == "GBK/GB18030"
    assert "文件编码为 GBK/GB18030（GeoJSON 应为 UTF-8），已自动转换" in report.warnings


@pytest.mark.parametrize("encoding", ["gbk", "utf-8-sig", "utf-8"])
def test_csv_with_lon_lat_columns_in_any_common_encoding(district, tmp_path, encoding):
    facility_types()
    DepartmentFactory(code="SZ01", name="区市政设施管理所")
    rows = [
        {
            "部件编码": "5001040101000001",
            "经度": "106.4005",
            "纬度": "29.4005",
            "状态": "完好",
            "养护单位": "区市政设施管理所",
        },
        {"部件编码": "5001040102000001", "经度": "106.4031", "纬度": "29.4032", "状态": "破损", "养护单位": "SZ01"},
    ]
    path = csv_file(tmp_path / "部件.csv", rows, encoding=encoding)

    report = layer_import(layer="facilities", path=path)

    assert report.ok, report.lines()
    assert report.crs == "EPSG:4490 China Geodetic Coordinate System 2000"
    first, second = Facility.objects.order_by("code").select_related("facility_type", "grid", "maintainer_department")
    assert (first.facility_type.minor_name, first.status, first.grid.code) == ("上水井盖", "intact", "500104001001003")
    assert (second.facility_type.minor_name, second.status, second.grid.code) == (
        "污水井盖",
        "damaged",
        "500104001001002",
    )
    assert first.maintainer_department.code == second.maintainer_department.code == "SZ01"
    assert first.location.equals_exact(Point(106.4005, 29.4005, srid=4326), 1e-9)


def test_tab_separated_text_and_excel_files_are_read(district, tmp_path):
    facility_types()
    rows = [{"code": "5001040101000001", "lon": "106.4005", "lat": "29.4005"}]
    tsv = csv_file(tmp_path / "f.txt", rows, delimiter="\t")
    assert layer_import(layer="facilities", path=tsv).ok
    import pandas as pd

    xlsx = tmp_path / "f.xlsx"
    pd.DataFrame([{"code": "5001040101000002", "lon": 106.4006, "lat": 29.4006}]).to_excel(xlsx, index=False)
    assert layer_import(layer="facilities", path=xlsx).ok
    assert list(Facility.objects.order_by("code").values_list("code", flat=True)) == [
        "5001040101000001",
        "5001040101000002",
    ]


def test_points_outside_the_jurisdiction_are_refused(district, tmp_path):
    facility_types()
    rows = [
        {"code": "5001040101000001", "lon": "106.4005", "lat": "29.4005"},
        {"code": "5001040101000002", "lon": "106.5000", "lat": "29.4005"},  # 9 km east
        {"code": "5001040101000003", "lon": "29.4005", "lat": "106.4005"},  # columns swapped by hand
    ]
    path = csv_file(tmp_path / "f.csv", rows)

    report = layer_import(layer="facilities", path=path)

    assert report.refused
    assert Facility.objects.count() == 0
    assert [(p.row, p.messages) for p in report.row_problems] == [
        (3, ["坐标 (106.500000, 29.400500) 不在辖区内，请核对坐标或坐标系"]),
        (4, ["坐标 (29.400500, 106.400500) 不在辖区内，请核对坐标或坐标系"]),
    ]


def test_unknown_category_status_department_and_wrong_point_type_are_refused_row_by_row(district, tmp_path):
    facility_types()
    features = [
        ({"code": "5001040199000001"}, shapely.Point(X0 + 0.001, Y0 + 0.001)),
        ({"code": "5001040101000002", "状态": "坏了"}, shapely.Point(X0 + 0.001, Y0 + 0.001)),
        ({"code": "5001040101000003", "主管部门": "不存在的局"}, shapely.Point(X0 + 0.001, Y0 + 0.001)),
        ({"code": "5001040101000004"}, box(X0, Y0, X0 + 0.001, Y0 + 0.001)),
        ({"code": "5001050101000005"}, shapely.Point(X0 + 0.001, Y0 + 0.001)),
        ({"code": "5001040101000006", "小类代码": "02"}, shapely.Point(X0 + 0.001, Y0 + 0.001)),
        ({"code": "5001040101000007"}, shapely.Point(X0 + 0.001, Y0 + 0.001)),
    ]
    path = geojson(tmp_path / "f.geojson", features)

    strict = layer_import(layer="facilities", path=path)

    assert strict.refused and Facility.objects.count() == 0
    assert [(p.row, p.messages) for p in strict.row_problems] == [
        (1, ["未知部件类别：大类 01 小类 99（部件编码第7-10位），请对照部件类别表"]),
        (2, ["状态“坏了”无法识别，可用：完好、破损、丢失、占用、废弃"]),
        (3, ["主管部门“不存在的局”未登记（请先在“部门/单位”中添加，或填写部门编码）"]),
        (4, ["几何类型应为点（Point），收到 Polygon"]),
        (5, ["部件编码前6位 500105 不是已登记的区县代码"]),
        (6, ["小类代码 02 与部件编码中的 01 不一致"]),
    ]

    partial = layer_import(layer="facilities", path=path, mode=ImportMode.PARTIAL)

    assert partial.rows_loaded == 1
    assert list(Facility.objects.values_list("code", flat=True)) == ["5001040101000007"]


def test_building_rows_with_duplicate_codes_bad_floors_and_unknown_use(district, tmp_path):
    Building.objects.create(code="B0009", address="已有楼栋", location=Point(X0 + 0.001, Y0 + 0.001, srid=4326))
    rows = [
        {"code": "B0001", "address": "一号楼", "floors": "六", "use": "住宅", "lon": "106.4005", "lat": "29.4005"},
        {"code": "B0002", "address": "二号楼", "floors": "6", "use": "宿舍", "lon": "106.4005", "lat": "29.4005"},
        {"code": "B0002", "address": "", "floors": "", "use": "", "lon": "106.4005", "lat": "29.4005"},
        {"code": "B0009", "address": "九号楼", "floors": "0", "use": "", "lon": "abc", "lat": "29.4005"},
    ]
    path = csv_file(tmp_path / "b.csv", rows)

    report = layer_import(layer="buildings", path=path)

    assert report.refused
    assert [(p.row, p.messages) for p in report.row_problems] == [
        (2, ["层数应为正整数，收到“六”"]),
        (3, ["用途“宿舍”无法识别，可用：住宅、商业、商住、办公、公共服务、工业、其他"]),
        (4, ["地址为空", "楼栋编码“B0002”在文件中重复（与第 3 行相同）"]),
        (5, ["坐标无效：lon=“abc”，lat=“29.4005”", "楼栋编码 B0009 已登记（已有楼栋）", "层数应为正整数，收到“0”"]),
    ]
    assert list(Building.objects.values_list("code", flat=True)) == ["B0009"]
    rejected = read_csv_rows(report.problems_file)
    assert [(r["导入行号"], r["code"], r["lon"]) for r in rejected] == [
        ("2", "B0001", "106.4005"),
        ("3", "B0002", "106.4005"),
        ("4", "B0002", "106.4005"),
        ("5", "B0009", "abc"),
    ]
    assert (
        rejected[3]["问题说明"]
        == "坐标无效：lon=“abc”，lat=“29.4005”；楼栋编码 B0009 已登记（已有楼栋）；层数应为正整数，收到“0”"
    )


def test_a_file_missing_a_required_column_is_refused_even_in_partial_mode(district, tmp_path):
    path = csv_file(tmp_path / "b.csv", [{"编码": "B1", "楼层": "3", "lon": "106.4005", "lat": "29.4005"}])

    report = layer_import(layer="buildings", path=path, mode=ImportMode.PARTIAL)

    assert report.refused and Building.objects.count() == 0
    assert report.file_problems == [
        "缺少必需的列：地址（address）。可用的列：楼栋编码（code）、地址（address）、层数（floors）、用途（use）"
    ]
    assert report.warnings == ["以下列未使用：楼层"]


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("b.kml", b"<kml/>", "不支持的文件格式“.kml”"),
        ("b.zip", b"not a zip", "压缩包已损坏或不是 zip 格式"),
        ("b.csv", b"code,address\nB1,x\n", "表格中没有坐标列"),
        ("b.csv", "楼栋编码,地址\n".encode() + b"\xff\xfe\xfa,\x81\n", "无法识别文件编码"),
    ],
)
def test_unreadable_files_are_refused_with_one_clear_sentence(district, tmp_path, name, content, problem):
    path = tmp_path / name
    path.write_bytes(content)

    report = layer_import(layer="buildings", path=path, mode=ImportMode.PARTIAL)

    assert report.refused
    assert report.file_problems[0].startswith(problem)
    assert Building.objects.count() == 0


def test_coordinates_that_are_neither_degrees_nor_gauss_kruger_are_refused(district, tmp_path):
    path = csv_file(tmp_path / "b.csv", [{"code": "B1", "address": "x", "x": "123456789", "y": "5"}])

    report = layer_import(layer="buildings", path=path)

    assert report.refused
    assert report.file_problems[0].startswith("无法判断坐标系")


def test_the_user_can_name_the_source_crs(district, tmp_path):
    data = buildings_frame(4544)
    rows = [
        {"code": f"B{i}", "address": "x", "x": f"{g.x:.3f}", "y": f"{g.y:.3f}"}
        for i, g in enumerate(data.geometry.representative_point())
    ]
    path = csv_file(tmp_path / "b.csv", rows)

    report = layer_import(layer="buildings", path=path, srs="EPSG:4544")

    assert report.ok, report.lines()
    assert report.crs == "EPSG:4544 CGCS2000 / 3-degree Gauss-Kruger CM 105E"
    assert report.warnings == []


def test_a_zip_with_several_layers_needs_the_layer_named(district, tmp_path):
    path = shapefile_zip(tmp_path / "b.zip", buildings_frame(4544, second=FOOTPRINT_NE), name="buildings_a")
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("notes/readme.csv", "a,b\n1,2\n")

    refused = layer_import(layer="buildings", path=path)
    chosen = layer_import(layer="buildings", path=path, source_layer="buildings_a.shp")

    assert refused.file_problems == ["文件中有多个数据文件（buildings_a.shp、notes/readme.csv），请指定要导入哪一个"]
    assert chosen.ok and Building.objects.count() == 2


def test_a_zip_with_unsafe_paths_is_refused(district, tmp_path):
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("../../etc/evil.csv", "code,address,lon,lat\n")

    report = layer_import(layer="buildings", path=path)

    assert report.file_problems == ["压缩包中的路径不安全：../../etc/evil.csv"]
    assert not (tmp_path.parent.parent / "etc" / "evil.csv").exists()
