"""The demo district loader (load_demo) and the facility catalogue (load_catalogue).

The demo is loaded once for the module, at a small scale (grids at full size, few people),
inside a transaction that is rolled back when the module ends; each test runs in a
savepoint of its own, so tests that reload or change the demo leave no trace.
"""

import datetime as dt
import io
import json
import math
import re
import statistics

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.models import Count
from django.test import override_settings

from accounts.models import Role, User
from accounts.services import DEMO_ACCOUNTS, DEMO_PASSWORD
from geodata import pii
from geodata.catalogue import catalogue_entries
from geodata.demo.design import dense_grids_design, design_target
from geodata.demo.layout import layout_build
from geodata.demo.loader import DemoLoadError, demo_load, district_boundary
from geodata.demo.plan import DemoPlan
from geodata.demo.population import buildings_place
from geodata.demo.store import marker_read
from geodata.grid_design import DesignTarget, serial_order
from geodata.grid_redraw import current_grid_balance
from geodata.models import (
    Building,
    Community,
    Department,
    District,
    Facility,
    FacilityType,
    Grid,
    GridAssignment,
    Household,
    Person,
    PersonalDataReveal,
    PersonTag,
    Street,
)

SCALE = 0.02
DENSE_STREET = "500104002"
STREET_CODES = {
    "500104001": "新山村街道",
    "500104002": "跃进村街道",
    "500104003": "九宫庙街道",
    "500104004": "茄子溪街道",
    "500104005": "春晖路街道",
    "500104100": "八桥镇",
    "500104101": "建胜镇",
    "500104102": "跳磴镇",
}
MODELS = (District, Street, Community, Grid, Building, Household, Person, Facility)


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker):
    # The production password hasher would spend a second on the demo accounts per load.
    with (
        django_db_blocker.unblock(),
        override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]),
        transaction.atomic(),
    ):
        call_command("load_demo", scale=SCALE, verbosity=0)
        yield
        transaction.set_rollback(True)


@pytest.fixture
def loaded(demo, db):
    """The module's demo, seen from inside a test's own savepoint."""


