"""What every layer importer shares: the row record, look-ups in batches, and COPY.

A layer importer turns rows into records in three passes, all before anything is written:
`parse` checks one row on its own (formats, references to what is already registered),
`check` checks rows against each other and against the register (duplicates, overlaps,
gaps, jurisdiction), and `write` loads the records that have no problem. Problems are
attached to the record they concern, in Chinese, and name the column or the other row.
"""

import abc
import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import numpy as np
import shapely
from django.conf import settings
from django.contrib.gis.db.models.functions import AsWKB
from django.contrib.gis.geos import GEOSGeometry
from django.db import connection, models
from shapely.geometry.base import BaseGeometry

from geodata.importing.columns import Column, RowError
from geodata.importing.geometry import Metric, Shape, overlaps
from geodata.models import District

T = TypeVar("T")
# After loading this many rows the table's planner statistics are refreshed at once when the
# load more than doubled the table: a table that went from empty to 60 000 rows in one COPY
# otherwise gets nested-loop plans until autovacuum catches up (seen: a 2-minute population
# export right after an import). Statistics drawn from at least half the rows still describe
# the table (the planner scales row counts by its current size), and autovacuum refreshes them
# after 10 % of change anyway; an ANALYZE costs as much as the COPY of 40 000 households.
ANALYZE_AFTER_ROWS = 1000


@dataclass
class Record:
    index: int  # row index in the source table
    row: int  # the row number the user sees (see SourceTable.row_numbers)
    values: dict[str, str]  # canonical column name -> text ("" when absent)
    key: str = ""
    geometry: BaseGeometry | None = None  # coerced, in the storage SRID
    problems: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def take(self, parser: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """Run a value parser; on RowError note the problem and return None, so that one row
        reports all its problems at once instead of the first only."""
        try:
            return parser(*args, **kwargs)
        except RowError as error:
            self.problems.append(str(error))
            return None


@dataclass
class CheckOutcome:
    file_problems: list[str] = field(default_factory=list)  # refuse the file unless partial
    warnings: list[str] = field(default_factory=list)


class LayerImporter(abc.ABC):
    key: ClassVar[str]
    label: ClassVar[str]
    columns: ClassVar[tuple[Column, ...]]
    shape: ClassVar[Shape | None]
    key_column: ClassVar[str] = "code"

    def __init__(self, *, tolerance_m2: float) -> None:
        self.tolerance_m2 = tolerance_m2

    @functools.cached_property
    def metric(self) -> Metric:
        """The metric CRS transformer, built on first use: layers without polygons never need it."""
        return Metric()

    @abc.abstractmethod
    def parse_all(self, records: list[Record]) -> None:
        """Turn each record's raw values into typed values, noting problems on the record."""

    def check(self, records: list[Record], *, loaded_only: bool) -> CheckOutcome:
        """Cross-row checks. `loaded_only`: describe what would be loaded (partial mode) rather
        than everything readable in the file."""
        return CheckOutcome()

    @abc.abstractmethod
    def write(self, records: list[Record]) -> dict[str, int]:
        """Write the loadable records (COPY) and return the counts per table."""

    def assignment_area(self, records: list[Record]) -> GEOSGeometry | None:
        """The area whose buildings and facilities must be re-attributed to grids after the write."""
        return None


# --- helpers -------------------------------------------------------------------------------------


def _text_array(values: Iterable[str]) -> str:
    """The PostgreSQL literal of a text[] (every element quoted, backslash and quote escaped)."""
    return "{" + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"


class _EqualsAny(models.Lookup):
    """`column = ANY(%s::text[])` with the values as one parameter: a 10 000-value `IN (…)` list
    costs more to build and bind client-side than the look-up costs the database, and so does
    psycopg's generic list adapter (client-side binding); the array's literal is built here."""

    lookup_name = "equals_any"
    prepare_rhs = False

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s::text[])", (*lhs_params, _text_array(self.rhs))


def existing(model: type[models.Model], field_name: str, values: Iterable[str], *fields: str) -> dict[str, Any]:
    """Rows of `model` whose `field_name` is among `values`, keyed by that value (one array look-up)."""
    wanted = sorted({v for v in values if v})
    if not wanted:
        return {}
    rows = model.objects.filter(_EqualsAny(models.F(field_name), wanted)).values(field_name, *fields)  # type: ignore[attr-defined]
    return {row[field_name]: row for row in rows}


