"""The demo in the database: bulk writes (COPY), removal of an older demo, and the marker
that tells load_demo which demo is loaded.

Everything here runs inside the caller's transaction (geodata.demo.loader.demo_load).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

import shapely
from django.conf import settings
from django.contrib.gis.geos import GEOSGeometry
from django.db import DatabaseError, connection, models, transaction
from psycopg import sql
from shapely.geometry import MultiPolygon
from shapely.geometry.base import BaseGeometry

from geodata import pii
from geodata.demo.facilities import FacilityDraft
from geodata.demo.layout import Layout
from geodata.demo.plan import DemoPlan
from geodata.demo.population import Population
from geodata.demo.progress import Progress
from geodata.importing.layers.base import copy_rows, ewkb_hex
from geodata.models import (
    Building,
    Community,
    Department,
    District,
    Facility,
    FacilityType,
    Grid,
    Household,
    Person,
    Street,
)

# Children before parents: the order in which demo rows are deleted.
DEMO_MODELS: tuple[type[models.Model], ...] = (Person, Household, Facility, Building, Grid, Community, Street, District)
# What identifies a demo row across reloads (the same seed gives the same values).
_NATURAL_KEY: dict[type[models.Model], str] = {Person: "id_number_hash"}
# The marker lives in the comment of the district table: no schema of its own, it travels
# with the database (dumps, restores) and it is written in the same transaction as the data.
_MARKER_TABLE = District._meta.db_table
_MARKER_PREFIX = "gridmgmt-demo "


# --- marker -------------------------------------------------------------------------------


def table_marker_read(table: str, prefix: str) -> dict[str, Any] | None:
    """The JSON marker kept as `table`'s comment after `prefix` (what a demo loader loaded)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT obj_description(%s::regclass, 'pg_class')", [table])
        comment = cursor.fetchone()[0] or ""
    if not comment.startswith(prefix):
        return None
    try:
        return json.loads(comment.removeprefix(prefix))
    except ValueError:
        return None


def table_marker_write(table: str, prefix: str, marker: dict[str, Any] | None) -> None:
    """Keep `marker` (None: none) as `table`'s comment after `prefix`."""
    text = prefix + json.dumps(marker, sort_keys=True) if marker is not None else None
    statement = sql.SQL("COMMENT ON TABLE {} IS {}").format(sql.Identifier(table), sql.Literal(text))
    with connection.cursor() as cursor:
        cursor.execute(statement.as_string(connection.connection))


def marker_read() -> dict[str, Any] | None:
    return table_marker_read(_MARKER_TABLE, _MARKER_PREFIX)


def marker_write(marker: dict[str, Any] | None) -> None:
    table_marker_write(_MARKER_TABLE, _MARKER_PREFIX, marker)


def demo_counts() -> dict[str, int]:
    """Demo rows per table, in one statement."""
    selects = [
        f"(SELECT count(*) FROM {model._meta.db_table} WHERE is_demo) AS {model._meta.model_name}"  # noqa: S608
        for model in DEMO_MODELS
    ]
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(selects))
        row = cursor.fetchone()
    return {str(model._meta.model_name): int(count) for model, count in zip(DEMO_MODELS, row, strict=True)}


# --- replacing an older demo ------------------------------------------------------------------


class CatalogueIncomplete(Exception):
    """A facility category of the demo is not in the database (load_catalogue was not run)."""


class DemoReplaceRefused(Exception):
    """Rows outside the demo refer to demo rows that the new demo does not have."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("；".join(problems))


@dataclass
class OutsideReference:
    """Rows of `related` (not demo rows themselves) whose `field` points at demo rows of `model`."""

    model: type[models.Model]
    related: type[models.Model]
    field: models.ForeignKey
    rows: list[tuple[Any, str]]  # (primary key of the referring row, natural key of the demo row)

    def describe(self) -> str:
        return f"{self.related._meta.verbose_name}（{len(self.rows)} 条）引用了示例{self.model._meta.verbose_name}"


def outside_references() -> list[OutsideReference]:
    """Everything that refers to demo rows from outside the demo: cases, reveal logs,
    assignments of grid workers, users scoped to a demo street, non-demo buildings in a
    demo grid... Found through the models' relations, so later apps are covered too."""
    found = []
    for model in DEMO_MODELS:
        key = _NATURAL_KEY.get(model, "code")
        # Hidden relations too (related_name="+": users' scopes, the reveal log). Many-to-many
        # relations are skipped: their through model (GridAssignment) has a foreign key of its own.
        for relation in model._meta.get_fields(include_hidden=True):
            if not isinstance(relation, models.ManyToOneRel):  # also covers one-to-one
                continue
            field, related = relation.field, cast(type[models.Model], relation.related_model)
            if getattr(related, "DERIVED_BY_TRIGGERS", False):  # e.g. GridCell: the triggers redo them
                continue
            referring = related._default_manager.filter(**{f"{field.name}__is_demo": True})
            if related in DEMO_MODELS:
                referring = referring.filter(is_demo=False)
            rows = list(referring.values_list("pk", f"{field.name}__{key}"))
            if rows:
                found.append(OutsideReference(model, related, cast(models.ForeignKey, field), rows))
    return found


