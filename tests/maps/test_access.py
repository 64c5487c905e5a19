"""Who sees the register's population figures on the map, and how exactly (maps.access).

- geodata.view_population (accounts/roles.py): every role but department handlers; without it
  the population layers and colours are refused (403) and not offered, and the grid and
  building panels and building tiles carry no population figure at all;
- figures under five are exact only for users with geodata.reveal_personal_data (grid workers,
  the admin); for everyone else they are None (shown "<5"), by maps.access.suppress, the rule
  the statistics exports use;
- user_scope is decided per role; a user bound to nothing has no place at all.

The events world's street has four grids; grid 3 (south-west) is the grid worker's. Here grid 1
has 7 residents in one household and grid 3 has 3.
"""

import datetime as dt
import math
import tempfile
from pathlib import Path

import pyogrio
import pytest
from django.contrib.gis.geos import Point
from django.db import connection
from django.urls import reverse

from accounts.models import Role
from accounts.roles import ROLE_PERMISSIONS
from geodata.models import PersonTag
from maps import buildings3d, selectors
from maps.access import (
    NOWHERE,
    SUPPRESS_BELOW,
    Scope,
    population_structure_for,
    suppress,
    suppressed_sql,
    user_scope,
)
from maps.selectors import CaseFilter
from tests.factories import ORIGIN, UserFactory
from tests.maps.helpers import household

pytestmark = pytest.mark.django_db

NOV = CaseFilter(first_day=dt.date(2026, 11, 1), last_day=dt.date(2026, 11, 30), state="all")
POPULATION_LAYERS = ("population", "population_density", "households", "incident_rate")


@pytest.fixture
def town(world):
    """Grid 1: one building, one household of 7 (3 men 40-49, 4 women 80+, 2 of them 独居老人);
    grid 3: one building, one household of 3 women aged 40-49."""
    g1, _, g3, _ = world.grids
    seven = household(
        g1,
        persons=[{"sex": "M"}] * 3
        + [{"sex": "F", "birth_date": dt.date(1940, 1, 1), "tags": [PersonTag.ELDERLY_ALONE]}] * 2
        + [{"sex": "F", "birth_date": dt.date(1940, 1, 1)}] * 2,
    )
    three = household(g3, point=Point(ORIGIN[0] + 0.001, ORIGIN[1] + 0.0015, srid=4326), persons=[{"sex": "F"}] * 3)
    world.seven, world.three = seven.building, three.building
    return world


@pytest.fixture
def admin(db):
    return UserFactory(username="admin", role=Role.ADMIN, is_superuser=True, is_staff=True)


# --- the rights and the scope -----------------------------------------------------------------


def test_every_role_but_department_handlers_may_see_population_figures():
    granted = {role for role, rights in ROLE_PERMISSIONS.items() if "geodata.view_population" in rights}
    assert granted == set(Role.values) - {Role.DEPARTMENT_HANDLER}
    # small counts are exact exactly where residents may be seen by name
    exact = {role for role, rights in ROLE_PERMISSIONS.items() if "geodata.reveal_personal_data" in rights}
    assert exact == {Role.GRID_WORKER, Role.ADMIN}


def test_the_place_scope_is_decided_per_role_and_nobody_bound_to_nothing_sees_everything(town):
    """Except a leader bound to no place: the district's leader (accounts.roles.is_district_leader)."""
    assert user_scope(town.handler) == Scope()  # a department serves the whole district
    assert user_scope(town.planner) == Scope()
    assert user_scope(town.operator) == Scope(street_id=town.street.pk)
    unbound = UserFactory(username="nowhere", role=Role.OPERATOR)  # no street, no community
    idle_worker = UserFactory(username="idle", role=Role.GRID_WORKER)  # no grid assigned
    assert user_scope(UserFactory(username="district_leader", role=Role.LEADER)) == Scope()
    for user in (unbound, idle_worker):
        assert user_scope(user) == NOWHERE == Scope(grid_ids=frozenset())
        assert selectors.grid_layer_values(user=user, layer="population", case_filter=NOV)["values"] == {}
        assert selectors.grid_panel(user=user, grid_id=town.grids[0].pk) is None
        assert buildings3d.building_panel(user=user, building_id=town.seven.pk) is None


# --- department handlers: no population figure anywhere ---------------------------------------


