"""The import_layer and export_layer management commands."""

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from geodata.importing.services import LAYERS
from geodata.models import Facility, Grid
from tests.geodata.import_files import COMMUNITY_CODE, cell, csv_file, facility_types, geojson, register_without_grids


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_import_layer_loads_a_good_file_and_prints_the_report(db, tmp_path):
    register_without_grids(cols=1, rows=1)
    path = geojson(tmp_path / "grids.geojson", [({"code": f"{COMMUNITY_CODE}001"}, cell(0, 0))])

    out = run("import_layer", "grids", str(path))

    assert out.splitlines()[0] == "网格导入完成：共 1 行，导入 1 行，拒绝 0 行"
    assert "  格式：GeoJSON；编码：UTF-8；坐标系：EPSG:4326 WGS 84；方式：整体导入" in out
    assert Grid.objects.count() == 1


def test_import_layer_refuses_a_bad_file_with_an_error_exit_and_writes_the_problem_rows(db, tmp_path):
    register_without_grids(cols=1, rows=1)
    facility_types()
    path = csv_file(
        tmp_path / "f.csv",
        [
            {"code": "5001040101000001", "lon": "106.4005", "lat": "29.4005"},
            {"code": "5001040199000002", "lon": "106.4005", "lat": "29.4005"},
        ],
    )
    out = io.StringIO()

    with pytest.raises(CommandError, match="城市部件导入被拒绝，未写入任何数据"):
        call_command("import_layer", "facilities", str(path), stdout=out)

    assert Facility.objects.count() == 0
    assert (
        "  第 3 行［5001040199000002］：未知部件类别：大类 01 小类 99（部件编码第7-10位），请对照部件类别表"
        in out.getvalue()
    )
    assert (tmp_path / "f.problems.csv").read_text(encoding="utf-8-sig").splitlines()[
        0
    ] == "导入行号,问题说明,code,lon,lat"


def test_import_layer_partial_and_check_modes(db, tmp_path):
    register_without_grids(cols=1, rows=1)
    facility_types()
    rows = [
        {"code": "5001040101000001", "lon": "106.4005", "lat": "29.4005"},
        {"code": "5001040101000001", "lon": "106.4005", "lat": "29.4005"},
    ]
    path = csv_file(tmp_path / "f.csv", rows)
    problems = tmp_path / "out" / "rejected.csv"

    with pytest.raises(CommandError, match="城市部件检查发现问题"):
        call_command("import_layer", "facilities", str(path), "--check", stdout=io.StringIO())
    assert Facility.objects.count() == 0

    out = run("import_layer", "facilities", str(path), "--partial", "--problems", str(problems))

    assert out.splitlines()[0] == "城市部件导入完成：共 2 行，导入 1 行，拒绝 1 行"
    assert Facility.objects.count() == 1
    assert "有问题的行（含原因）已写入：" + str(problems) in out
    assert problems.exists()


def test_import_layer_reports_a_missing_file(db, tmp_path):
    with pytest.raises(CommandError, match="文件不存在"):
        call_command("import_layer", "grids", str(tmp_path / "nope.geojson"))


def test_export_layer_writes_the_format_of_the_suffix_and_never_overwrites(district, tmp_path):
    path = tmp_path / "grids.geojson"

    out = run("export_layer", "grids", str(path))

    assert out.strip() == f"已导出网格 4 条到 {path}"
    assert len(json.loads(path.read_text())["features"]) == 4
    with pytest.raises(CommandError, match="文件已存在"):
        call_command("export_layer", "grids", str(path))
    with pytest.raises(CommandError, match="无法从文件后缀判断格式"):
        call_command("export_layer", "grids", str(tmp_path / "grids.kml"))


def test_every_import_column_is_documented():
    text = (Path(__file__).resolve().parents[2] / "docs" / "import-export.md").read_text(encoding="utf-8")
    for key, importer in LAYERS.items():
        assert f"### {importer.label} — `{key}`" in text
        for column in importer.columns:
            required = "yes" if column.required else ""
            assert f"| `{column.name}` | {column.label} | {'、'.join(column.aliases)} | {required} |" in text
