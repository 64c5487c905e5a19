"""Planners' statistics on constructed data with known answers; hot spots; distances; coverage; exports."""

import csv
import datetime as dt
import io
import json
import types

import pyogrio
import pytest
from django.contrib.gis.geos import Point
from django.urls import reverse

from accounts.models import Role
from events.workflow import State
from geodata.models import Facility, FacilityType, GridAssignment, PersonTag
from maps import statistics
from maps.access import Scope
from patrol import services as patrol_services
from tests.events.factories import CategoryFactory, local
from tests.factories import ORIGIN, FacilityFactory, UserFactory, tiled_district
from tests.maps.helpers import cases, household, residents

pytestmark = pytest.mark.django_db

X0, Y0 = ORIGIN
ALL = Scope()


# --- counts and series ---------------------------------------------------------------------


@pytest.fixture
def history(world):
    """Grid 1: 2 in Oct + 1 in Nov of the category, 1 in Nov of another; grid 3: 3 in Nov, 1 voided, 1 merged-away."""
    g1, _, g3, _ = world.grids
    other = CategoryFactory(minor_code="03", minor_name="道路不洁")
    cases(g1, 2, category=world.category, reported_at=local(2026, 10, 5, 9, 0))
    cases(g1, 1, category=world.category, reported_at=local(2026, 11, 3, 9, 0))
    cases(g1, 1, category=other, reported_at=local(2026, 11, 30, 23, 30))  # local time: still November
    cases(g3, 3, category=world.category, reported_at=local(2026, 11, 10, 9, 0), state=State.CLOSED)
    cases(g3, 1, category=world.category, reported_at=local(2026, 11, 10, 9, 0), state=State.VOIDED)
    return types.SimpleNamespace(world=world, other=other)


def test_counts_per_grid_category_and_month(history):
    w = history.world
    rows = statistics.case_counts(
        user=w.planner, scope=ALL, first_day=dt.date(2026, 10, 1), last_day=dt.date(2026, 11, 30)
    )
    assert [(r["code"][-3:], r["category_code"], r["month"], r["count"]) for r in rows] == [
        ("001", "E0102", "2026-10", 2),
        ("001", "E0102", "2026-11", 1),
        ("001", "E0103", "2026-11", 1),
        ("003", "E0102", "2026-11", 3),
    ]


def test_counts_per_community_and_street_without_months(history):
    w = history.world
    by_street = statistics.case_counts(
        user=w.planner,
        scope=ALL,
        first_day=dt.date(2026, 10, 1),
        last_day=dt.date(2026, 11, 30),
        level="street",
        by_month=False,
        by_category=False,
    )
    assert by_street == [
        {"level": "street", "region_id": w.street.pk, "code": "500104001", "name": "测试街道", "count": 7}
    ]
    by_community = statistics.case_counts(
        user=w.operator, scope=ALL, first_day=dt.date(2026, 11, 1), last_day=dt.date(2026, 11, 30), level="community"
    )
    assert [(r["category_code"], r["count"]) for r in by_community] == [("E0102", 4), ("E0103", 1)]
    assert (
        statistics.case_counts(
            user=w.outside_operator, scope=ALL, first_day=dt.date(2026, 10, 1), last_day=dt.date(2026, 11, 30)
        )
        == []
    )


def test_monthly_weekly_and_daily_series_have_zeros_where_nothing_happened(history):
    w = history.world
    months = statistics.case_series(
        user=w.planner, scope=ALL, first_day=dt.date(2026, 9, 15), last_day=dt.date(2026, 11, 30)
    )
    assert months == [
        {"period": "2026-09-01", "count": 0},
        {"period": "2026-10-01", "count": 2},
        {"period": "2026-11-01", "count": 5},
    ]
    weeks = statistics.case_series(
        user=w.planner, scope=ALL, first_day=dt.date(2026, 11, 1), last_day=dt.date(2026, 11, 16), interval="week"
    )
    # Mondays: 26 Oct (holds 1 and 3 Nov... 1 Nov is a Sunday), 2 Nov, 9 Nov, 16 Nov
    assert weeks == [
        {"period": "2026-10-26", "count": 0},
        {"period": "2026-11-02", "count": 1},
        {"period": "2026-11-09", "count": 3},
        {"period": "2026-11-16", "count": 0},
    ]
    days = statistics.case_series(
        user=w.planner,
        scope=ALL,
        first_day=dt.date(2026, 11, 9),
        last_day=dt.date(2026, 11, 11),
        interval="day",
        category_id=w.category.pk,
    )
    assert [d["count"] for d in days] == [0, 3, 0]


