"""What an import did, row by row, and the file of problem rows handed back to the user."""

import enum
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd
from django.conf import settings

from geodata.importing.sources import SourceTable

ROW_COLUMN = "导入行号"
PROBLEM_COLUMN = "问题说明"


class ImportMode(enum.StrEnum):
    STRICT = "strict"  # any problem refuses the whole file
    PARTIAL = "partial"  # good rows are loaded, problem rows are handed back
    CHECK = "check"  # report only, nothing is written


MODE_LABELS = {ImportMode.STRICT: "整体导入", ImportMode.PARTIAL: "部分导入", ImportMode.CHECK: "仅检查"}


@dataclass
class RowProblem:
    row: int  # as the user sees it: spreadsheet line (header = 1) or feature number
    key: str  # the row's code, when it has one
    messages: list[str]

    def __str__(self) -> str:
        key = f"［{self.key}］" if self.key else ""
        return f"第 {self.row} 行{key}：" + "；".join(self.messages)


@dataclass
class ImportReport:
    layer: str
    layer_label: str
    source_name: str
    mode: ImportMode
    source_format: str = ""
    encoding: str = ""
    crs: str = ""
    rows_read: int = 0
    rows_loaded: int = 0
    created: dict[str, int] = field(default_factory=dict)
    assigned: dict[str, int] = field(default_factory=dict)
    row_problems: list[RowProblem] = field(default_factory=list)
    file_problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    refused: bool = False
    problems_file: Path | None = None

    @property
    def rows_with_problems(self) -> int:
        return len(self.row_problems)

    @property
    def ok(self) -> bool:
        return not self.refused and not self.row_problems and not self.file_problems

    def summary(self) -> str:
        if self.refused:
            return f"{self.layer_label}导入被拒绝，未写入任何数据（{self.source_name}）"
        if self.mode is ImportMode.CHECK:
            state = "检查通过" if self.ok else "检查发现问题"
            return (
                f"{self.layer_label}{state}：共 {self.rows_read} 行，有问题 {self.rows_with_problems} 行（未写入数据）"
            )
        return (
            f"{self.layer_label}导入完成：共 {self.rows_read} 行，导入 {self.rows_loaded} 行，"
            f"拒绝 {self.rows_with_problems} 行"
        )

    def lines(self) -> list[str]:
        """The whole report as text lines, for the command line and logs."""
        lines = [self.summary(), f"  文件：{self.source_name}"]
        if self.source_format:
            lines.append(
                f"  格式：{self.source_format}；编码：{self.encoding or '—'}；"
                f"坐标系：{self.crs or '—'}；方式：{MODE_LABELS[self.mode]}"
            )
        if self.created:
            lines.append("  新增：" + "，".join(f"{name} {count}" for name, count in self.created.items()))
        if self.assigned and any(self.assigned.values()):
            lines.append("  网格归属更新：" + "，".join(f"{name} {count}" for name, count in self.assigned.items()))
        lines += [f"  提示：{w}" for w in self.warnings]
        lines += [f"  问题：{p}" for p in self.file_problems]
        lines += [f"  {p}" for p in self.row_problems]
        if self.problems_file:
            lines.append(f"  有问题的行（含原因）已写入：{self.problems_file}")
        return lines


def default_problems_path(source: Path, table: SourceTable) -> Path:
    suffix = ".csv" if table.tabular else ".geojson"
    return source.with_name(f"{source.stem}.problems{suffix}")


def write_problems(table: SourceTable, problems: list[tuple[int, RowProblem]], path: Path) -> Path:
    """Write the problem rows with their original values and reasons, in a format that can be
    fixed and imported again: CSV (UTF-8 with BOM, which Excel and WPS open correctly) for
    tabular sources or when `path` ends in .csv (geometry as WKT), else GeoJSON / GeoPackage in
    the storage SRID. `problems` pairs each problem with its row index in `table`."""
    indexes = [index for index, _ in problems]
    frame = table.frame.iloc[indexes].copy()
    frame.insert(0, PROBLEM_COLUMN, ["；".join(p.messages) for _, p in problems])
    frame.insert(0, ROW_COLUMN, [p.row for _, p in problems])
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".csv" or table.geometry is None:
        if table.geometry is not None and not table.coordinate_columns:
            frame["wkt"] = [g.wkt if g is not None else "" for g in table.geometry.iloc[indexes]]
        pd.DataFrame(frame).to_csv(path.with_suffix(".csv"), index=False, encoding="utf-8-sig")
        return path.with_suffix(".csv")
    geometry = table.geometry.iloc[indexes].reset_index(drop=True)
    spatial = gpd.GeoDataFrame(frame.reset_index(drop=True), geometry=geometry, crs=settings.STORAGE_SRID)
    driver = "GPKG" if suffix == ".gpkg" else "GeoJSON"
    spatial.to_file(path, driver=driver, engine="pyogrio")
    return path
