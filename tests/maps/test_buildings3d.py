"""The 3-D view's endpoints: building tiles (height, colour values, scope), legend classes,
a building's panel, facility tiles, the page and the dashboard's link to it.

The test block (tests.factories.tiled_district) is 2 x 2 grids of 0.002°; offsets below are
degrees east / north of its south-west corner. At 29.4° N, 0.0001° is ≈ 9.7 m east-west
and ≈ 11.1 m north-south. Everything lies north of 0.00132, the southern edge of the z14
and z15 tiles used here.

    grid 1 (NW)  A: footprint, 6 floors, 2 households, 5 residents (2 followed)
    grid 3 (SW)  B: footprint, 18 floors, 1 household, 4 residents
                 F: footprint east of B, 4 floors, nobody
                 C: no footprint (a square around its point), 2 floors, nobody
    grid 4 (SE)  D: footprint, 3 floors, nobody
"""

import datetime as dt
import json
import math
from pathlib import Path
from types import SimpleNamespace

import pyogrio
import pytest
from django.contrib.gis.geos import MultiPolygon, Point, Polygon
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from events.workflow import State
from geodata.models import Building, Facility, Household, Person, PersonTag
from maps import buildings3d
from maps.selectors import classify
from tests.events.factories import CaseFactory
from tests.factories import ORIGIN, FacilityFactory, UserFactory

pytestmark = pytest.mark.django_db

X0, Y0 = ORIGIN
Z = 14  # the whole block lies in one z14 tile


def at(dx: float, dy: float) -> Point:
    return Point(X0 + dx, Y0 + dy, srid=4326)


def box(dx0: float, dy0: float, dx1: float, dy1: float) -> MultiPolygon:
    return MultiPolygon(Polygon.from_bbox((X0 + dx0, Y0 + dy0, X0 + dx1, Y0 + dy1)), srid=4326)


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


TILE = (Z, *tile_of(X0 + 0.002, Y0 + 0.002, Z))
ALL = (X0 - 0.001, Y0 - 0.001, X0 + 0.005, Y0 + 0.005)


def decode(tmp_path: Path, body: bytes, layer: str = "buildings", tile: tuple[int, int, int] = TILE):
    """A tile read by GDAL's MVT driver, georeferenced from its z/x/y path."""
    z, x, y = tile
    path = tmp_path / f"t{len(list(tmp_path.glob('*')))}" / str(z) / str(x) / f"{y}.pbf"
    path.parent.mkdir(parents=True)
    path.write_bytes(body)
    return pyogrio.read_dataframe(path, layer=layer).to_crs(4326)


def by_floors(frame) -> dict[int, dict]:
    """Tile features keyed by floors (unique in this block), properties without the absent ones."""
    rows = {}
    for record in frame.drop(columns="geometry").to_dict("records"):
        properties = {k: v for k, v in record.items() if k != "mvt_id" and v == v and v is not None}  # NaN: absent
        rows[int(properties["floors"])] = properties
    return rows


def home(building: Building, persons: list[dict], **fields) -> Household:
    n = Household.objects.count() + 1
    household = Household.objects.create(
        code=f"H3D{building.pk:04d}{n:04d}", building=building, grid=building.grid, **fields
    )
    Person.objects.bulk_create(
        [
            Person(
                household=household,
                name=f"居民{building.pk}-{n}-{i}",
                sex=spec.get("sex", "F"),
                birth_date=spec.get("birth_date", dt.date(1980, 1, 1)),
                tags=spec.get("tags", []),
                id_number_encrypted="x",
                id_number_hash=f"hash-{building.pk}-{n}-{i}",
                id_number_masked="5001**********0000",
            )
            for i, spec in enumerate(persons)
        ]
    )
    return household


@pytest.fixture
def admin(db):
    """Sees every figure exactly (the right to see residents' personal data: maps.access.sees_small_counts)."""
    return UserFactory(username="admin", role=Role.ADMIN, is_superuser=True, is_staff=True)