# --- hot spots -----------------------------------------------------------------------------


@pytest.fixture
def lattice(db):
    """An 8 x 8 block of grids (serials row by row from the north-west)."""
    district = tiled_district(rows=8, cols=8, cell=0.002)
    grids = district["grids"]
    return types.SimpleNamespace(**district, cell=lambda row, col: grids[row * 8 + col])


# A deterministic, patternless background of 1-3 incidents per grid.
BACKGROUND = [(row * 5 + col * 3 + (row * col) % 4) % 3 + 1 for row in range(8) for col in range(8)]
CLUSTER = {(r, c) for r in (2, 3) for c in (4, 5)}  # 4 of 64 grids, 12 incidents each


def plant(lattice, *, cluster: bool):
    category = CategoryFactory()
    for row in range(8):
        for col in range(8):
            n = 12 if cluster and (row, col) in CLUSTER else BACKGROUND[row * 8 + col]
            cases(lattice.cell(row, col), n, category=category, reported_at=local(2026, 11, 10, 9, 0))


def ring(cells):
    """The cells and their queen neighbours."""
    return {(r + dr, c + dc) for r, c in cells for dr in (-1, 0, 1) for dc in (-1, 0, 1)}


def kinds(spots, lattice):
    position = {lattice.cell(r, c).pk: (r, c) for r in range(8) for c in range(8)}
    found: dict[str, set] = {}
    for spot in spots:
        found.setdefault(spot.kind, set()).add(position[spot.grid_id])
    return found


def test_gi_star_finds_the_planted_cluster_and_nothing_else(lattice):
    plant(lattice, cluster=True)
    planner = UserFactory(role=Role.PLANNER)
    spots = statistics.hot_spots(
        user=planner, scope=ALL, first_day=dt.date(2026, 11, 1), last_day=dt.date(2026, 11, 30), normalise="area"
    )
    found = kinds(spots, lattice)
    assert found["hot"] == CLUSTER  # every planted grid is a significant hot spot, and nothing else is
    assert "cold" not in found
    centre = next(s for s in spots if s.grid_id == lattice.cell(2, 4).pk)
    assert centre.incidents == 12 and centre.p_value <= 0.01 and centre.statistic > 3


def test_local_moran_finds_the_planted_cluster_as_high_high(lattice):
    plant(lattice, cluster=True)
    planner = UserFactory(role=Role.PLANNER)
    spots = statistics.hot_spots(
        user=planner,
        scope=ALL,
        first_day=dt.date(2026, 11, 1),
        last_day=dt.date(2026, 11, 30),
        method="moran",
    )
    found = kinds(spots, lattice)
    assert (2, 5) in found["hot"]
    assert found["hot"] <= CLUSTER
    assert set(found) <= {"hot", "none", "low_high"}
    assert found.get("low_high", set()) <= ring(CLUSTER)


def test_no_hot_spot_where_none_was_planted(lattice):
    plant(lattice, cluster=False)
    planner = UserFactory(role=Role.PLANNER)
    for method in ("gi_star", "moran"):
        spots = statistics.hot_spots(
            user=planner,
            scope=ALL,
            first_day=dt.date(2026, 11, 1),
            last_day=dt.date(2026, 11, 30),
            method=method,
        )
        assert {s.kind for s in spots} == {"none"}, method
        assert len(spots) == 64


