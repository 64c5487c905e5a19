import datetime as dt
import io

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.contrib.gis.geos import Point, Polygon
from django.core.management import call_command

from events.models import Case
from geodata import pii
from geodata.models import Building, Facility, Household
from geodata.services import pii_rotate_keys, register_assign_grids
from tests.events.factories import CaseFactory
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


def test_every_encrypted_column_of_the_project_is_known_to_rotation(db):
    """The registry is the naming convention (`*_encrypted`): a new encrypted field in any app
    is rotated without being listed; this list changes when one is added, on purpose."""
    found = {(model._meta.label, name) for model, names in pii.encrypted_fields().items() for name in names}
    assert found == {
        ("geodata.Person", "id_number_encrypted"),
        ("geodata.Person", "phone_encrypted"),
        ("geodata.Household", "phone_encrypted"),
        ("events.Case", "reporter_phone_encrypted"),
    }


def _every_token() -> list[tuple[str, str]]:
    """(where, token) for every non-empty encrypted value in every table."""
    return [
        (f"{model._meta.label}.{name}#{pk}", token)
        for model, names in pii.encrypted_fields().items()
        for name in names
        for pk, token in model.objects.exclude(**{name: ""}).values_list("pk", name)
    ]


def test_key_rotation_re_encrypts_every_encrypted_value_in_every_table(district, settings):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.PII_KEYS = [old_key]
    person = PersonFactory(phone_encrypted=pii.encrypt("13812345678"))
    household = person.household
    household.phone_encrypted = pii.encrypt("13900001111")
    household.save()
    caller = CaseFactory(grid=district["grids"][0], reporter_phone_encrypted=pii.encrypt("02368123456"))
    CaseFactory(grid=district["grids"][1])  # no caller's phone: nothing to rotate
    clear = {where: pii.decrypt(token) for where, token in _every_token()}
    assert len(clear) == 4
    assert clear[f"events.Case.reporter_phone_encrypted#{caller.pk}"] == "02368123456"

    settings.PII_KEYS = [new_key, old_key]
    assert pii_rotate_keys(batch_size=1) == {"geodata.person": 1, "geodata.household": 1, "events.case": 1}

    settings.PII_KEYS = [new_key]  # the old key is gone: every value of every table still decrypts
    assert {where: pii.decrypt(token) for where, token in _every_token()} == clear
    settings.PII_KEYS = [old_key]
    for _, token in _every_token():
        with pytest.raises(InvalidToken):
            pii.decrypt(token)


def test_the_rotation_command_reports_every_table(district, settings):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.PII_KEYS = [old_key]
    CaseFactory(grid=district["grids"][0], reporter_phone_encrypted=pii.encrypt("13812345678"))
    settings.PII_KEYS = [new_key, old_key]
    out = io.StringIO()
    call_command("pii_rotate", stdout=out)
    assert out.getvalue().strip() == "已用新密钥重新加密：户 0 条，实有人口 0 条，案件 1 条。"
    settings.PII_KEYS = [new_key]
    assert pii.decrypt(Case.objects.get().reporter_phone_encrypted) == "13812345678"