def _rows(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _demo_counts() -> dict[str, int]:
    return {model.__name__: model.objects.filter(is_demo=True).count() for model in MODELS}


def _fingerprint() -> dict[str, list]:
    """Everything a reload must reproduce exactly: codes, geometries, ID look-up hashes."""
    return {
        "grids": _rows(
            "SELECT code, name, encode(ST_AsBinary(geom), 'hex') FROM geodata_grid WHERE is_demo ORDER BY code"
        ),
        "communities": _rows(
            "SELECT code, name, encode(ST_AsBinary(geom), 'hex') FROM geodata_community WHERE is_demo ORDER BY code"
        ),
        "buildings": _rows(
            "SELECT code, address, floors, encode(ST_AsBinary(footprint), 'hex') FROM geodata_building"
            " WHERE is_demo ORDER BY code"
        ),
        "households": list(Household.objects.filter(is_demo=True).order_by("code").values_list("code", "head_name")),
        "persons": list(Person.objects.filter(is_demo=True).order_by("id_number_hash").values_list("id_number_hash")),
        "facilities": _rows(
            "SELECT code, status, encode(ST_AsBinary(location), 'hex') FROM geodata_facility"
            " WHERE is_demo ORDER BY code"
        ),
    }


# --- regions and grids ------------------------------------------------------------------------


def test_streets_are_the_real_ones_labelled_as_demo(loaded):
    district = District.objects.get()
    assert (district.code, district.name, district.is_demo) == ("500104", "大渡口区（示例）", True)
    streets = {s.code: s for s in Street.objects.all()}
    assert {code: s.name for code, s in streets.items()} == {
        code: f"{name}（示例）" for code, name in STREET_CODES.items()
    }
    assert all(s.is_demo for s in streets.values())
    assert all(c.name.endswith("（示例）") and c.is_demo for c in Community.objects.all())


def test_the_district_is_the_real_boundary_from_cnmaps(loaded):
    # 大渡口区 covers about 103 km² between 106.389 and 106.531 E.
    ((area_km2, west, east),) = _rows(
        "SELECT ST_Area(geom::geography) / 1e6, ST_XMin(geom), ST_XMax(geom) FROM geodata_district"
    )
    assert 100 < area_km2 < 106
    assert (round(west, 3), round(east, 3)) == (106.389, 106.531)


@pytest.mark.parametrize(
    ("child", "parent", "link"),
    [
        ("geodata_street", "geodata_district", "district_id"),
        ("geodata_community", "geodata_street", "street_id"),
        ("geodata_grid", "geodata_community", "community_id"),
    ],
)
def test_each_level_tiles_its_parent_with_no_gap_and_no_overlap(loaded, child, parent, link):
    # No gap: the union of the children equals the parent (symmetric difference < 0.01 m²),
    # measured in the plane PostGIS reads the stored coordinates in, converted to m² with the
    # parent's own m² per square degree (docs/grid_design.md, "Exact tiling in storage": on
    # geography, an edge split at a vertex would "differ" from the same edge unsplit).
    gaps = _rows(
        f"""SELECT p.code, ST_Area(ST_SymDifference(p.geom, ST_Union(c.geom)))
                           * (ST_Area(p.geom::geography) / ST_Area(p.geom))
            FROM {parent} p JOIN {child} c ON c.{link} = p.id GROUP BY p.id"""  # noqa: S608
    )
    assert gaps and max(area for _, area in gaps) < 0.01
    # No overlap: no two children share interior points.
    overlaps = _rows(
        f"""SELECT a.code, b.code FROM {child} a JOIN {child} b
            ON a.id < b.id AND a.geom && b.geom AND ST_Relate(a.geom, b.geom, 'T********')"""  # noqa: S608
    )
    assert overlaps == []


def test_every_grid_is_one_valid_polygon_coded_under_its_community(loaded):
    grids = _rows(
        """SELECT g.code, c.code, GeometryType(g.geom), ST_IsValid(g.geom), g.area_m2
           FROM geodata_grid g JOIN geodata_community c ON c.id = g.community_id ORDER BY g.code"""
    )
    assert len(grids) >= 150
    for code, community_code, kind, valid, area in grids:
        assert re.fullmatch(r"[0-9]{15}", code) and code[:12] == community_code
        assert (kind, valid) == ("POLYGON", True)
        assert area > 0
    # Serials run 001, 002, ... without holes inside each community.
    serials: dict[str, list[int]] = {}
    for code, community_code, *_ in grids:
        serials.setdefault(community_code, []).append(int(code[12:]))
    assert all(s == list(range(1, len(s) + 1)) for s in serials.values())


def test_the_dense_street_has_designed_grids_and_the_others_a_few_per_community(loaded):
    per_community = dict(Community.objects.filter(is_demo=True).values_list("code").annotate(n=Count("grids")))
    dense = {code: n for code, n in per_community.items() if code.startswith(DENSE_STREET)}
    light = {code: n for code, n in per_community.items() if not code.startswith(DENSE_STREET)}
    # 20 000 households at full size in grids of 300-500: about 50 grids (the same at 0.02,
    # where the range is 6-10 households for the 400 households of the street).
    assert len(dense) == 10 and 40 <= sum(dense.values()) <= 60 and min(dense.values()) >= 2
    assert all(2 <= n <= 6 for n in light.values())
    # Dense grids are social-governance sized (about ten hectares), not kilometres wide.
    ((median_m2,),) = _rows(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY area_m2) FROM geodata_grid WHERE code LIKE %s",
        [DENSE_STREET + "%"],
    )
    assert 60_000 < median_m2 < 250_000


def test_the_planner_page_shows_every_dense_community_balanced(loaded):
    # The selector behind /maps/design/?community=<id>, with the demo's household range.
    target = design_target(SCALE)
    assert (target.households_min, target.households_max) == (6, 10)
    communities = Community.objects.filter(code__startswith=DENSE_STREET).order_by("code")
    households = 0
    for community in communities:
        balance = current_grid_balance(community=community, target=target)
        assert balance.summary.count == Grid.objects.filter(community=community).count() >= 2
        assert balance.summary.on_target == balance.summary.count, community.code
        assert [row.label for row in balance.rows] == sorted(row.label for row in balance.rows)
        households += sum(row.households for row in balance.rows)
    assert households == Household.objects.filter(building__grid__community__in=communities).count() > 0


