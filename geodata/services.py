"""Writes to the spatial register that are more than a single model save."""

import datetime as dt
from typing import Any

from django.contrib.gis.geos import GEOSGeometry
from django.db import connection, transaction
from django.utils import timezone

from geodata import pii
from geodata.models import Person, PersonalDataReveal
from geodata.selectors import persons_visible_to

# The grid of a point on a day: taken from the point's cell (geodata_gridcell, migration
# 0007_grid_cells: a B-tree look-up) when the cell lies strictly inside one grid valid that
# day; else by the exact test, where a point on an edge shared by two grids belongs to the
# one with the smallest code. The LIMIT stops before the exact test when the cell answered.
_GRID_OF_POINT = """
    (SELECT c.grid_id AS id FROM geodata_gridcell c
     WHERE c.cell_y = floor(ST_Y({point}) * 8000)::int AND c.cell_x = floor(ST_X({point}) * 8000)::int
       AND c.valid_from <= %(day)s AND (c.valid_to IS NULL OR c.valid_to > %(day)s))
    UNION ALL
    (SELECT g.id FROM geodata_grid g
     WHERE ST_Covers(g.geom, {point})
       AND g.valid_from <= %(day)s AND (g.valid_to IS NULL OR g.valid_to > %(day)s)
     ORDER BY g.code LIMIT 1)
    LIMIT 1
"""

_ASSIGN_POINTS = """
    WITH found AS (
        SELECT t.id, g.id AS grid_id
        FROM {table} t
        LEFT JOIN LATERAL ({grid_of_point}) g ON true
        WHERE %(area)s::geometry IS NULL OR ST_Intersects(t.location, %(area)s::geometry)
    )
    UPDATE {table} t SET grid_id = found.grid_id
    FROM found
    WHERE t.id = found.id AND t.grid_id IS DISTINCT FROM found.grid_id
"""

_ASSIGN_HOUSEHOLDS = """
    UPDATE geodata_household h SET grid_id = b.grid_id
    FROM geodata_building b
    WHERE h.building_id = b.id AND h.grid_id IS DISTINCT FROM b.grid_id
      AND (%(area)s::geometry IS NULL OR ST_Intersects(b.location, %(area)s::geometry))
"""


@transaction.atomic
def register_assign_grids(*, area: GEOSGeometry | None = None, day: dt.date | None = None) -> dict[str, int]:
    """Attribute buildings, facilities and households to the grid valid on `day` that contains them.

    Set-based: one statement per table, touching only objects inside `area` when given
    (the changed area after a redraw) and only rows whose grid actually changes. A building
    belongs wholly to one grid: the grid that covers its location point (a point on the
    surface of its footprint); on a shared edge the grid with the smallest code wins, as
    in geodata.selectors.grid_for_point. Returns the number of rows changed per table.
    """
    params = {"day": day or timezone.localdate(), "area": area.ewkt if area is not None else None}
    changed = {}
    with connection.cursor() as cursor:
        for name, table in (("buildings", "geodata_building"), ("facilities", "geodata_facility")):
            grid_of_point = _GRID_OF_POINT.format(point="t.location")
            cursor.execute(_ASSIGN_POINTS.format(table=table, grid_of_point=grid_of_point), params)
            changed[name] = cursor.rowcount
        cursor.execute(_ASSIGN_HOUSEHOLDS, params)
        changed["households"] = cursor.rowcount
    return changed


def pii_rotate_keys(*, batch_size: int = 5000) -> dict[str, int]:
    """Re-encrypt every stored ID number and phone with the newest key in settings.PII_KEYS.

    Walks every encrypted column of every app (`pii.encrypted_fields`: residents, households,
    callers' phones on cases, ...), so nothing still needs the old key afterwards. Run after
    putting a new key first in GRIDMGMT_PII_KEYS; then the old key can be dropped. Batched by
    primary key, one transaction per batch, so it can be re-run safely. Returns the rows
    re-encrypted per model ("geodata.person": 120, ...).
    """
    return {
        model._meta.label_lower: _rotate_encrypted_fields(model, fields, batch_size)
        for model, fields in pii.encrypted_fields().items()
    }


def _rotate_encrypted_fields(model: type[Any], fields: tuple[str, ...], batch_size: int) -> int:
    done, last_pk = 0, 0
    # Rows with no token at all (most cases have no caller's phone) have nothing to rotate.
    with_tokens = model.objects.exclude(**{field: "" for field in fields})
    while True:
        with transaction.atomic():
            rows = list(with_tokens.filter(pk__gt=last_pk).order_by("pk").only("pk", *fields)[:batch_size])
            if not rows:
                return done
            for row in rows:
                for field in fields:
                    setattr(row, field, pii.rotate(getattr(row, field)))
            model.objects.bulk_update(rows, fields)
        done += len(rows)
        last_pk = rows[-1].pk


class PersonalDataRevealRefused(PermissionError):
    pass


REVEALABLE_FIELDS = {"id_number": "id_number_encrypted", "phone": "phone_encrypted"}


@transaction.atomic
def personal_data_reveal(*, user, person: Person, field: str, reason: str) -> str:
    """Return a person's ID number or phone in clear, and log who, when and why (PIPL).

    Allowed to users with the `geodata.reveal_personal_data` right (see accounts/roles.py)
    for persons within their scope (geodata.selectors.persons_visible_to). A refused
    reveal raises PersonalDataRevealRefused and logs nothing.
    """
    if field not in REVEALABLE_FIELDS:
        raise ValueError(f"不能查看字段 {field!r}")
    reason = (reason or "").strip()
    if len(reason) < 2:
        raise PersonalDataRevealRefused("请填写查看原因（至少2个字）")
    if not user.has_perm("geodata.reveal_personal_data"):
        raise PersonalDataRevealRefused("您的角色无权查看个人信息明文")
    if not persons_visible_to(user=user).filter(pk=person.pk).exists():
        raise PersonalDataRevealRefused("该居民不在您的负责范围内")
    PersonalDataReveal.objects.create(user=user, person=person, field=field, reason=reason[:200])
    return pii.decrypt(getattr(person, REVEALABLE_FIELDS[field]))