def shapes_of(queryset: models.QuerySet, field_name: str = "geom") -> list[BaseGeometry]:
    """The geometries of a queryset as shapely objects (WKB straight from PostGIS)."""
    rows = queryset.annotate(_wkb=AsWKB(field_name)).values_list("_wkb", flat=True)
    return [shapely.from_wkb(bytes(wkb)) for wkb in rows]


def with_shapes(
    queryset: models.QuerySet, *fields: str, geometry: str = "geom"
) -> tuple[list[dict], list[BaseGeometry]]:
    """Rows of a queryset as dicts of `fields`, and their geometries as shapely objects, aligned."""
    rows = list(queryset.annotate(_wkb=AsWKB(geometry)).values(*fields, "_wkb"))
    return rows, [shapely.from_wkb(bytes(row.pop("_wkb"))) for row in rows]


def jurisdiction() -> BaseGeometry | None:
    """The union of the registered districts, prepared for fast point tests; None if none yet."""
    shapes = shapes_of(District.objects.all())
    if not shapes:
        return None
    union = shapely.union_all(np.array(shapes, dtype=object))
    shapely.prepare(union)
    return union


def outside_jurisdiction_message(point: BaseGeometry, area: BaseGeometry | None) -> str:
    if area is None:
        return "尚未登记区县边界，无法判断坐标是否在辖区内（请先导入区划）"
    return f"坐标 ({point.x:.6f}, {point.y:.6f}) 不在辖区内，请核对坐标或坐标系"


def ewkb_hex(geometry: BaseGeometry | None) -> str | None:
    if geometry is None:
        return None
    return shapely.to_wkb(shapely.set_srid(geometry, settings.STORAGE_SRID), hex=True, include_srid=True)


def copy_rows(table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Load rows with one COPY statement: bulk imports never send one INSERT per row."""
    count = 0
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [table])
        (known,) = cursor.fetchone()  # rows the planner's statistics describe; -1: never analysed
        with cursor.copy(f"COPY {quote(table)} ({', '.join(map(quote, columns))}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
        if count >= ANALYZE_AFTER_ROWS and count > known:
            cursor.execute(f"ANALYZE {quote(table)}")
    return count


# Widens envelopes by about 1 mm so that one point, or points on a line, still make an area.
_ENVELOPE_MARGIN_DEGREES = 1e-8


def envelope(geometries: Iterable[BaseGeometry | None]) -> GEOSGeometry | None:
    present = [g for g in geometries if g is not None]
    if not present:
        return None
    minx, miny, maxx, maxy = shapely.total_bounds(np.array(present, dtype=object))
    margin = _ENVELOPE_MARGIN_DEGREES
    box = shapely.box(minx - margin, miny - margin, maxx + margin, maxy + margin)
    return GEOSGeometry(box.wkt, srid=settings.STORAGE_SRID)


def duplicates_in_file(records: list[Record], key: Callable[[Record], str | None], label: str) -> None:
    """Every repeat of a key after its first row is a problem that names the first row."""
    first_row: dict[str, Record] = {}
    for record in records:
        value = key(record)
        if not value:
            continue
        if value in first_row:
            record.problems.append(f"{label}“{value}”在文件中重复（与第 {first_row[value].row} 行相同）")
        else:
            first_row[value] = record


def report_overlaps(
    records: list[Record],
    metric_shapes: np.ndarray,
    existing_labels: list[str],
    existing_shapes: np.ndarray,
    *,
    metric: Metric,
    tolerance_m2: float,
    related: Callable[[Record, Record | None, int | None], bool] | None = None,
) -> None:
    """Attach an overlap problem to each record whose polygon shares more than the tolerance
    with another row (both rows get it: the file alone cannot say which one is right) or
    with a registered polygon. `related(record, other_record, existing_index)` can narrow
    which pairs count (for grids: validity periods that overlap)."""
    for found in overlaps(metric_shapes, existing_shapes, metric=metric, tolerance_m2=tolerance_m2):
        record = records[found.first]
        if found.with_existing:
            if related and not related(record, None, found.second):
                continue
            record.problems.append(
                f"与已登记的{existing_labels[found.second]}重叠 {found.area_m2:.1f} m²，位置 {found.where}"
            )
        else:
            other = records[found.second]
            if related and not related(record, other, None):
                continue
            record.problems.append(f"与第 {other.row} 行（{other.key}）重叠 {found.area_m2:.1f} m²，位置 {found.where}")
            other.problems.append(
                f"与第 {record.row} 行（{record.key}）重叠 {found.area_m2:.1f} m²，位置 {found.where}"
            )