def test_hot_spots_per_resident_leave_out_grids_with_too_few_residents(world):
    g1, g2, g3, g4 = world.grids
    residents(g1, 100)
    residents(g2, 100)
    residents(g3, 4)  # too few for a rate
    cases(g1, 5, reported_at=local(2026, 11, 10, 9, 0))
    spots = {
        s.grid_id: s
        for s in statistics.hot_spots(
            user=world.planner,
            scope=ALL,
            first_day=dt.date(2026, 11, 1),
            last_day=dt.date(2026, 11, 30),
            normalise="population",
        )
    }
    assert spots[g1.pk].value == 50.0 and spots[g2.pk].value == 0.0
    assert spots[g3.pk].kind == "excluded" and spots[g3.pk].value is None
    assert spots[g4.pk].kind == "excluded"


def test_neighbours_are_found_by_postgis_with_queen_contiguity(world):
    g1, g2, g3, g4 = world.grids
    neighbours = statistics.grid_neighbours(grid_ids=[g.pk for g in world.grids])
    assert sorted(neighbours[g1.pk]) == sorted([g2.pk, g3.pk, g4.pk])  # g4 touches g1 at a corner only


# --- within-distance questions -------------------------------------------------------------


@pytest.fixture
def health(world):
    """A 社区卫生服务站 at the south-west corner; elderly residents at known distances from it."""
    station = FacilityType.objects.create(
        major_code="07", major_name="公共服务", minor_code="01", minor_name="社区卫生服务站"
    )
    FacilityFactory(facility_type=station, location=Point(X0, Y0, srid=4326), grid=world.grid_sw)
    # a decommissioned station far north-east does not count
    FacilityFactory(
        facility_type=station,
        location=Point(X0 + 0.0039, Y0 + 0.0039, srid=4326),
        grid=world.grids[1],
        status=Facility.Status.DECOMMISSIONED,
    )
    old = {"birth_date": dt.date(1940, 1, 1)}
    near = Point(X0 + 0.003, Y0, srid=4326)  # ≈ 291 m east of the station
    far = Point(X0 + 0.0036, Y0 + 0.0036, srid=4326)  # ≈ 524 m north-east
    household(world.grids[3], point=near, persons=[old])  # alone, near
    household(world.grids[1], point=far, persons=[old])  # alone, far        -> counted
    household(world.grids[1], point=far, persons=[{**old, "tags": [PersonTag.ELDERLY_ALONE]}, {}])  # tagged -> counted
    household(world.grids[1], point=far, persons=[old, old])  # two old people together: not alone
    household(world.grids[1], point=far, persons=[{"birth_date": dt.date(1950, 1, 1)}])  # 76: too young
    household(world.grids[0], point=Point(X0 + 0.0005, Y0 + 0.0036, srid=4326), persons=[old])  # ≈ 402 m north
    return types.SimpleNamespace(world=world, station=station)


def test_elderly_living_alone_farther_than_500_m_from_a_health_station(health):
    counted = statistics.elderly_alone_far_from(
        scope=ALL, facility_type_id=health.station.pk, metres=500, min_age=80, day=dt.date(2026, 11, 16)
    )
    assert counted == {health.world.grids[1].pk: 2}
    within_400 = statistics.elderly_alone_far_from(
        scope=ALL, facility_type_id=health.station.pk, metres=400, min_age=80, day=dt.date(2026, 11, 16)
    )
    assert within_400 == {health.world.grids[1].pk: 2, health.world.grids[0].pk: 1}


def test_households_within_300_m_of_a_facility_type(health):
    near = statistics.households_near(
        scope=ALL, facility_type_id=health.station.pk, metres=300, day=dt.date(2026, 11, 16)
    )
    g1, g2, _, g4 = health.world.grids
    assert near == {
        g4.pk: {"households": 1, "within": 1},
        g2.pk: {"households": 4, "within": 0},
        g1.pk: {"households": 1, "within": 0},
    }
    assert statistics.households_near(
        scope=Scope(grid_ids=frozenset({g4.pk})),
        facility_type_id=health.station.pk,
        metres=300,
        day=dt.date(2026, 11, 16),
    ) == {g4.pk: {"households": 1, "within": 1}}


