"""layer_import: read a file, check every row, then load all of it, the good rows, or nothing.

1. Read (sources.read_source): format, encoding, CRS, reprojection to the storage SRID.
   A file that cannot be read, or lacks a required column, is refused whatever the mode.
2. Check, inside one transaction holding an advisory lock, so that two imports cannot both
   pass their duplicate/overlap checks against a register the other is changing: each row on
   its own (`parse_all`), then rows against each other and the register (`check`).
3. Decide: strict mode refuses the whole file on any problem; partial mode loads the rows
   without problems (gaps between grids are then reported, not refused); check mode writes
   nothing. Rows go in with COPY; grid attribution of buildings and facilities is then
   redone, set-based, over the imported area (geodata.services.register_assign_grids).
4. Report: a row-by-row report, and the problem rows with their reasons written to a file
   that can be corrected and imported again.
"""

import logging
from pathlib import Path

from django.db import DatabaseError, connection, transaction

from geodata.importing.columns import describe_columns, match_columns
from geodata.importing.geometry import coerce
from geodata.importing.layers.base import LayerImporter, Record
from geodata.importing.layers.buildings import BuildingImporter
from geodata.importing.layers.facilities import FacilityImporter
from geodata.importing.layers.grids import GridImporter
from geodata.importing.layers.population import PopulationImporter
from geodata.importing.layers.regions import RegionImporter
from geodata.importing.report import (
    PROBLEM_COLUMN,
    ROW_COLUMN,
    ImportMode,
    ImportReport,
    RowProblem,
    default_problems_path,
    write_problems,
)
from geodata.importing.sources import ReadOptions, SourceRefused, SourceTable, read_source
from geodata.services import register_assign_grids

logger = logging.getLogger(__name__)

LAYERS: dict[str, type[LayerImporter]] = {
    importer.key: importer
    for importer in (RegionImporter, GridImporter, BuildingImporter, PopulationImporter, FacilityImporter)
}
# Imports of the register run one at a time: their checks read what the others write.
_IMPORT_LOCK_KEY = 0x67726964_696D70  # "gridimp"
DEFAULT_TOLERANCE_M2 = 1.0


def layer_import(
    *,
    layer: str,
    path: Path,
    mode: ImportMode = ImportMode.STRICT,
    srs: str | None = None,
    encoding: str | None = None,
    source_layer: str | None = None,
    tolerance_m2: float = DEFAULT_TOLERANCE_M2,
    problems_path: Path | None = None,
    source_name: str | None = None,
) -> ImportReport:
    """Import `path` into `layer` (a key of LAYERS). See the module docstring for the rules.

    `problems_path`: where to write the problem rows (default: next to the source file,
    `<name>.problems.csv` or `.geojson`). `source_name`: the name to report (an upload's
    original name). The report is returned in every case; nothing raises for bad input.
    """
    importer_class = LAYERS[layer]
    mode = ImportMode(mode)
    report = ImportReport(
        layer=layer, layer_label=importer_class.label, source_name=source_name or path.name, mode=mode
    )
    options = ReadOptions(
        layer=layer,
        layer_label=importer_class.label,
        needs_geometry=importer_class.shape is not None,
        srs=srs or None,
        encoding=encoding or None,
        source_layer=source_layer or None,
    )
    try:
        table = read_source(path, options=options, name=source_name)
    except SourceRefused as error:
        report.refused = True
        report.file_problems.append(str(error))
        return report
    report.source_format, report.encoding, report.crs = table.format, table.encoding, table.crs
    report.rows_read = len(table)
    report.warnings += table.warnings

    # The two columns a problems file adds are ignored, so that it can be fixed and imported again.
    match = match_columns(
        table.frame.columns,
        importer_class.columns,
        ignore=[*table.coordinate_columns, ROW_COLUMN, PROBLEM_COLUMN],
        truncated=table.truncated_headers,
    )
    if match.unused:
        report.warnings.append("以下列未使用：" + "、".join(match.unused))
    if match.missing or match.conflicts:
        report.refused = True
        if match.missing:
            report.file_problems.append(
                f"缺少必需的列：{describe_columns(match.missing)}。可用的列：{describe_columns(importer_class.columns)}"
            )
        report.file_problems += match.conflicts
        return report

    importer = importer_class(tolerance_m2=tolerance_m2)
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_IMPORT_LOCK_KEY])
            records = _records(table, importer, match.source_of)
            importer.parse_all(records)
            outcome = importer.check(records, loaded_only=mode is ImportMode.PARTIAL)
            report.row_problems = [_problem(r) for r in records if not r.ok]
            good = [r for r in records if r.ok]
            if mode is ImportMode.PARTIAL:
                report.warnings += outcome.file_problems
            else:
                report.file_problems += outcome.file_problems
            report.warnings += outcome.warnings
            if mode is ImportMode.CHECK or (mode is ImportMode.STRICT and not report.ok) or not good:
                report.refused = mode is not ImportMode.CHECK
            else:
                report.created = importer.write(good)
                report.rows_loaded = len(good)
                area = importer.assignment_area(good)
                if area is not None:
                    report.assigned = _labelled(register_assign_grids(area=area))
    except DatabaseError as error:  # IntegrityError included
        # The checks above should make this unreachable; if the database still refuses (a
        # constraint we do not check, a concurrent writer outside imports), nothing is kept.
        logger.exception("import of %s from %s failed in the database", layer, report.source_name)
        report.refused, report.rows_loaded, report.created, report.assigned = True, 0, {}, {}
        report.file_problems.append(f"数据库拒绝写入，已全部撤销：{str(error).splitlines()[0]}")
        return report

    if report.row_problems:
        target = problems_path or default_problems_path(path, table)
        try:
            rows = [(r.index, _problem(r)) for r in records if not r.ok]
            report.problems_file = write_problems(table, rows, target)
        except OSError as error:
            report.warnings.append(f"问题行文件无法写入 {target}：{error}")
    return report


def _records(table: SourceTable, importer: LayerImporter, source_of: dict[str, str]) -> list[Record]:
    absent = [""] * len(table)
    names = [column.name for column in importer.columns]
    columns = [table.frame[source_of[name]].tolist() if name in source_of else absent for name in names]
    records = []
    for index, row in enumerate(zip(*columns, strict=True)):
        values = dict(zip(names, row, strict=True))
        record = Record(
            index=index, row=table.row_numbers[index], values=values, key=values.get(importer.key_column, "")
        )
        if importer.shape is not None and table.geometry is not None:
            if index in table.geometry_problems:
                record.problems.append(table.geometry_problems[index])
            else:
                try:
                    record.geometry = coerce(table.geometry.iloc[index], importer.shape)
                except ValueError as error:
                    record.problems.append(str(error))
        records.append(record)
    return records


def _problem(record: Record) -> RowProblem:
    return RowProblem(row=record.row, key=record.key, messages=list(dict.fromkeys(record.problems)))


def _labelled(changed: dict[str, int]) -> dict[str, int]:
    labels = {"buildings": "楼栋", "facilities": "城市部件", "households": "户"}
    return {labels.get(name, name): count for name, count in changed.items()}
