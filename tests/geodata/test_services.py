import datetime as dt

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.contrib.gis.geos import Point, Polygon

from geodata import pii
from geodata.models import Building, Facility, Household, Person
from geodata.services import pii_rotate_keys, register_assign_grids
from tests.factories import ORIGIN, BuildingFactory, FacilityFactory, HouseholdFactory, PersonFactory

X0, Y0 = ORIGIN


def test_assignment_puts_each_object_in_the_grid_that_covers_it(district):
    south_west = BuildingFactory(location=Point(X0 + 0.0005, Y0 + 0.0005, srid=4326))
    north_east = BuildingFactory(location=Point(X0 + 0.003, Y0 + 0.003, srid=4326))
    outside = BuildingFactory(location=Point(X0 - 0.01, Y0, srid=4326))
    household = HouseholdFactory(building=south_west)
    facility = FacilityFactory(location=Point(X0 + 0.003, Y0 + 0.0005, srid=4326))

    changed = register_assign_grids()

    assert changed == {"buildings": 2, "facilities": 1, "households": 1}
    assert Building.objects.get(pk=south_west.pk).grid.code == "500104001001003"
    assert Building.objects.get(pk=north_east.pk).grid.code == "500104001001002"
    assert Building.objects.get(pk=outside.pk).grid is None
    assert Household.objects.get(pk=household.pk).grid.code == "500104001001003"
    assert Facility.objects.get(pk=facility.pk).grid.code == "500104001001004"
    # Running again changes nothing: only rows whose grid differs are written.
    assert register_assign_grids() == {"buildings": 0, "facilities": 0, "households": 0}


def test_assignment_limited_to_an_area_leaves_the_rest_untouched(district):
    inside = BuildingFactory(location=Point(X0 + 0.0005, Y0 + 0.0005, srid=4326))
    elsewhere = BuildingFactory(location=Point(X0 + 0.003, Y0 + 0.003, srid=4326))
    area = Polygon.from_bbox((X0, Y0, X0 + 0.001, Y0 + 0.001))
    area.srid = 4326

    assert register_assign_grids(area=area) == {"buildings": 1, "facilities": 0, "households": 0}
    assert Building.objects.get(pk=inside.pk).grid is not None
    assert Building.objects.get(pk=elsewhere.pk).grid is None


def test_assignment_uses_the_grids_valid_on_the_given_day(district):
    building = BuildingFactory(location=Point(X0 + 0.0005, Y0 + 0.0005, srid=4326))
    grid = district["grids"][2]
    grid.valid_to = dt.date(2025, 1, 1)
    grid.save()
    register_assign_grids(day=dt.date(2026, 1, 1))
    assert Building.objects.get(pk=building.pk).grid is None
    register_assign_grids(day=dt.date(2024, 6, 1))
    assert Building.objects.get(pk=building.pk).grid == grid


def test_key_rotation_re_encrypts_every_person_and_household(db, settings):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.PII_KEYS = [old_key]
    person = PersonFactory(phone_encrypted=pii.encrypt("13812345678"))
    household = person.household
    household.phone_encrypted = pii.encrypt("13900001111")
    household.save()
    clear_id = pii.decrypt(person.id_number_encrypted)

    settings.PII_KEYS = [new_key, old_key]
    assert pii_rotate_keys(batch_size=1) == {"persons": 1, "households": 1}

    settings.PII_KEYS = [new_key]  # the old key is gone: everything still decrypts
    person = Person.objects.get(pk=person.pk)
    assert pii.decrypt(person.id_number_encrypted) == clear_id
    assert pii.decrypt(person.phone_encrypted) == "13812345678"
    household.refresh_from_db()
    assert pii.decrypt(household.phone_encrypted) == "13900001111"
    settings.PII_KEYS = [old_key]
    with pytest.raises(InvalidToken):
        pii.decrypt(person.id_number_encrypted)