@pytest.fixture
def town(world):
    g1, _, g3, g4 = world.grids
    now = timezone.now()
    recent, old = now - dt.timedelta(days=1), now - dt.timedelta(days=40)

    def building(code, grid, floors, footprint=None, location=None):
        location = location or footprint.centroid
        return Building.objects.create(
            code=code, address=f"测试路{code}号", floors=floors, grid=grid, footprint=footprint, location=location
        )

    a = building("A", g1, 6, box(0.0005, 0.0025, 0.0008, 0.0028))
    b = building("B", g3, 18, box(0.0002, 0.0014, 0.0005, 0.0017))
    f = building("F", g3, 4, box(0.0008, 0.0014, 0.0010, 0.0017))
    c = building("C", g3, 2, location=at(0.0016, 0.0016))
    d = building("D", g4, 3, box(0.0025, 0.0014, 0.0030, 0.0017))
    home(
        a,
        [
            {"sex": "F", "birth_date": dt.date(1940, 5, 1), "tags": [PersonTag.ELDERLY_ALONE]},
            {"sex": "M", "birth_date": dt.date(1944, 1, 1), "tags": [PersonTag.DISABLED, PersonTag.LOW_INCOME]},
            {"sex": "M", "birth_date": dt.date(2020, 1, 1)},
        ],
        unit="1",
        room="101",
        head_name="王户主",
        phone_masked="138****0001",
    )
    home(a, [{"sex": "F"}, {"sex": "M"}], unit="1", room="102", head_name="李户主", phone_masked="139****0002")
    home(b, [{"sex": "F"}] * 4, unit="2", room="1801", head_name="赵户主", phone_masked="137****0003")

    def case(grid, point, **fields):
        fields.setdefault("reported_at", recent)
        return CaseFactory(grid=grid, location=point, category=world.category, **fields)

    cases = SimpleNamespace(
        a_open=[case(g1, at(0.00065, 0.00265)), case(g1, at(0.0006, 0.0027))],  # inside A
        a_closed=case(g1, at(0.0007, 0.0026), state=State.CLOSED),
        a_old=case(g1, at(0.0007, 0.0027), reported_at=old),  # open, reported 40 days ago
        a_voided=case(g1, at(0.0007, 0.0027), state=State.VOIDED),
        b_near=case(g3, at(0.00055, 0.00155)),  # ≈ 5 m east of B, ≈ 24 m west of F
        f_near=case(g3, at(0.0007, 0.00155)),  # ≈ 19 m east of B, ≈ 10 m west of F: F's
        c_near=case(g3, at(0.0016, 0.0018)),  # ≈ 17 m north of C's 10 m square
        nowhere=case(g4, at(0.0036, 0.0015)),  # ≈ 58 m from D, the nearest building
    )
    return SimpleNamespace(world=world, a=a, b=b, f=f, c=c, d=d, cases=cases, now=now)


def tile(client, user, tmp_path, **params):
    client.force_login(user)
    response = client.get(reverse("maps:building_tiles", args=TILE), params)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.mapbox-vector-tile"
    return by_floors(decode(tmp_path, response.content))


# --- building tiles ---------------------------------------------------------------------


def test_a_building_tile_carries_height_floors_and_the_values_to_colour_by(town, admin, client, tmp_path):
    rows = tile(client, admin, tmp_path)  # every building in detail, every figure exactly
    assert rows == {
        6: {"id": town.a.pk, "floors": 6, "height_m": 18.0, "households": 2, "residents": 5, "followed": 2,
            "open_cases": 2},
        18: {"id": town.b.pk, "floors": 18, "height_m": 54.0, "households": 1, "residents": 4, "followed": 0,
             "open_cases": 1},
        4: {"id": town.f.pk, "floors": 4, "height_m": 12.0, "households": 0, "residents": 0, "followed": 0,
            "open_cases": 1},
        2: {"id": town.c.pk, "floors": 2, "height_m": 6.0, "households": 0, "residents": 0, "followed": 0,
            "open_cases": 1},
        3: {"id": town.d.pk, "floors": 3, "height_m": 9.0, "households": 0, "residents": 0, "followed": 0,
            "open_cases": 0},
    }  # fmt: skip


def test_footprints_are_drawn_where_they_are_and_a_building_without_one_as_a_10_m_square(town, client, tmp_path):
    client.force_login(town.world.operator)
    frame = decode(tmp_path, client.get(reverse("maps:building_tiles", args=TILE)).content)
    shapes = dict(zip(frame["floors"].astype(int), frame.geometry, strict=True))
    a = shapes[6]
    assert a.bounds == pytest.approx(town.a.footprint.extent, abs=1e-5)  # tile resolution ≈ 0.5 m
    square = shapes[2]
    west, south, east, north = square.bounds
    metres_east = (east - west) * 111_320 * math.cos(math.radians(square.centroid.y))
    metres_north = (north - south) * 110_850
    assert metres_east == pytest.approx(10, abs=1.2) and metres_north == pytest.approx(10, abs=1.2)
    assert square.centroid.x == pytest.approx(town.c.location.x, abs=1e-5)
    assert square.centroid.y == pytest.approx(town.c.location.y, abs=1e-5)


