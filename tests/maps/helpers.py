"""Builders of known populations and cases for the map and statistics tests.

Persons are written with bulk_create: their encrypted fields hold placeholders, which is
enough for counts (nothing here decrypts them) and keeps the tests fast.
"""

import datetime as dt
import itertools

from django.contrib.gis.geos import Point

from events.models import Case
from geodata.models import Building, Grid, Household, Person
from tests.events.factories import CaseFactory

_serial = itertools.count(1)


def centre(grid: Grid) -> Point:
    return grid.geom.centroid


def household(grid: Grid, *, point: Point | None = None, persons: list[dict] | None = None) -> Household:
    """One building with one household in `grid` (at `point`, default the grid's centre) and its persons.

    Each person is a dict of Person fields (sex, birth_date, tags); defaults: a woman born 1980.
    """
    n = next(_serial)
    building = Building.objects.create(
        code=f"TB{n:06d}", address=f"测试路{n}号", location=point or centre(grid), grid=grid
    )
    home = Household.objects.create(code=f"TH{n:08d}", building=building, grid=grid, room=f"{n}")
    Person.objects.bulk_create(
        [
            Person(
                household=home,
                name=f"居民{n}-{i}",
                sex=spec.get("sex", "F"),
                birth_date=spec.get("birth_date", dt.date(1980, 1, 1)),
                tags=spec.get("tags", []),
                id_number_encrypted="x",
                id_number_hash=f"hash-{n}-{i}",
                id_number_masked="5001**********0000",
            )
            for i, spec in enumerate(persons or [])
        ]
    )
    return home


def residents(grid: Grid, count: int, **spec) -> None:
    """`count` persons of the same kind in one household of `grid`."""
    household(grid, persons=[spec] * count)


def cases(grid: Grid, count: int, *, state: str = "reported", **fields) -> list[Case]:
    """`count` cases written directly in `grid` (CaseFactory), at the grid's centre."""
    fields.setdefault("location", centre(grid))
    return [CaseFactory(grid=grid, state=state, **fields) for _ in range(count)]