def test_at_full_size_the_dense_street_is_designed_in_grids_of_300_to_500_households():
    # The generator alone (no database): the layout, buildings and households of the full-size
    # demo, and the dense street's grids as load_demo designs them.
    plan = DemoPlan.load()
    layout = layout_build(plan=plan, boundary=district_boundary(plan), seed=plan["seed"])
    placement = buildings_place(plan=plan, layout=layout, seed=plan["seed"], scale=1.0)
    design = dense_grids_design(plan=plan, layout=layout, placement=placement, scale=1.0)
    households: dict[str, int] = {}
    for building, grid_code in zip(placement.buildings, design.grid_of, strict=True):
        households[grid_code] = households.get(grid_code, 0) + len(building.households)
    dense = [g.code for g in design.layout.grids if g.code.startswith(DENSE_STREET)]
    assert sum(households[code] for code in dense) == plan["dense"]["households"]
    # The planner page's default target (300-500 households) is met by every grid.
    target = DesignTarget.by_households()
    assert design_target(1.0) == target
    assert all(target.is_met(households=households[code], area_m2=0) for code in dense)
    assert 40 <= len(dense) <= 60
    # Light streets keep their Voronoi grids; dense blocks are not grids.
    assert len(design.layout.grids) == len(layout.grids) + len(dense)
    assert not any(code.startswith(DENSE_STREET) for code in (g.code for g in layout.grids))


def test_grid_serials_run_west_to_east_then_north_to_south(loaded):
    metric = settings.METRIC_SRID
    rows = _rows(
        f"""SELECT c.code, g.code, ST_X(ST_Centroid(ST_Transform(g.geom, {metric}))),
                   ST_Y(ST_Centroid(ST_Transform(g.geom, {metric}))), ST_Area(ST_Transform(g.geom, {metric}))
            FROM geodata_grid g JOIN geodata_community c ON c.id = g.community_id ORDER BY g.code"""  # noqa: S608
    )
    by_community: dict[str, list[tuple]] = {}
    for community, code, x, y, area in rows:
        by_community.setdefault(community, []).append((code, x, y, area))
    for grids in by_community.values():
        order = serial_order(centroids=[(x, y) for _, x, y, _ in grids], areas=[a for *_, a in grids])
        assert order == list(range(len(grids)))
    # By hand, on the dense street's first community: grid 001 lies in the top row (within
    # half a typical grid of the northernmost centroid) and is the westernmost of that row.
    grids = by_community[DENSE_STREET + "001"]
    band = math.sqrt(statistics.median(a for *_, a in grids))
    top = max(y for _, _, y, _ in grids)
    first = grids[0]
    assert top - first[2] < band / 2
    assert all(first[1] <= x for _, x, y, _ in grids if top - y < band / 2)


# --- buildings, households, persons --------------------------------------------------------


def test_every_building_lies_wholly_inside_its_grid(loaded):
    assert Building.objects.filter(is_demo=True).count() > 20
    outside = _rows(
        """SELECT b.code FROM geodata_building b LEFT JOIN geodata_grid g ON g.id = b.grid_id
           WHERE b.is_demo AND (g.id IS NULL OR NOT ST_CoveredBy(b.footprint, g.geom)
                                OR NOT ST_Intersects(b.location, b.footprint)
                                OR left(b.code, 15) <> g.code)"""
    )
    assert outside == []
    # Nor does any footprint cross into a neighbouring grid, or overlap another building.
    crossing = _rows(
        """SELECT b.code FROM geodata_building b JOIN geodata_grid g
           ON g.id <> b.grid_id AND g.geom && b.footprint AND ST_Relate(g.geom, b.footprint, 'T********')
           WHERE b.is_demo"""
    )
    assert crossing == []
    assert (
        _rows(
            """SELECT a.code FROM geodata_building a JOIN geodata_building b
           ON a.id < b.id AND a.footprint && b.footprint AND ST_Intersects(a.footprint, b.footprint)"""
        )
        == []
    )


def test_households_take_their_buildings_grid_and_have_encrypted_phones(loaded):
    households = list(Household.objects.filter(is_demo=True).select_related("building"))
    assert households
    for household in households:
        assert household.grid_id == household.building.grid_id
        assert household.code.startswith(household.building.code)
        assert household.household_type in Household.Type.values
        phone = pii.decrypt(household.phone_encrypted)
        assert household.phone_masked == pii.mask_phone(phone)
        assert phone == "" or pii.normalize_phone(phone) == phone
    assert {h.household_type for h in households} == set(Household.Type.values)


def test_id_numbers_are_valid_unique_and_consistent_with_birth_date_and_sex(loaded):
    persons = list(Person.objects.filter(is_demo=True))
    assert len(persons) > 1000
    seen = set()
    for person in persons:
        id_number = pii.decrypt(person.id_number_encrypted)
        assert pii.normalize_id_number(id_number) == id_number  # GB 11643 check character
        assert pii.birth_date_from_id_number(id_number) == person.birth_date
        assert int(id_number[16]) % 2 == (1 if person.sex == Person.Sex.MALE else 0)
        assert person.id_number_hash == pii.lookup_hash(id_number)
        assert person.id_number_masked == pii.mask_id_number(id_number)
        assert id_number not in person.id_number_masked
        seen.add(id_number)
    assert len(seen) == len(persons)
    # Nothing in clear in the table: the encrypted column is a Fernet token.
    assert all(p.id_number_encrypted.startswith("gAAAA") for p in persons)