def test_the_storey_height_and_the_case_window_are_parameters(town, client, tmp_path):
    rows = tile(client, town.world.operator, tmp_path, storey="2.8", days="60")
    assert rows[6]["height_m"] == pytest.approx(16.8) and rows[18]["height_m"] == pytest.approx(50.4)
    assert rows[6]["open_cases"] == 3  # the case reported 40 days ago is in the last 60 days
    for bad in ({"storey": "20"}, {"storey": "x"}, {"days": "0"}, {"days": "400"}):
        response = client.get(reverse("maps:building_tiles", args=TILE), bad)
        assert response.status_code == 400


def test_a_user_sees_only_the_buildings_of_their_area_in_detail(town, client, tmp_path):
    worker = tile(client, town.world.grid_worker, tmp_path)  # patrols grid 3: B, F and C
    assert {floors for floors, row in worker.items() if "id" in row} == {18, 4, 2}
    assert worker[18]["residents"] == 4 and worker[4]["open_cases"] == 1
    # A (grid 1) and D (grid 4) are massing only: height and floors, no id, no counts
    assert worker[6] == {"floors": 6, "height_m": 18.0}
    assert worker[3] == {"floors": 3, "height_m": 9.0}
    outside = tile(client, town.world.outside_operator, tmp_path)  # another street
    assert outside == {floors: {"floors": floors, "height_m": floors * 3.0} for floors in (6, 18, 4, 2, 3)}


def test_cases_count_only_when_the_user_may_see_them(town, client, tmp_path):
    # The handler's department holds none of these cases; his places are unrestricted, but
    # the register's figures are not his (no geodata.view_population): no counts of people.
    rows = tile(client, town.world.handler, tmp_path)
    assert {row["open_cases"] for row in rows.values()} == {0}
    assert rows[6] == {"id": town.a.pk, "floors": 6, "height_m": 18.0, "open_cases": 0}
    town.cases.a_open[0].current_department = town.world.sanitation
    town.cases.a_open[0].save()
    assert tile(client, town.world.handler, tmp_path)[6]["open_cases"] == 1


def test_tiles_below_the_building_zoom_are_empty_and_silly_numbers_are_refused(town, client):
    client.force_login(town.world.operator)
    z = buildings3d.MIN_BUILDING_ZOOM - 1
    x, y = tile_of(X0 + 0.002, Y0 + 0.002, z)
    response = client.get(reverse("maps:building_tiles", args=[z, x, y]))
    assert response.status_code == 200 and response.content == b""
    assert client.get(reverse("maps:building_tiles", args=[23, 0, 0])).status_code == 404
    assert client.get(reverse("maps:building_tiles", args=[14, 2**14, 0])).status_code == 404
    client.logout()
    for url in (
        reverse("maps:building_tiles", args=TILE),
        reverse("maps:facility_tiles", args=TILE),
        reverse("maps:buildings3d"),
        reverse("maps:building_panel", args=[town.a.pk]),
        reverse("maps:building_classes"),
    ):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_a_tile_is_one_query(town, admin, django_assert_num_queries):
    with django_assert_num_queries(1):
        buildings3d.building_tile(user=admin, z=TILE[0], x=TILE[1], y=TILE[2])
    with django_assert_num_queries(2):  # a grid worker's grids, then the tile
        buildings3d.building_tile(user=town.world.grid_worker, z=TILE[0], x=TILE[1], y=TILE[2])


# --- legend ------------------------------------------------------------------------------