def test_the_distance_api_suppresses_small_counts_and_never_names_anybody(health, client):
    client.force_login(health.world.planner)
    response = client.get(
        reverse("maps:stats_distance"),
        {"question": "elderly_alone_far", "facility_type": health.station.pk, "last_day": "2026-11-16"},
    )
    data = response.json()
    assert [(r["code"][-3:], r["persons"]) for r in data["rows"]] == [("002", None)]  # 2 < 5: suppressed
    assert data["suppressed"] == ["persons"]
    body = response.content.decode()
    assert "居民" not in body and "1940" not in body


# --- patrol coverage -----------------------------------------------------------------------


def test_patrol_coverage_per_day_and_week_beside_the_cases_found(world):
    worker = world.grid_worker  # grid 3: the south-west cell, 0.002° square
    start = local(2026, 11, 16, 9, 0)
    session, _ = patrol_services.patrol_start(worker=worker, at=start)
    # a walk along the middle of grid 3, west to east
    points = [
        {"lon": X0 + 0.0002 * i, "lat": Y0 + 0.001, "recorded_at": (start + dt.timedelta(seconds=30 * i)).isoformat()}
        for i in range(11)
    ]
    patrol_services.patrol_points_record(worker=worker, session_id=session.pk, points=points)
    patrol_services.patrol_stop(worker=worker, session_id=session.pk, at=start + dt.timedelta(minutes=10))
    cases(world.grid_sw, 2, reported_at=local(2026, 11, 16, 9, 5))
    cases(world.grid_sw, 1, reported_at=local(2026, 11, 17, 9, 5))
    cases(world.grid_sw, 1, reported_at=local(2026, 11, 16, 9, 5), source="hotline")  # not found by a worker
    days = statistics.patrol_coverage_table(
        user=world.planner, scope=ALL, first_day=dt.date(2026, 11, 16), last_day=dt.date(2026, 11, 17)
    )
    by_day = {(r["period"], r["grid_id"]): r for r in days}
    monday = by_day[("2026-11-16", world.grid_sw.pk)]
    # a 50 m wide corridor across a ≈ 194 m x 222 m grid sweeps about a quarter of it
    assert 0.2 < monday["covered_share"] < 0.3
    assert monday["cases_found"] == 2
    assert by_day[("2026-11-17", world.grid_sw.pk)]["covered_share"] == 0.0
    assert by_day[("2026-11-17", world.grid_sw.pk)]["cases_found"] == 1
    assert by_day[("2026-11-16", world.grids[0].pk)]["covered_share"] == 0.0  # other_worker did not walk
    weeks = statistics.patrol_coverage_table(
        user=world.planner, scope=ALL, first_day=dt.date(2026, 11, 16), last_day=dt.date(2026, 11, 22), period="week"
    )
    week = next(r for r in weeks if r["grid_id"] == world.grid_sw.pk)
    assert week["period"] == "2026-11-16" and week["covered_share"] == monday["covered_share"]
    assert week["cases_found"] == 3
    assert GridAssignment.objects.count() == 2


# --- grid profile, suppression and exports -------------------------------------------------


@pytest.fixture
def profile(world):
    g1, _, g3, _ = world.grids
    residents(g1, 12, birth_date=dt.date(1940, 1, 1))
    residents(g1, 8, tags=[PersonTag.LOW_INCOME])
    residents(g3, 3)
    return world


def test_the_grid_profile_counts_and_its_suppression(profile):
    rows = {r["code"][-3:]: r for r in statistics.grid_profile(scope=ALL, day=dt.date(2026, 11, 16))}
    assert (rows["001"]["population"], rows["001"]["households"], rows["001"]["aged_80"], rows["001"]["aged_60"]) == (
        20,
        2,
        12,
        12,
    )
    assert rows["001"]["tag_low_income"] == 8 and rows["003"]["population"] == 3
    suppressed = {
        r["code"][-3:]: r for r in statistics.suppress(list(rows.values()), fields=statistics.PROFILE_POPULATION_FIELDS)
    }
    assert suppressed["001"]["population"] == 20 and suppressed["001"]["households"] is None  # 2 households
    assert suppressed["001"]["population_density"] == rows["001"]["population_density"]
    assert suppressed["003"]["population"] is None and suppressed["003"]["population_density"] is None
    assert suppressed["001"]["tag_elderly_alone"] is None  # 0 is under 5 as well
    assert rows["003"]["population"] == 3  # the source rows are not changed