def test_the_age_pyramid_is_realistic_and_lone_elderly_are_tagged(loaded):
    reference = dt.date(2026, 6, 30)
    persons = list(Person.objects.filter(is_demo=True).select_related("household"))
    ages = [(reference - p.birth_date).days // 365 for p in persons]
    share = lambda low, high: sum(low <= a <= high for a in ages) / len(ages)  # noqa: E731
    assert 0.10 < share(0, 14) < 0.22
    assert 0.14 < share(60, 120) < 0.30
    assert max(ages) < 100
    sizes = dict(Household.objects.filter(is_demo=True).values_list("id").annotate(n=Count("persons")))
    for person, age in zip(persons, ages, strict=True):
        alone_and_old = sizes[person.household_id] == 1 and age >= 60
        assert (PersonTag.ELDERLY_ALONE in person.tags) == alone_and_old
    assert any(PersonTag.ELDERLY_ALONE in p.tags for p in persons)


# --- facilities and departments ---------------------------------------------------------------


def test_facility_codes_are_county_category_and_serial(loaded):
    facilities = list(Facility.objects.filter(is_demo=True).select_related("facility_type", "grid"))
    assert len(facilities) > 50
    serials: dict[str, list[int]] = {}
    for facility in facilities:
        kind = facility.facility_type
        assert re.fullmatch(r"[0-9]{16}", facility.code)
        assert facility.code[:10] == "500104" + kind.major_code + kind.minor_code
        serials.setdefault(facility.code[:10], []).append(int(facility.code[10:]))
        assert facility.grid is not None and facility.grid.geom.covers(facility.location)
        assert facility.maintainer_department_id and facility.manager_department_id and facility.owner_department_id
        assert facility.status in Facility.Status.values
    assert all(sorted(s) == list(range(1, len(s) + 1)) for s in serials.values())


def test_grids_are_the_responsibility_of_their_community_committee(loaded):
    for grid in Grid.objects.filter(is_demo=True).select_related("responsible_unit", "community"):
        unit = grid.responsible_unit
        assert unit.code == f"JW{grid.community.code}" and unit.kind == Department.Kind.RESPONSIBLE_UNIT
        assert unit.name.startswith(grid.community.name.removesuffix("（示例）"))


def test_the_catalogue_matches_the_case_categories_and_loads_idempotently(loaded):
    entries = catalogue_entries()
    assert FacilityType.objects.count() == len(entries) >= 70
    categories = json.loads((settings.BASE_DIR / "fixtures" / "categories.json").read_text())["categories"]
    names = {(t.major_code, t.minor_code): (t.major_name, t.minor_name) for t in FacilityType.objects.all()}
    for category in (c for c in categories if c["kind"] == "C"):
        key = (category["major_code"], category["minor_code"])
        assert names[key] == (category["major_name"], category["minor_name"])
    out = io.StringIO()
    call_command("load_catalogue", stdout=out)
    assert "新增 0 个，更新 0 个" in out.getvalue()
    assert FacilityType.objects.count() == len(entries)
    # A local renaming survives a plain reload of the catalogue; --overwrite restores the file's name.
    FacilityType.objects.filter(major_code="01", minor_code="20").update(minor_name="道路照明灯")
    call_command("load_catalogue", verbosity=0)
    assert FacilityType.objects.get(major_code="01", minor_code="20").minor_name == "道路照明灯"
    call_command("load_catalogue", overwrite=True, verbosity=0)
    assert FacilityType.objects.get(major_code="01", minor_code="20").minor_name == "路灯"


# --- idempotency and determinism -------------------------------------------------------------


def test_a_second_run_changes_nothing(loaded):
    before_counts, before = _demo_counts(), _fingerprint()
    out = io.StringIO()
    call_command("load_demo", scale=SCALE, stdout=out, stderr=io.StringIO())
    assert "无需重复加载" in out.getvalue()
    assert _demo_counts() == before_counts
    assert _fingerprint() == before
    assert marker_read()["counts"] == {model._meta.model_name: before_counts[model.__name__] for model in MODELS}


def test_reload_regenerates_identical_codes_and_geometries(loaded):
    before_counts, before = _demo_counts(), _fingerprint()
    worker = User.objects.get(username="demo_grid_worker")
    assigned = sorted(worker.grid_assignments.values_list("grid__code", flat=True))
    # A user of the street office scoped to the demo street (outside the demo) must keep it.
    clerk = User.objects.create(username="clerk", role=Role.OPERATOR, street=Street.objects.get(code=DENSE_STREET))

    call_command("load_demo", scale=SCALE, reload=True, verbosity=0)

    assert _demo_counts() == before_counts
    assert _fingerprint() == before
    assert sorted(worker.grid_assignments.values_list("grid__code", flat=True)) == assigned
    clerk.refresh_from_db()
    assert clerk.street.code == DENSE_STREET and clerk.street.is_demo


def test_a_different_scale_replaces_the_demo_instead_of_adding_to_it(loaded):
    small = _demo_counts()
    call_command("load_demo", scale=SCALE * 2, verbosity=0)
    bigger = _demo_counts()
    assert bigger["Grid"] == small["Grid"] and bigger["District"] == 1
    assert bigger["Person"] > small["Person"] and bigger["Building"] > small["Building"]
    assert marker_read()["scale"] == SCALE * 2


def test_a_demo_referred_to_by_the_append_only_reveal_log_is_kept_unless_reload_is_forced(loaded):
    person = Person.objects.filter(is_demo=True).first()
    PersonalDataReveal.objects.create(
        user=User.objects.get(username="demo_admin"), person=person, field="id_number", reason="演示"
    )
    before = _demo_counts()
    err = io.StringIO()
    # A different demo (another seed) has other persons: the log cannot follow the person.
    call_command("load_demo", scale=SCALE, seed=7, stdout=io.StringIO(), stderr=err)
    assert "保留现有示例数据" in err.getvalue()
    assert _demo_counts() == before and Person.objects.filter(pk=person.pk).exists()
    with pytest.raises(CommandError, match="个人信息查看记录"):
        call_command("load_demo", scale=SCALE, seed=7, reload=True, verbosity=0)
    assert _demo_counts() == before


def test_scale_out_of_range_is_refused(loaded):
    with pytest.raises(CommandError, match="--scale"):
        call_command("load_demo", scale=0, verbosity=0)


def test_the_demo_never_mixes_with_a_real_district_of_the_same_code(loaded):
    # Given a real (non-demo) 大渡口区 in the register...
    District.objects.update(is_demo=False)
    before = _demo_counts()
    with pytest.raises(CommandError, match="已有真实的区县 500104"):
        call_command("load_demo", scale=SCALE, reload=True, verbosity=0)
    assert _demo_counts() == before


def test_a_missing_facility_category_is_reported_and_nothing_changes(loaded):
    before = _demo_counts()
    Facility.objects.filter(facility_type__major_code="01", facility_type__minor_code="20").delete()
    FacilityType.objects.filter(major_code="01", minor_code="20").delete()
    with pytest.raises(DemoLoadError, match=r"0120.*load_catalogue"):
        demo_load(scale=SCALE, reload=True)
    assert _demo_counts() == {**before, "Facility": Facility.objects.filter(is_demo=True).count()}
    assert Grid.objects.filter(is_demo=True).count() == before["Grid"]


# --- demo accounts ------------------------------------------------------------------------------


def test_one_demo_account_per_role_scoped_to_the_dense_street(loaded):
    users = {u.username: u for u in User.objects.filter(username__startswith="demo_")}
    assert set(users) == {spec.username for spec in DEMO_ACCOUNTS}
    assert {u.role for u in users.values()} == set(Role.values)
    street = Street.objects.get(code=DENSE_STREET)
    for name in ("demo_operator", "demo_shift_leader", "demo_dispatcher", "demo_leader", "demo_planner"):
        assert users[name].street == street and not users[name].is_staff
    handler = users["demo_department_handler"]
    assert (handler.role, handler.department.code) == (Role.DEPARTMENT_HANDLER, "ZY-HW")
    admin = users["demo_admin"]
    assert admin.is_superuser and admin.is_staff and admin.role == Role.ADMIN
    for name in ("demo_grid_worker", "demo_grid_worker2"):
        grids = Grid.objects.filter(assignments__worker=users[name])
        assert grids.count() == 2 and all(g.code.startswith(DENSE_STREET) for g in grids)
        assert users[name].street is None and users[name].community is None  # scoped by their grids
    assert GridAssignment.objects.filter(worker__username__startswith="demo_").values("grid").distinct().count() == 4
    # One documented password, accepted by the validators, for every account.
    assert len({u.password for u in users.values()}) == 1
    assert users["demo_admin"].check_password(DEMO_PASSWORD)