def test_a_department_handler_s_population_layers_are_refused_and_not_offered(town, client):
    client.force_login(town.handler)
    url = reverse("maps:layer_values")
    for layer in POPULATION_LAYERS:
        response = client.get(url, {"layer": layer})
        assert response.status_code == 403
        assert response.json() == {"error": "无权查看人口数据"}
    default = client.get(url).json()  # no layer asked for: the first one offered, open cases
    assert default["layer"] == "open_cases" and len(default["values"]) == 4
    page = client.get(reverse("maps:dashboard"))
    assert list(page.context["config"]["layers"]) == ["open_cases", "incident_density"]
    html = page.content.decode()
    assert 'value="open_cases"' in html
    for layer in POPULATION_LAYERS:
        assert f'value="{layer}"' not in html


def test_a_department_handler_s_panels_and_tiles_carry_no_population_figure(town, client):
    client.force_login(town.handler)
    panel = client.get(reverse("maps:grid_panel", args=[town.grids[0].pk])).json()
    assert "structure" not in panel
    assert panel["name"] == "第1网格" and len(panel["facilities"]) == 5  # the rest of the panel is there
    building = client.get(reverse("maps:building_panel", args=[town.seven.pk])).json()
    assert "structure" not in building and "households" not in building
    assert building["address"] == town.seven.address and building["open_cases_count"] == 0
    features = building_features(client.get(reverse("maps:building_tiles", args=TILE)).content)
    assert features[town.seven.pk] == {"id": town.seven.pk, "floors": 1, "height_m": 3.0, "open_cases": 0}
    assert features[town.three.pk] == {"id": town.three.pk, "floors": 1, "height_m": 3.0, "open_cases": 0}
    classes = reverse("maps:building_classes")
    for colour in ("households", "residents", "followed"):
        response = client.get(classes, {"colour_by": colour, "bbox": BBOX})
        assert response.status_code == 403 and response.json() == {"error": "无权查看人口数据"}
    assert client.get(classes, {"colour_by": "open_cases", "bbox": BBOX}).json()["buildings"] == 2
    page = client.get(reverse("maps:buildings3d"))
    assert list(page.context["config"]["colour_by"]) == ["open_cases"]
    assert 'value="residents"' not in page.content.decode()


# --- small counts -------------------------------------------------------------------------------


def test_a_planner_s_grid_panel_shows_7_but_not_3(town, client):
    client.force_login(town.planner)
    seven = client.get(reverse("maps:grid_panel", args=[town.grids[0].pk])).json()["structure"]
    assert seven["suppressed_below"] == 5
    assert seven["population"] == 7 and seven["households"] is None  # one household
    assert seven["male"] == [None] * 9  # 3 men aged 40-49
    assert seven["female"] == [None] * 9  # 4 women 80+
    assert (seven["male_total"], seven["female_total"]) == (None, None)
    assert {f["tag"]: f["count"] for f in seven["followed"]} == dict.fromkeys(PersonTag.values, None)
    three = client.get(reverse("maps:grid_panel", args=[town.grids[2].pk])).json()["structure"]
    assert three["population"] is None and three["households"] is None


def test_counts_of_five_or_more_are_exact_and_so_is_everything_for_the_grid_s_worker(town, client):
    household(town.grids[0], persons=[{"sex": "M"}] * 2)  # grid 1: 9 residents, 5 men aged 40-49
    client.force_login(town.operator)  # street staff may not see residents by name: suppressed too
    seven = client.get(reverse("maps:grid_panel", args=[town.grids[0].pk])).json()["structure"]
    assert seven["population"] == 9 and seven["male"] == [None] * 4 + [5] + [None] * 4
    assert (seven["male_total"], seven["female_total"]) == (5, None)
    client.force_login(town.grid_worker)  # grid 3 is his: he may see its residents, every count exact
    three = client.get(reverse("maps:grid_panel", args=[town.grids[2].pk])).json()["structure"]
    assert three["suppressed_below"] is None
    assert (three["population"], three["households"]) == (3, 1)
    assert three["female"] == [0, 0, 0, 0, 3, 0, 0, 0, 0] and three["male"] == [0] * 9