def demo_delete() -> dict[str, int]:
    """Delete every demo row (not the shared catalogue or departments).

    Foreign keys are checked at commit (Django creates them DEFERRABLE INITIALLY DEFERRED),
    so rows found by `outside_references` may point at deleted rows until
    `references_restore` points them at the new demo rows with the same natural key.
    """
    deleted = {}
    with connection.cursor() as cursor:
        for model in DEMO_MODELS:
            cursor.execute(f"DELETE FROM {model._meta.db_table} WHERE is_demo")  # noqa: S608
            deleted[str(model._meta.model_name)] = cursor.rowcount
    return deleted


def references_restore(references: list[OutsideReference]) -> None:
    """Point outside rows at the new demo rows with the same natural key; raise
    DemoReplaceRefused (the caller rolls back) for any that cannot be pointed again."""
    problems = []
    for reference in references:
        model_table = reference.model._meta.db_table
        key_column = str(
            cast(models.Field, reference.model._meta.get_field(_NATURAL_KEY.get(reference.model, "code"))).column
        )
        related_pk = cast(models.Field, reference.related._meta.pk)
        statement = sql.SQL(
            "UPDATE {related} AS r SET {column} = m.id"
            " FROM unnest(%s::{pk_type}[], %s::text[]) AS u(pk, natural_key)"
            " JOIN {model} AS m ON m.{key} = u.natural_key AND m.is_demo"
            " WHERE r.{pk} = u.pk"
        ).format(
            related=sql.Identifier(reference.related._meta.db_table),
            column=sql.Identifier(str(reference.field.column)),
            pk_type=sql.SQL(str(related_pk.db_type(connection))),
            model=sql.Identifier(model_table),
            key=sql.Identifier(key_column),
            pk=sql.Identifier(str(related_pk.column)),
        )
        pks, keys = zip(*reference.rows, strict=True)
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(statement.as_string(connection.connection), [list(pks), list(keys)])
                restored = cursor.rowcount
        except DatabaseError as error:
            problems.append(f"{reference.describe()}，且不能修改（{str(error).splitlines()[0]}）")
            continue
        if restored != len(reference.rows):
            lost = len(reference.rows) - restored
            problems.append(f"{reference.describe()}，其中 {lost} 条在新示例数据中没有对应对象")
    if problems:
        raise DemoReplaceRefused(problems)


# --- writing ----------------------------------------------------------------------------------


def _geos(geometry: BaseGeometry) -> Any:  # a GEOS Polygon or MultiPolygon, as `geometry`
    return GEOSGeometry(memoryview(shapely.to_wkb(geometry)), srid=settings.STORAGE_SRID)


def departments_ensure(*, plan: DemoPlan, layout: Layout) -> dict[str, int]:
    """The plan's departments and one 居委会/村委会 per community (a grid's 责任主体).

    Departments shared with the case catalogue (`events`' load_case_categories uses the
    same codes) are created if missing and otherwise left alone; demo-only ones follow the
    plan. Departments are never deleted: cases and users keep referring to them.
    """
    label = plan.label
    wanted = [
        Department(code=d["code"], name=d["name"], kind=d["kind"], is_demo=not d.get("shared", False))
        for d in plan["departments"]
    ]
    for community in layout.communities:
        short = community.name.removesuffix(label)
        committee = "村民委员会" if short.endswith("村") else "居民委员会"
        wanted.append(
            Department(
                code=f"JW{community.code}",
                name=f"{short}{committee}{label}",
                kind=Department.Kind.RESPONSIBLE_UNIT,
                is_demo=True,
            )
        )
    existing = {d.code: d for d in Department.objects.filter(code__in=[d.code for d in wanted])}
    Department.objects.bulk_create([d for d in wanted if d.code not in existing])
    stale = []
    for department in wanted:
        current = existing.get(department.code)
        if current is None or not current.is_demo:
            continue
        if (current.name, current.kind) != (department.name, department.kind):
            current.name, current.kind = department.name, department.kind
            stale.append(current)
    Department.objects.bulk_update(stale, ["name", "kind"])
    return {
        code: pk for code, pk in Department.objects.filter(code__in=[d.code for d in wanted]).values_list("code", "id")
    }


