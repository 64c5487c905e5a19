"""The dashboard's endpoints: vector tiles, layer values, markers, live changes, panels, scope."""

import datetime as dt
from pathlib import Path

import pyogrio
import pytest
from django.contrib.gis.geos import Polygon
from django.db import connection
from django.urls import reverse

from accounts.models import Role
from events import services
from events.models import Case
from events.workflow import State
from geodata.models import Facility, GridAssignment, PersonTag
from maps import selectors
from maps.access import Scope, user_scope
from maps.selectors import CaseFilter
from patrol import services as patrol_services
from tests.events.factories import POINT_NW, POINT_SW, jpeg, local
from tests.factories import ORIGIN, FacilityFactory, UserFactory
from tests.maps.helpers import cases, household, residents

pytestmark = pytest.mark.django_db

NOV = CaseFilter(first_day=dt.date(2026, 11, 1), last_day=dt.date(2026, 11, 30), state="all")
OPEN = CaseFilter(first_day=dt.date(2026, 11, 1), last_day=dt.date(2026, 11, 30), state="open")


def decode_tile(tmp_path: Path, body: bytes, z: int, x: int, y: int):
    """Read a tile with GDAL's MVT driver (georeferenced from its z/x/y path)."""
    path = tmp_path / str(z) / str(x) / f"{y}.pbf"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return pyogrio.read_dataframe(path, layer="grids").to_crs(4326)


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    import math

    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


# --- tiles ------------------------------------------------------------------------------