def test_population_layers_and_their_legend_suppress_small_counts(town, admin):
    g1, g2, g3, g4 = (str(g.pk) for g in town.grids)
    planner = selectors.grid_layer_values(user=town.planner, layer="population", case_filter=NOV)
    assert planner["values"] == {g1: 7.0, g2: None, g3: None, g4: None}
    assert planner["classes"]["min"] == 7.0 and planner["classes"]["bins"] == [7.0]  # no class bound under five
    exact = selectors.grid_layer_values(user=admin, layer="population", case_filter=NOV)
    assert exact["values"] == {g1: 7.0, g2: 0.0, g3: 3.0, g4: 0.0}
    households = selectors.grid_layer_values(user=town.planner, layer="households", case_filter=NOV)["values"]
    assert set(households.values()) == {None}
    density = selectors.grid_layer_values(user=town.planner, layer="population_density", case_filter=NOV)["values"]
    assert density[g3] is None and density[g1] == pytest.approx(7 / (town.grids[0].area_m2 / 1e6), abs=0.01)


def test_building_tiles_panels_and_legend_suppress_small_counts(town, client):
    client.force_login(town.planner)
    features = building_features(client.get(reverse("maps:building_tiles", args=TILE)).content)
    assert features[town.seven.pk]["residents"] == 7
    assert "households" not in features[town.seven.pk] and "followed" not in features[town.seven.pk]  # 1 and 2
    assert "residents" not in features[town.three.pk]
    legend = client.get(reverse("maps:building_classes"), {"colour_by": "residents", "bbox": BBOX}).json()
    assert legend["buildings"] == 2 and legend["classes"]["bins"] == [7.0] and legend["classes"]["min"] == 7.0
    panel = client.get(reverse("maps:building_panel", args=[town.three.pk])).json()
    assert panel["households"] is None and panel["structure"]["residents"] is None
    assert panel["structure"]["female"] == [None] * 9
    assert client.get(reverse("maps:buildings3d")).context["config"]["suppressed_below"] == 5
    client.force_login(town.grid_worker)  # his grid 3: exact
    features = building_features(client.get(reverse("maps:building_tiles", args=TILE)).content)
    assert (features[town.three.pk]["residents"], features[town.three.pk]["households"]) == (3, 1)
    assert client.get(reverse("maps:buildings3d")).context["config"]["suppressed_below"] is None


def test_the_sql_form_of_the_rule_is_the_rule(db):
    counts = list(range(0, 9))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT n, {suppressed_sql('n')} FROM unnest(%s::int[]) AS n ORDER BY n", [counts])  # noqa: S608
        in_sql = dict(cursor.fetchall())
    in_python = {
        row["n"]: row["shown"] for row in suppress([{"n": n, "shown": n} for n in counts], fields={"shown": ["n"]})
    }
    assert in_sql == in_python == {n: (n if n >= SUPPRESS_BELOW else None) for n in counts}


def test_population_structure_for_leaves_nothing_small_behind(town):
    structure = {
        "age_bands": ["0-9", "10-19"],
        "male": [0, 6],
        "female": [4, 5],
        "population": 15,
        "households": 2,
        "followed": [{"tag": "veteran", "label": "退役军人", "count": 1}],
    }
    assert population_structure_for(user=town.planner, structure=structure) == {
        "age_bands": ["0-9", "10-19"],
        "male": [None, 6],
        "female": [None, 5],
        "population": 15,
        "households": None,
        "followed": [{"tag": "veteran", "label": "退役军人", "count": None}],
        "male_total": 6,
        "female_total": 9,
        "suppressed_below": 5,
    }
    assert population_structure_for(user=town.grid_worker, structure=structure) == {
        **structure,
        "male_total": 6,
        "female_total": 9,
        "suppressed_below": None,
    }
    assert population_structure_for(user=town.handler, structure=structure) is None
    assert structure["male"] == [0, 6]  # the input is left as it was


# --- tiles ---------------------------------------------------------------------------------------

X0, Y0 = ORIGIN
BBOX = f"{X0 - 0.001},{Y0 - 0.001},{X0 + 0.005},{Y0 + 0.005}"


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


TILE = (14, *_tile_of(X0 + 0.002, Y0 + 0.002, 14))  # the whole test block


def building_features(body: bytes) -> dict[int, dict]:
    """The detailed buildings of a tile by id, without the properties a feature does not carry."""
    with tempfile.TemporaryDirectory() as tmp:
        z, x, y = TILE
        path = Path(tmp) / str(z) / str(x) / f"{y}.pbf"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        records = pyogrio.read_dataframe(path, layer="buildings", read_geometry=False).to_dict("records")
    features = {}
    for record in records:
        properties = {k: int(v) if k != "height_m" else v for k, v in record.items() if k != "mvt_id" and v == v}
        if "id" in properties:
            features[properties["id"]] = properties
    return features