def test_the_legend_is_classified_like_the_choropleth_over_the_buildings_in_view(town, admin, client):
    client.force_login(admin)
    bbox = ",".join(str(v) for v in ALL)
    response = client.get(reverse("maps:building_classes"), {"colour_by": "residents", "bbox": bbox})
    assert response.status_code == 200
    data = response.json()
    values = {town.a.pk: 5.0, town.b.pk: 4.0, town.f.pk: 0.0, town.c.pk: 0.0, town.d.pk: 0.0}
    assert data["buildings"] == 5 and data["unit"] == "人"
    assert data["classes"] == classify(values, scheme="quantiles")
    # the same numbers as the tiles, for every colour
    user = admin
    assert buildings3d.building_values(user=user, bbox=ALL, colour_by="open_cases") == {
        town.a.pk: 2.0, town.b.pk: 1.0, town.f.pk: 1.0, town.c.pk: 1.0, town.d.pk: 0.0
    }  # fmt: skip
    assert buildings3d.building_values(user=user, bbox=ALL, colour_by="followed")[town.a.pk] == 2.0
    assert buildings3d.building_values(user=user, bbox=ALL, colour_by="households")[town.a.pk] == 2.0
    natural = client.get(
        reverse("maps:building_classes"), {"colour_by": "residents", "bbox": bbox, "scheme": "natural_breaks"}
    ).json()
    assert natural["classes"] == classify(values, scheme="natural_breaks")


def test_the_legend_counts_only_the_buildings_in_scope_and_in_view(town, client):
    client.force_login(town.world.grid_worker)
    bbox = ",".join(str(v) for v in ALL)
    data = client.get(reverse("maps:building_classes"), {"colour_by": "open_cases", "bbox": bbox}).json()
    assert data["buildings"] == 3
    assert data["classes"] == classify({1: 1.0, 2: 1.0, 3: 1.0})
    client.force_login(town.world.operator)
    west_half = f"{X0 - 0.001},{Y0 - 0.001},{X0 + 0.0012},{Y0 + 0.005}"  # A, B and F
    data = client.get(reverse("maps:building_classes"), {"colour_by": "residents", "bbox": west_half}).json()
    assert data["buildings"] == 3
    for bad in ("1,2,3", f"{X0},{Y0},{X0 + 0.2},{Y0 + 0.01}", f"{X0},{Y0},{X0 - 0.01},{Y0 + 0.01}"):
        response = client.get(reverse("maps:building_classes"), {"colour_by": "residents", "bbox": bad})
        assert response.status_code == 400
    response = client.get(reverse("maps:building_classes"), {"colour_by": "nonsense", "bbox": bbox})
    assert response.status_code == 400


# --- a building's panel ------------------------------------------------------------------


def test_the_building_panel_gives_counts_cases_grid_and_worker_without_personal_data(town, admin, client):
    structure = buildings3d.building_panel(user=admin, building_id=town.a.pk)["structure"]  # every figure exactly
    assert structure["residents"] == 5 and structure["followed_residents"] == 2
    # 1940 and 1944: 80+; 2020: 0-9; two born 1980: 40-49
    assert structure["female"] == [0, 0, 0, 0, 1, 0, 0, 0, 1]
    assert structure["male"] == [1, 0, 0, 0, 1, 0, 0, 0, 1]
    assert {f["tag"]: f["count"] for f in structure["followed"]} == {
        "elderly_alone": 1, "low_income": 1, "disabled": 1, "key_person": 0, "left_behind_child": 0, "veteran": 0
    }  # fmt: skip
    client.force_login(town.world.operator)  # may not see the residents: figures under five suppressed
    response = client.get(reverse("maps:building_panel", args=[town.a.pk]))
    assert response.status_code == 200
    panel = response.json()
    assert (panel["address"], panel["floors"], panel["height_m"], panel["use"]) == ("测试路A号", 6, 18.0, "住宅")
    assert panel["households"] is None  # 2
    structure = panel["structure"]
    assert structure["suppressed_below"] == 5
    assert structure["residents"] == 5 and structure["followed_residents"] is None  # 2
    assert structure["female"] == structure["male"] == [None] * 9
    assert {f["count"] for f in structure["followed"]} == {None}
    assert sorted(c["id"] for c in panel["open_cases"]) == sorted(c.pk for c in town.cases.a_open)
    assert panel["open_cases_count"] == 2
    # the closed case of the period is there; the voided one and the one reported 40 days ago are not
    assert [c["id"] for c in panel["other_cases"]] == [town.cases.a_closed.pk]
    assert panel["grid"]["name"] == "第1网格" and panel["grid"]["street"] == "测试街道"
    assert panel["workers"] == [{"name": "worker2", "primary": True}]
    assert panel["household_list"] is None
    body = response.content.decode()
    for personal in ("居民", "户主", "138****", "5001**", "hash-", "birth"):
        assert personal not in body