def test_the_grid_tile_holds_the_valid_grids_of_the_scope_with_id_and_code_only(world, client, tmp_path):
    z = 14
    x, y = tile_of(ORIGIN[0] + 0.002, ORIGIN[1] + 0.002, z)
    client.force_login(world.operator)
    response = client.get(reverse("maps:grid_tiles", args=[z, x, y]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.mapbox-vector-tile"
    frame = decode_tile(tmp_path, response.content, z, x, y)
    assert sorted(frame["code"]) == sorted(g.code for g in world.grids)
    assert set(frame.columns) - {"mvt_id"} == {"id", "code", "geometry"}  # mvt_id: added by GDAL
    assert "第1网格".encode() not in response.content  # names stay out of the tiles
    # the tile geometry is where the grid is (to within the tile's 4096-step resolution)
    first = frame[frame["code"] == world.grids[0].code].geometry.iloc[0]
    assert abs(first.centroid.x - world.grids[0].geom.centroid.x) < 1e-4
    assert abs(first.centroid.y - world.grids[0].geom.centroid.y) < 1e-4


def test_tiles_leave_out_ended_grids_and_grids_outside_the_scope(world, client, tmp_path):
    ended = world.grids[1]
    ended.valid_to = dt.date(2021, 1, 1)
    ended.save()
    z = 14
    x, y = tile_of(ORIGIN[0] + 0.002, ORIGIN[1] + 0.002, z)
    client.force_login(world.grid_worker)  # assigned to grid 3 only
    frame = decode_tile(tmp_path / "w", client.get(reverse("maps:grid_tiles", args=[z, x, y])).content, z, x, y)
    assert list(frame["code"]) == [world.grids[2].code]
    client.force_login(world.operator)
    frame = decode_tile(tmp_path / "o", client.get(reverse("maps:grid_tiles", args=[z, x, y])).content, z, x, y)
    assert sorted(frame["code"]) == sorted(g.code for g in world.grids if g != ended)
    client.force_login(world.outside_operator)
    assert client.get(reverse("maps:grid_tiles", args=[z, x, y])).content == b""


def test_a_tile_is_one_query_and_silly_tile_numbers_are_refused(world, client, django_assert_num_queries):
    client.force_login(world.planner)
    z = 15
    x, y = tile_of(ORIGIN[0] + 0.001, ORIGIN[1] + 0.001, z)
    with django_assert_num_queries(1):
        selectors.grid_tile(scope=Scope(), z=z, x=x, y=y, day=dt.date(2026, 11, 16))
    assert client.get(reverse("maps:grid_tiles", args=[3, 1, 1])).status_code == 404
    assert client.get(reverse("maps:grid_tiles", args=[14, 2**14, 0])).status_code == 404


# The tile as it was built before the stored web-mercator copy: every grid transformed per request.
TILE_TRANSFORMED_PER_REQUEST = """
    WITH bounds AS (SELECT ST_TileEnvelope(%s, %s, %s) AS geom)
    SELECT ST_AsMVT(t, 'grids', 4096, 'geom') FROM (
        SELECT g.id, g.code, ST_AsMVTGeom(ST_Transform(g.geom, 3857), b.geom, 4096, 64, true) AS geom
        FROM geodata_grid g, bounds b
        WHERE g.geom && ST_Transform(b.geom, 4326)
          AND g.valid_from <= %s AND (g.valid_to IS NULL OR g.valid_to > %s)
    ) t WHERE t.geom IS NOT NULL
"""


def test_tiles_from_the_stored_web_mercator_copy_equal_tiles_transformed_per_request(world):
    day = dt.date(2026, 11, 16)
    lon0, lat0 = ORIGIN
    tiles = {
        (z, *tile_of(lon0 + dx, lat0 + dy, z))
        for z in (13, 14, 15, 16, 17)
        for dx in (0, 0.002, 0.004)
        for dy in (0, 0.002, 0.004)
    }
    non_empty = 0
    for z, x, y in sorted(tiles):
        with connection.cursor() as cursor:
            cursor.execute(TILE_TRANSFORMED_PER_REQUEST, [z, x, y, day, day])
            expected = bytes(cursor.fetchone()[0] or b"")
        assert selectors.grid_tile(scope=Scope(), z=z, x=x, y=y, day=day) == expected, (z, x, y)
        non_empty += bool(expected)
    assert non_empty >= 10  # the comparison covered real content, at several zooms and tile edges


def test_the_web_mercator_copy_follows_a_redrawn_grid(world):
    grid = world.grids[0]
    grid.geom = Polygon.from_bbox((ORIGIN[0], ORIGIN[1], ORIGIN[0] + 0.0005, ORIGIN[1] + 0.0005))
    grid.geom.srid = 4326
    grid.save()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT ST_SRID(geom_3857), ST_Equals(geom_3857, ST_Transform(geom, 3857)) FROM geodata_grid WHERE id = %s",
            [grid.pk],
        )
        assert cursor.fetchone() == (3857, True)


def test_the_dashboard_and_its_data_need_a_login(client, db):
    for url in (reverse("maps:dashboard"), reverse("maps:layer_values"), reverse("maps:grid_tiles", args=[14, 1, 1])):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


# --- layer values -----------------------------------------------------------------------


@pytest.fixture
def populated(world):
    """Grid 1: 10 residents in 2 households; grid 3: 3 residents in 1 household; grids 2, 4: nobody.

    Cases: grid 1 has 2 open and 1 closed in November, grid 3 has 4 open (one of them a
    different category in October) and 1 voided.
    """
    g1, _, g3, _ = world.grids
    residents(g1, 6)
    residents(g1, 4, sex="M")
    residents(g3, 3)
    cases(g1, 2)
    cases(g1, 1, state=State.CLOSED)
    cases(g3, 3)
    from tests.events.factories import CategoryFactory

    other = CategoryFactory(minor_code="03", minor_name="道路不洁")
    cases(g3, 1, category=other, reported_at=local(2026, 10, 20, 9, 0))
    cases(g3, 1, state=State.VOIDED)
    return world


def values_of(user, layer, case_filter=NOV):
    data = selectors.grid_layer_values(user=user, layer=layer, case_filter=case_filter, day=dt.date(2026, 11, 16))
    return data


@pytest.fixture
def admin(db):
    """Sees every figure exactly (the right to see residents' personal data: maps.access.sees_small_counts)."""
    return UserFactory(username="admin", role=Role.ADMIN, is_superuser=True, is_staff=True)


def test_population_households_and_density_per_grid(populated, admin):
    w = populated
    g1, g2, g3, g4 = (str(g.pk) for g in w.grids)
    assert values_of(admin, "population")["values"] == {g1: 10.0, g2: 0.0, g3: 3.0, g4: 0.0}
    assert values_of(admin, "households")["values"] == {g1: 2.0, g2: 0.0, g3: 1.0, g4: 0.0}
    area_km2 = w.grids[0].area_m2 / 1e6
    density = values_of(admin, "population_density")["values"]
    assert density[g1] == round(10 / area_km2, 2)
    assert density[g2] == 0.0
    # the street's operator may not see the residents: every figure under five is suppressed
    assert values_of(w.operator, "population")["values"] == {g1: 10.0, g2: None, g3: None, g4: None}
    assert values_of(w.operator, "households")["values"] == {g1: None, g2: None, g3: None, g4: None}
    assert values_of(w.operator, "population_density")["values"] == {g1: density[g1], g2: None, g3: None, g4: None}


def test_case_layers_count_open_cases_and_incidents_of_the_period(populated):
    w = populated
    g1, g2, g3, g4 = (str(g.pk) for g in populated.grids)
    assert values_of(w.operator, "open_cases")["values"] == {g1: 2.0, g2: 0.0, g3: 4.0, g4: 0.0}
    area_km2 = w.grids[0].area_m2 / 1e6
    # November incidents: grid 1 has 3 (2 open + 1 closed), grid 3 has 3 (the voided one is no incident)
    density = values_of(w.operator, "incident_density")["values"]
    assert density[g1] == round(3 / area_km2, 2)
    assert density[g3] == round(3 / (w.grids[2].area_m2 / 1e6), 2)
    rate = values_of(w.grid_worker, "incident_rate")["values"]  # his grid 3 (3 residents), exactly
    assert rate == {g3: 1000.0}
    october = CaseFilter(first_day=dt.date(2026, 10, 1), last_day=dt.date(2026, 10, 31), state="all")
    assert values_of(w.grid_worker, "incident_rate", october)["values"][g3] == round(1 * 1000 / 3, 2)
    # per 1 000 residents; no residents, no rate; over fewer than five residents suppressed for the
    # operator (the rate and the cases give the residents back)
    assert values_of(w.operator, "incident_rate")["values"] == {g1: 300.0, g2: None, g3: None, g4: None}
    category = CaseFilter(**{**NOV.__dict__, "category_id": w.category.pk})
    assert values_of(w.operator, "open_cases", category)["values"][g3] == 3.0


def test_layer_values_follow_the_scope_of_the_user_and_of_the_filter(populated):
    w = populated
    assert values_of(w.outside_operator, "population")["values"] == {}
    assert set(values_of(w.grid_worker, "population")["values"]) == {str(w.grid_sw.pk)}
    # a department handler sees every grid but counts only the cases of their department
    handler_open = values_of(w.handler, "open_cases")["values"]
    assert len(handler_open) == 4 and set(handler_open.values()) == {0.0}
    # narrowing to another street never widens the operator's scope
    other = CaseFilter(**{**NOV.__dict__, "street_id": w.other_street.pk})
    assert values_of(w.operator, "population", other)["values"] == {}


def test_the_legend_classes_come_from_mapclassify():
    values = {i: float(v) for i, v in enumerate([0, 0, 0, 1, 2, 3, 10, 20, 50])}
    assert selectors.classify(values, scheme="quantiles")["bins"] == [0.0, 1.2, 2.8, 14.0, 50.0]
    assert selectors.classify(values, scheme="natural_breaks")["bins"] == [1.0, 3.0, 10.0, 20.0, 50.0]
    # fewer distinct values than classes: as many classes as values; nothing to classify: no class
    assert selectors.classify({1: 0.0, 2: 0.0, 3: 7.0})["bins"] == [0.0, 7.0]
    assert selectors.classify({1: None})["bins"] == []


def test_the_layer_endpoint_answers_in_a_fixed_number_of_queries(populated, client, django_assert_num_queries):
    client.force_login(populated.operator)
    url = reverse("maps:layer_values")
    period = {"first_day": "2026-11-01", "last_day": "2026-11-30"}
    # (layer, queries besides session and user): the register version, then the counts per
    # grid unless this process counted them a moment ago; case layers add one count of cases;
    # population layers ask whether small counts are shown: the operator's role does not grant
    # it, so Django's ModelBackend looks at his own and his groups' permissions (2, once a request).
    for layer, queries in (("population", 2 + 2), ("households", 1 + 2), ("open_cases", 2), ("incident_rate", 2 + 2)):
        with django_assert_num_queries(queries + 2):
            data = client.get(url, {"layer": layer, **period}).json()
        assert len(data["values"]) == 4
    residents(populated.grids[1], 7)  # a new resident: the register changed, counted again
    with django_assert_num_queries(2 + 2 + 2):
        data = client.get(url, {"layer": "population", **period}).json()
    assert data["values"][str(populated.grids[1].pk)] == 7.0
    assert client.get(url, {"layer": "nonsense"}).status_code == 400


# --- markers and live changes -------------------------------------------------------------


def report(world, point, at, **kwargs):
    return services.case_report(
        actor=world.grid_worker,
        source=Case.Source.GRID_WORKER,
        category=world.category,
        location=point,
        description="路边有垃圾",
        at=at,
        **kwargs,
    )


def test_markers_carry_the_timer_light_and_stay_in_scope(world):
    # 立案 time limit 1 working hour: yellow from 48 minutes, red after 60
    fresh = report(world, POINT_SW, local(2026, 11, 16, 9, 50))
    turning = report(world, POINT_SW, local(2026, 11, 16, 9, 10))
    late = report(world, POINT_NW, local(2026, 11, 16, 8, 30))
    now = local(2026, 11, 16, 10, 0)
    rows = selectors.case_markers(user=world.operator, case_filter=OPEN, now=now)["cases"]
    assert [(r["id"], r["light"]) for r in rows] == [(fresh.pk, "green"), (turning.pk, "yellow"), (late.pk, "red")]
    assert rows[0]["lon"] == pytest.approx(POINT_SW.x) and rows[0]["state_label"] == "待立案"
    assert selectors.case_markers(user=world.outside_operator, case_filter=OPEN, now=now)["cases"] == []
    assert [r["id"] for r in selectors.case_markers(user=world.other_worker, case_filter=OPEN, now=now)["cases"]] == [
        late.pk
    ]


def test_open_means_open_whenever_reported_while_other_states_follow_the_period(world):
    old = report(world, POINT_SW, local(2026, 9, 1, 9, 0))
    november = report(world, POINT_SW, local(2026, 11, 16, 9, 0))
    now = local(2026, 11, 16, 10, 0)
    ids = lambda f: [r["id"] for r in selectors.case_markers(user=world.operator, case_filter=f, now=now)["cases"]]  # noqa: E731
    assert ids(OPEN) == [november.pk, old.pk]
    assert ids(NOV) == [november.pk]
    assert ids(CaseFilter(**{**NOV.__dict__, "state": State.FILED})) == []


def test_a_new_case_and_a_closed_one_show_up_in_the_changes_since_the_last_poll(world):
    before = report(world, POINT_SW, local(2026, 11, 16, 9, 0))
    since = local(2026, 11, 16, 9, 30)
    new = report(world, POINT_SW, local(2026, 11, 16, 9, 40))
    services.case_void(case=before, actor=world.operator, reason="重复上报", at=local(2026, 11, 16, 9, 41))
    changes = selectors.case_changes(user=world.operator, case_filter=OPEN, since=since, now=local(2026, 11, 16, 9, 42))
    assert [row["id"] for row in changes["cases"]] == [new.pk]
    assert changes["removed"] == [before.pk]
    # nobody outside the scope hears of either
    outside = selectors.case_changes(
        user=world.outside_operator, case_filter=OPEN, since=since, now=local(2026, 11, 16, 9, 42)
    )
    assert outside == {"now": outside["now"], "cases": [], "removed": []}
    # a poll after the overlap window with nothing new is empty
    later = selectors.case_changes(
        user=world.operator, case_filter=OPEN, since=local(2026, 11, 16, 9, 45), now=local(2026, 11, 16, 9, 46)
    )
    assert later["cases"] == [] and later["removed"] == []


def test_a_timer_turning_red_is_a_change_without_any_transition(world):
    case = report(world, POINT_SW, local(2026, 11, 16, 9, 0))  # 立案 deadline 10:00
    changes = selectors.case_changes(
        user=world.operator, case_filter=OPEN, since=local(2026, 11, 16, 9, 59, 50), now=local(2026, 11, 16, 10, 0, 5)
    )
    assert [(row["id"], row["light"]) for row in changes["cases"]] == [(case.pk, "red")]


def test_the_changes_endpoint_round_trip(world, client):
    client.force_login(world.operator)
    first = client.get(reverse("maps:case_markers")).json()
    assert first["cases"] == []
    case = report(world, POINT_SW, None)
    changes = client.get(reverse("maps:case_changes"), {"since": first["now"]}).json()
    assert [row["id"] for row in changes["cases"]] == [case.pk]
    assert client.get(reverse("maps:case_changes")).status_code == 400  # since is required


def test_the_overdue_list_is_most_overdue_first_and_scoped(world):
    late = report(world, POINT_NW, local(2026, 11, 16, 8, 30))
    later = report(world, POINT_SW, local(2026, 11, 16, 8, 40))
    report(world, POINT_SW, local(2026, 11, 16, 9, 50))  # not overdue
    now = local(2026, 11, 16, 10, 0)
    rows = selectors.overdue_cases(user=world.operator, case_filter=NOV, now=now)
    assert [(r["id"], r["overdue_hours"]) for r in rows] == [(late.pk, 0.5), (later.pk, 0.3)]
    assert selectors.overdue_cases(user=world.other_worker, case_filter=NOV, now=now)[0]["id"] == late.pk
    assert selectors.overdue_cases(user=world.outside_operator, case_filter=NOV, now=now) == []


# --- panels ---------------------------------------------------------------------------------


def test_the_grid_panel_counts_without_personal_data(world, client):
    """The grid worker of the grid sees its figures exactly (he may see its residents by name)."""
    grid = world.grid_sw
    household(
        grid,
        persons=[
            {"sex": "F", "birth_date": dt.date(1940, 5, 1), "tags": [PersonTag.ELDERLY_ALONE]},
            {"sex": "M", "birth_date": dt.date(1944, 1, 1), "tags": [PersonTag.DISABLED, PersonTag.LOW_INCOME]},
            {"sex": "M", "birth_date": dt.date(2020, 1, 1)},
        ],
    )
    FacilityFactory(grid=grid, status=Facility.Status.DAMAGED)
    FacilityFactory(grid=grid)
    case = report(world, POINT_SW, local(2026, 11, 16, 9, 0))
    client.force_login(world.grid_worker)
    response = client.get(reverse("maps:grid_panel", args=[grid.pk]))
    panel = response.json()
    structure = panel["structure"]
    assert structure["suppressed_below"] is None
    assert structure["population"] == 3 and structure["households"] == 1
    # on 2026-11-16: 86 (80+ band), 82 (80+), 6 (0-9)
    assert structure["female"] == [0, 0, 0, 0, 0, 0, 0, 0, 1]
    assert structure["male"] == [1, 0, 0, 0, 0, 0, 0, 0, 1]
    followed = {f["tag"]: f["count"] for f in structure["followed"]}
    assert followed == {
        "elderly_alone": 1,
        "low_income": 1,
        "disabled": 1,
        "key_person": 0,
        "left_behind_child": 0,
        "veteran": 0,
    }
    assert {f["status"]: f["count"] for f in panel["facilities"]}["damaged"] == 1
    assert [c["id"] for c in panel["recent_cases"]] == [case.pk]
    assert panel["workers"] == [{"name": "张网格", "primary": True}]
    body = response.content.decode()
    for personal in ("居民", "5001**", "hash-", "birth"):
        assert personal not in body


def test_the_grid_panel_is_refused_outside_the_scope(world, client):
    client.force_login(world.outside_operator)
    assert client.get(reverse("maps:grid_panel", args=[world.grid_sw.pk])).status_code == 404
    client.force_login(world.other_worker)  # grid 1 only
    assert client.get(reverse("maps:grid_panel", args=[world.grid_sw.pk])).status_code == 404
    assert client.get(reverse("maps:grid_panel", args=[world.grids[0].pk])).status_code == 200


def test_the_grid_panel_takes_the_same_queries_however_many_residents(world, admin, django_assert_num_queries):
    residents(world.grid_sw, 3)
    with django_assert_num_queries(7):
        selectors.grid_panel(user=admin, grid_id=world.grid_sw.pk)
    residents(world.grid_sw, 30, tags=[PersonTag.VETERAN])
    with django_assert_num_queries(7):
        panel = selectors.grid_panel(user=admin, grid_id=world.grid_sw.pk)
    assert panel["structure"]["population"] == 33


def test_a_case_opens_with_its_timeline_and_photos_and_nothing_about_the_reporter(world, client):
    case = services.case_report(
        actor=None,
        source=Case.Source.HOTLINE,
        category=world.category,
        location=POINT_SW,
        description="小区门口垃圾",
        reporter_name="王五",
        reporter_phone="13800138000",
        photos=[jpeg()],
        at=local(2026, 11, 16, 9, 0),
    )
    services.case_verify(
        case=case, actor=world.grid_worker, confirmed=True, photos=[jpeg()], at=local(2026, 11, 16, 9, 30)
    )
    client.force_login(world.operator)
    response = client.get(reverse("maps:case_detail", args=[case.pk]))
    detail = response.json()
    assert [row["action"] for row in detail["timeline"]] == ["登记（热线/公众）", "核实"]
    assert detail["timeline"][1]["actor"] == "张网格"
    photo_ids = [p for row in detail["timeline"] for p in row["photos"]]
    assert len(photo_ids) == 2
    body = response.content.decode()
    assert "王五" not in body and "1380" not in body
    photo = client.get(reverse("maps:case_photo", args=[photo_ids[0]]))
    assert photo.status_code == 200 and photo["Content-Type"] == "image/jpeg"
    assert b"".join(photo.streaming_content)[:2] == b"\xff\xd8"
    client.force_login(world.outside_operator)
    assert client.get(reverse("maps:case_detail", args=[case.pk])).status_code == 404
    assert client.get(reverse("maps:case_photo", args=[photo_ids[0]])).status_code == 404


# --- 人员监测 -------------------------------------------------------------------------------


def test_worker_monitoring_shows_the_scope_s_workers_to_command_staff_only(world, client):
    from django.utils import timezone

    start = timezone.now().replace(microsecond=0) - dt.timedelta(minutes=10)
    outsider = UserFactory(role=Role.GRID_WORKER, username="outsider")
    far_grid = world.other_street.communities.create(
        code="500104002001", name="外社区", geom=world.other_street.geom
    ).grids.create(
        code="500104002001001", name="外网格", geom=world.other_street.geom[0], valid_from=dt.date(2020, 1, 1)
    )
    GridAssignment.objects.create(grid=far_grid, worker=outsider)
    for worker, (x, y) in ((world.grid_worker, ORIGIN), (outsider, (106.505, 29.505))):
        session, _ = patrol_services.patrol_start(worker=worker, at=start)
        points = [
            {
                "lon": x + 0.0001 * i,
                "lat": y + 0.0001,
                "recorded_at": (start + dt.timedelta(seconds=30 * i)).isoformat(),
            }
            for i in range(3)
        ]
        patrol_services.patrol_points_record(worker=worker, session_id=session.pk, points=points)
    client.force_login(world.operator)
    data = client.get(reverse("maps:workers")).json()
    assert [p["worker_id"] for p in data["positions"]] == [world.grid_worker.pk]
    assert data["positions"][0]["lon"] == pytest.approx(ORIGIN[0] + 0.0002)
    assert [f["properties"]["worker_id"] for f in data["tracks"]["features"]] == [world.grid_worker.pk]
    client.force_login(world.planner)
    assert client.get(reverse("maps:workers")).status_code == 403


def test_user_scope_mirrors_the_case_scope(world):
    assert user_scope(world.operator) == Scope(street_id=world.street.pk)
    assert user_scope(world.planner) == Scope()
    assert user_scope(world.grid_worker) == Scope(grid_ids=frozenset({world.grid_sw.pk}))
    assert Scope(street_id=1).narrowed(street_id=2).grids(world.grid_sw.__class__.objects.all()).count() == 0