def test_csv_export_writes_suppressed_counts_as_under_five(profile, client):
    client.force_login(profile.planner)
    response = client.get(reverse("maps:stats_export", args=["profile", "csv"]), {"last_day": "2026-11-16"})
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="profile-')
    text = response.content.decode("utf-8-sig")
    table = list(csv.DictReader(io.StringIO(text)))
    first = next(r for r in table if r["网格编码"].endswith("001"))
    third = next(r for r in table if r["网格编码"].endswith("003"))
    assert (first["实有人口"], first["户数"], first["80岁及以上"], first["低保"]) == ("20", "<5", "12", "8")
    assert (third["实有人口"], third["人口密度(人/km²)"]) == ("<5", "<5")
    assert "居民" not in text


def test_geojson_export_is_built_by_postgis_with_the_suppressed_values_null(profile, client):
    client.force_login(profile.planner)
    response = client.get(reverse("maps:stats_export", args=["profile", "geojson"]), {"last_day": "2026-11-16"})
    data = json.loads(response.content)
    assert data["type"] == "FeatureCollection" and len(data["features"]) == 4
    first = next(f for f in data["features"] if f["properties"]["code"].endswith("001"))
    assert first["properties"]["population"] == 20 and first["properties"]["households"] is None
    assert first["geometry"]["type"] == "Polygon"
    assert first["geometry"]["coordinates"][0][0] == pytest.approx([X0, Y0 + 0.002])


def test_geopackage_export_opens_in_gdal(profile, client, tmp_path):
    client.force_login(profile.planner)
    response = client.get(reverse("maps:stats_export", args=["profile", "gpkg"]), {"last_day": "2026-11-16"})
    path = tmp_path / "profile.gpkg"
    path.write_bytes(response.content)
    frame = pyogrio.read_dataframe(path, layer="profile")
    assert len(frame) == 4 and frame.crs.to_epsg() == 4326
    first = frame[frame["code"].str.endswith("001")].iloc[0]
    assert first["population"] == 20
    assert frame[frame["code"].str.endswith("003")]["population"].isna().all()


def test_counts_and_hotspots_export_as_csv(history, client):
    client.force_login(history.world.planner)
    response = client.get(
        reverse("maps:stats_export", args=["counts", "csv"]),
        {"first_day": "2026-10-01", "last_day": "2026-11-30", "level": "street"},
    )
    table = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert table[0] == ["街道编码", "名称", "类别编码", "类别", "月份", "案件数"]
    assert table[1:] == [
        ["500104001", "测试街道", "E0102", "市容环境/暴露垃圾", "2026-10", "2"],
        ["500104001", "测试街道", "E0102", "市容环境/暴露垃圾", "2026-11", "4"],
        ["500104001", "测试街道", "E0103", "市容环境/道路不洁", "2026-11", "1"],
    ]
    hot = client.get(reverse("maps:stats_hotspots"), {"first_day": "2026-11-01", "last_day": "2026-11-30"}).json()
    assert len(hot["rows"]) == 4 and {r["kind"] for r in hot["rows"]} == {"none"}


def test_statistics_are_for_planners_leaders_and_administrators(world, client):
    for user, status in ((world.planner, 200), (world.leader, 200), (world.grid_worker, 403), (world.operator, 403)):
        client.force_login(user)
        assert client.get(reverse("maps:statistics")).status_code == status
        assert client.get(reverse("maps:stats_counts")).status_code == status
        assert client.get(reverse("maps:stats_export", args=["profile", "csv"])).status_code == status


def test_the_counts_api_answers_in_a_fixed_number_of_queries(history, client, django_assert_num_queries):
    client.force_login(history.world.planner)
    with django_assert_num_queries(5):  # session, user, counts, regions, categories
        data = client.get(reverse("maps:stats_counts"), {"first_day": "2026-10-01", "last_day": "2026-11-30"}).json()
    assert sum(r["count"] for r in data["rows"]) == 7