def test_the_panel_s_cases_are_those_its_colour_counts(town, client):
    client.force_login(town.world.operator)
    for building, expected in ((town.b, town.cases.b_near), (town.f, town.cases.f_near), (town.c, town.cases.c_near)):
        panel = client.get(reverse("maps:building_panel", args=[building.pk])).json()
        assert [c["id"] for c in panel["open_cases"]] == [expected.pk]
    panel = client.get(reverse("maps:building_panel", args=[town.a.pk]), {"days": "60"}).json()
    assert panel["open_cases_count"] == 3 and panel["days"] == 60


def test_households_are_listed_by_name_only_for_roles_allowed_to_see_personal_data(town, client):
    client.force_login(town.world.grid_worker)  # 网格员: may see the personal data of their own grids
    panel = client.get(reverse("maps:building_panel", args=[town.b.pk])).json()
    [entry] = panel["household_list"]
    assert (entry["unit"], entry["room"], entry["head_name"], entry["phone_masked"], entry["residents"]) == (
        "2",
        "1801",
        "赵户主",
        "137****0003",
        4,
    )
    assert "5001**" not in json.dumps(panel, ensure_ascii=False)  # never an ID number, not even masked


def test_the_building_panel_is_refused_outside_the_scope(town, client):
    client.force_login(town.world.grid_worker)
    assert client.get(reverse("maps:building_panel", args=[town.a.pk])).status_code == 404
    client.force_login(town.world.outside_operator)
    assert client.get(reverse("maps:building_panel", args=[town.b.pk])).status_code == 404
    client.force_login(town.world.planner)
    assert client.get(reverse("maps:building_panel", args=[town.b.pk])).status_code == 200
    assert client.get(reverse("maps:building_panel", args=[10**9])).status_code == 404


# --- facilities, the page, the dashboard's link ----------------------------------------------


def test_the_facility_tile_holds_the_facilities_in_scope_with_their_status(town, client, tmp_path):
    g1, _, g3, _ = town.world.grids
    damaged = FacilityFactory(grid=g3, location=at(0.0003, 0.0019), status=Facility.Status.DAMAGED)
    FacilityFactory(grid=g1, location=at(0.0003, 0.0033))
    z = buildings3d.MIN_FACILITY_ZOOM
    x, y = tile_of(X0 + 0.002, Y0 + 0.002, z)
    url = reverse("maps:facility_tiles", args=[z, x, y])
    client.force_login(town.world.grid_worker)
    frame = decode(tmp_path, client.get(url).content, "facilities", (z, x, y))
    assert frame[["id", "status", "type"]].to_dict("records") == [
        {"id": damaged.pk, "status": "damaged", "type": "上水井盖"}
    ]
    client.force_login(town.world.operator)
    frame = decode(tmp_path, client.get(url).content, "facilities", (z, x, y))
    assert len(frame) == 2
    x, y = tile_of(X0 + 0.002, Y0 + 0.002, z - 1)
    assert client.get(reverse("maps:facility_tiles", args=[z - 1, x, y])).content == b""


def test_the_page_opens_on_the_view_it_is_given_and_uses_only_our_own_files(town, client):
    client.force_login(town.world.operator)
    response = client.get(reverse("maps:buildings3d"), {"lon": "106.401", "lat": "29.402", "zoom": "16.5"})
    assert response.status_code == 200
    config = response.context["config"]
    assert config["start"] == {"lon": 106.401, "lat": 29.402, "zoom": 16.5, "pitch": 60, "bearing": -20}
    assert config["storey_m"] == 3.0 and config["days"] == 30
    assert config["urls"]["buildings"] == "/maps/tiles/buildings/{z}/{x}/{y}.pbf"
    html = response.content.decode()
    assert "/static/vendor/maplibre/maplibre-gl.js" in html and "/static/maps/buildings3d.js" in html
    assert "http://" not in html and "https://" not in html  # no CDN, no base map in the no-network mode
    # nonsense in the query string falls back to fitting the user's area
    response = client.get(reverse("maps:buildings3d"), {"lon": "x", "lat": "29.4", "zoom": "99"})
    assert response.status_code == 200 and response.context["config"]["start"] is None


def test_the_dashboard_links_to_the_3d_mode(town, client):
    client.force_login(town.world.operator)
    html = client.get(reverse("maps:dashboard")).content.decode()
    assert f'<a id="open-3d" href="{reverse("maps:buildings3d")}"' in html
    assert ">三维</a>" in html