def regions_write(*, plan: DemoPlan, layout: Layout, departments: dict[str, int]) -> dict[str, int]:
    """District, streets, communities and grids; returns the grid ids by code."""
    district_plan = plan["district"]
    district = District.objects.create(
        code=district_plan["code"], name=district_plan["name"] + plan.label, geom=_geos(layout.district), is_demo=True
    )
    streets = Street.objects.bulk_create(
        [Street(code=s.code, name=s.name, district=district, geom=_geos(s.geom), is_demo=True) for s in layout.streets]
    )
    street_ids = {s.code: s.id for s in streets}
    communities = Community.objects.bulk_create(
        [
            Community(code=c.code, name=c.name, street_id=street_ids[c.street_code], geom=_geos(c.geom), is_demo=True)
            for c in layout.communities
        ]
    )
    community_ids = {c.code: c.id for c in communities}
    grids = Grid.objects.bulk_create(
        [
            Grid(
                code=g.code,
                name=g.name,
                community_id=community_ids[g.community_code],
                responsible_unit_id=departments[f"JW{g.community_code}"],
                geom=_geos(g.geom),
                valid_from=plan.grid_valid_from,
                is_demo=True,
            )
            for g in layout.grids
        ],
        batch_size=500,
    )
    return {g.code: g.id for g in grids}


def _reserve_ids(model: type[models.Model], count: int) -> list[int]:
    """Primary keys drawn from the table's own sequence, so rows written with COPY can refer
    to each other without a round trip per row."""
    if not count:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [model._meta.db_table, count],
        )
        return sorted(row[0] for row in cursor.fetchall())


def buildings_write(*, population: Population, progress: Progress) -> list[int]:
    ids = _reserve_ids(Building, len(population.buildings))
    rows = (
        (pk, b.code, b.address, b.floors, b.use, ewkb_hex(MultiPolygon([b.footprint])), ewkb_hex(b.location), True)
        for pk, b in zip(ids, progress.iterate(population.buildings, desc="写入楼栋", unit="栋"), strict=True)
    )
    columns = ("id", "code", "address", "floors", "use", "footprint", "location", "is_demo")
    copy_rows(Building._meta.db_table, columns, rows)
    return ids


def households_write(*, population: Population, building_ids: list[int], progress: Progress) -> list[int]:
    ids = _reserve_ids(Household, len(population.households))
    rows = (
        (
            pk,
            h.code,
            building_ids[h.building],
            h.unit,
            h.room,
            h.household_type,
            h.head_name,
            pii.encrypt(h.phone),
            pii.mask_phone(h.phone),
            True,
        )
        for pk, h in zip(ids, progress.iterate(population.households, desc="写入住户", unit="户"), strict=True)
    )
    columns = (
        "id",
        "code",
        "building_id",
        "unit",
        "room",
        "household_type",
        "head_name",
        "phone_encrypted",
        "phone_masked",
        "is_demo",
    )
    copy_rows(Household._meta.db_table, columns, rows)
    return ids


def persons_write(*, population: Population, household_ids: list[int], progress: Progress) -> int:
    # ID numbers and phones are encrypted here, on the way in: only the masked forms and
    # the keyed look-up hash reach the database in clear.
    rows = (
        (
            household_ids[p.household],
            p.name,
            p.sex,
            p.birth_date,
            p.ethnicity,
            pii.encrypt(p.id_number),
            pii.lookup_hash(p.id_number),
            pii.mask_id_number(p.id_number),
            pii.encrypt(p.phone),
            pii.mask_phone(p.phone),
            "{" + ",".join(p.tags) + "}",
            True,
        )
        for p in progress.iterate(population.persons, desc="加密并写入人口", unit="人")
    )
    columns = (
        "household_id",
        "name",
        "sex",
        "birth_date",
        "ethnicity",
        "id_number_encrypted",
        "id_number_hash",
        "id_number_masked",
        "phone_encrypted",
        "phone_masked",
        "tags",
        "is_demo",
    )
    return copy_rows(Person._meta.db_table, columns, rows)


def facilities_write(*, facilities: list[FacilityDraft], departments: dict[str, int], progress: Progress) -> int:
    types = {t.major_code + t.minor_code: t.id for t in FacilityType.objects.all()}
    missing = sorted({f.type_code for f in facilities} - types.keys())
    if missing:
        raise CatalogueIncomplete(f"部件类别目录中缺少 {', '.join(missing)}：请先运行 manage.py load_catalogue")
    rows = (
        (
            f.code,
            types[f.type_code],
            f.name,
            f.status,
            ewkb_hex(f.location),
            f.address,
            departments[f.owner],
            departments[f.manager],
            departments[f.maintainer],
            True,
        )
        for f in progress.iterate(facilities, desc="写入城市部件", unit="个")
    )
    columns = (
        "code",
        "facility_type_id",
        "name",
        "status",
        "location",
        "address",
        "owner_department_id",
        "manager_department_id",
        "maintainer_department_id",
        "is_demo",
    )
    return copy_rows(Facility._meta.db_table, columns, rows)
