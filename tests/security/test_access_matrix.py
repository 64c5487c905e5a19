"""The role × endpoint matrix, generated from the URL conf.

Every URL pattern of the project is a test (test_every_url_pattern): it asks the pattern's
rule for what each identity (one user per role, scope variants, and nobody signed in)
observes, and compares it with what the rule expects: exactly the identity's scope, and
a 401 / 403 / 404 or a log-in redirect elsewhere. A pattern without a rule fails, so a new
URL cannot be added without deciding who may use it.

Every answer of every probe is also searched for personal data in clear (the ID numbers
and phones of the residents and of the callers): none may appear anywhere.

The expected scopes below are the specification (issue 8), written by hand:
- a grid worker sees the cases of his grids and his own reports, the places of his grids;
- street / community staff see their street / community;
- a department handler sees the cases its department holds or worked on;
- planners see aggregates only; the admin sees everything.

Cells left out on purpose are marked "report item Ln": real leaks found by this matrix in
code outside tests/security, listed with the fix proposed in the report to the lead (and in
docs/security.md, "Known gaps").
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import logging
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pyogrio
import pytest
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.db import transaction
from django.test import Client, RequestFactory, override_settings
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from events import workflow
from events.models import Case, CaseHistory
from geodata.models import GridDesignProposal, Person, PersonalDataReveal
from patrol.models import CheckIn, PatrolSession
from patrol_api.models import CaseReceipt
from tests.security.world import (
    CASE_KEYS,
    GRID_KEYS,
    HOTLINE_CALLER,
    IDENTITIES,
    PUBLIC_CALLER,
    RESIDENTS,
    STREET_A_STAFF,
    TILE,
    build_world,
)

pytestmark = pytest.mark.django_db

SIGNED_IN = tuple(who for who in IDENTITIES if who != "anonymous")

# --- the specification: who sees which cases, places and workers ------------------------------

STREET_A_CASES = frozenset({"c1", "c2", "c3", "c5", "c6"})
CASES_SEEN: dict[str, frozenset[str]] = {
    "anonymous": frozenset(),
    "grid_worker": frozenset({"c1", "c3", "c5"}),  # grid a1g1
    "grid_worker_b": frozenset({"c2", "c4"}),  # grid b1g1 and his report c2 in a1g2
    **dict.fromkeys(STREET_A_STAFF, STREET_A_CASES),
    "community_operator": frozenset({"c1", "c2", "c3", "c5"}),  # community A1
    "department_handler": frozenset({"c1"}),  # sanitation holds c1; c5 went to greening
    "admin": frozenset(CASE_KEYS),
    "planner": frozenset(),  # aggregates only: no case opens one by one (cases_countable_by counts)
}
CASE_LEVEL = IDENTITIES

STREET_A_GRIDS = frozenset({"a1g1", "a1g2", "a2g1"})
PLACES: dict[str, frozenset[str]] = {
    "grid_worker": frozenset({"a1g1"}),
    "grid_worker_b": frozenset({"b1g1"}),
    **dict.fromkeys(STREET_A_STAFF, STREET_A_GRIDS),
    "community_operator": frozenset({"a1g1", "a1g2"}),
    "department_handler": frozenset(GRID_KEYS),  # departments work district-wide (maps.access.user_scope)
    "planner": frozenset(GRID_KEYS),
    "admin": frozenset(GRID_KEYS),
}

MONITORS = {  # 人员监测: the grid workers whose positions each identity may follow
    **dict.fromkeys(STREET_A_STAFF, frozenset({"worker_a"})),
    "community_operator": frozenset({"worker_a"}),
    "admin": frozenset({"worker_a", "worker_b"}),
}
STATISTICS = {"leader": STREET_A_GRIDS, "planner": frozenset(GRID_KEYS), "admin": frozenset(GRID_KEYS)}
DESIGNERS = {"planner", "admin"}
EVALUATORS = {"shift_leader", "leader", "planner", "admin"}  # 综合评价
REGISTRARS = {"operator", "community_operator", "shift_leader", "staff_operator"}  # 登记 (workflow table)
PERSONAL_DATA = {"grid_worker", "grid_worker_b", "admin"}  # geodata.reveal_personal_data (accounts/roles.py)
# Register figures (residents, households, followed groups, age structure) per grid or building:
# geodata.view_population, every role but department handlers (was report item L2); exact only
# for PERSONAL_DATA, under five suppressed (None) for everyone else (was report item L4).
POPULATION = frozenset(SIGNED_IN) - {"department_handler"}
ABSENT = "absent"  # a population figure left out of the answer altogether


def shown(who: str, count: int) -> int | None:
    """A population count as `who` sees it: exact with the personal-data right, else None under five."""
    return count if who in PERSONAL_DATA or count >= 5 else None


LOGIN, ADMIN_LOGIN = "login", "admin-login"


# --- the world, built once for the module ------------------------------------------------------


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, tmp_path_factory):
    media = tmp_path_factory.mktemp("matrix-media")
    with (
        django_db_blocker.unblock(),
        override_settings(MEDIA_ROOT=media, PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]),
        transaction.atomic(),
    ):
        w = build_world(media)
        w.clients = {"anonymous": Client()}
        for who in SIGNED_IN:
            w.clients[who] = Client()
            w.clients[who].force_login(w.users[who])
        yield w
        transaction.set_rollback(True)


@pytest.fixture(autouse=True)
def media_root(settings, world):
    """The photos of the module's world (this overrides the per-test folder of conftest.py)."""
    settings.MEDIA_ROOT = world.media
    return world.media


# --- probing ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class Answer:
    status: int
    location: str
    body: bytes

    @property
    def outcome(self) -> Any:
        if self.status == 302 and self.location.startswith("/accounts/login/?next="):
            return LOGIN
        if self.status == 302 and self.location.startswith("/admin/login/?next="):
            return ADMIN_LOGIN
        return self.status

    def json(self) -> Any:
        return json.loads(self.body)

    def text(self) -> str:
        return self.body.decode()


def fetch(w, who: str, method: str, url: str, data: Any = None, *, api: bool = False, **extra) -> Answer:
    """One request as `who`: through the session for pages, with the knox token for the API.
    Fails at once when the answer holds personal data in clear."""
    client = w.clients[who]
    if api and who != "anonymous":
        extra["HTTP_AUTHORIZATION"] = f"Token {w.tokens[who]}"
    if method == "get":
        response = client.get(url, data, **extra)
    else:
        response = getattr(client, method)(url, data if data is not None else {}, **extra)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    for secret in w.clear_personal_data:
        assert secret.encode() not in body, f"{method.upper()} {url} as {who}: {secret} in clear"
    return Answer(response.status_code, response.get("Location", ""), body)


def rolled_back(probe: Callable[[], Any]) -> Any:
    """Run a probe that may write, and undo what it wrote (the matrix world stays as it is)."""
    with transaction.atomic():
        result = probe()
        transaction.set_rollback(True)
    return result


def web(who: str, value: Any) -> Any:
    """What a page answers: a log-in redirect for nobody, else `value`."""
    return LOGIN if who == "anonymous" else value


def webs(who: str, values: tuple) -> tuple:
    """What several requests to a page answer."""
    return tuple(web(who, value) for value in values)


def api(who: str, value: Any) -> Any:
    """What the API answers: 401 for nobody, else `value`."""
    return 401 if who == "anonymous" else value


def cases_by_id(w) -> dict[int, str]:
    return {case.pk: key for key, case in w.cases.items()}


def grid_keys_by_id(w) -> dict[int, str]:
    return {grid.pk: key for key, grid in w.grids.items()}


def visible_or_404(who: str, keys, seen: frozenset[str], anonymous: Any = LOGIN) -> dict[str, Any]:
    if who == "anonymous":
        return dict.fromkeys(keys, anonymous)
    return {key: 200 if key in seen else 404 for key in keys}


def _absent(value: Any) -> bool:
    """A property a feature does not carry (GDAL reads it as None or NaN)."""
    return value is None or value != value


def decode_tile(body: bytes, layer: str) -> list[dict[str, Any]]:
    """The features of one layer of a Mapbox vector tile (GDAL's MVT driver through pyogrio)."""
    if not body:
        return []
    z, x, y = TILE
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / str(z) / str(x) / f"{y}.pbf"
        path.parent.mkdir(parents=True)
        path.write_bytes(body)
        if layer not in {name for name, _ in pyogrio.list_layers(str(path))}:
            return []
        frame = pyogrio.read_dataframe(str(path), layer=layer, read_geometry=False)
    return frame.to_dict("records")


def tile_url(name: str) -> str:
    z, x, y = TILE
    return reverse(name, args=[z, x, y])


# --- the URL conf ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Route:
    name: str  # namespace:name, or the pattern itself when it has no name
    pattern: str

    def __str__(self) -> str:
        return self.name


def _walk(patterns, prefix: str = "", namespace: str = ""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            pattern = prefix + str(entry.pattern)
            yield Route(f"{namespace}{entry.name}" if entry.name else pattern, pattern)


ROUTES = sorted(set(_walk(get_resolver().url_patterns)), key=lambda route: route.name)


def test_the_url_conf_is_walked_whole():
    names = {route.name for route in ROUTES}
    assert {"maps:grid_tiles", "command:case_photo", "patrol_api:case-photo", "open311:requests"} <= names
    assert "admin:geodata_person_reveal" in names
    assert len(names) == len(ROUTES)  # every pattern is its own test


# --- rules: one per URL name (admin patterns share one) ---------------------------------------------

Rule = Callable[[Any, Route], tuple[dict[str, Any], dict[str, Any]]]
RULES: dict[str, Rule] = {}


def rule(*names: str):
    def register(function: Rule) -> Rule:
        for name in names:
            assert name not in RULES, name
            RULES[name] = function
        return function

    return register


def same_for(identities, observe: Callable[[str], Any], expect: Callable[[str], Any]):
    return {who: observe(who) for who in identities}, {who: expect(who) for who in identities}


# public: no log-in, no data


PUBLIC = ("healthz", "login", "phone:shell", "phone:service-worker", "phone:manifest")


@rule(*PUBLIC, "patrol_api:schema", "patrol_api:docs")
def public_page(w, route):
    url = reverse(route.name)
    return same_for(IDENTITIES, lambda who: fetch(w, who, "get", url).outcome, lambda who: 200)


@rule("logout")
def logout_needs_post(w, route):
    return same_for(IDENTITIES, lambda who: fetch(w, who, "get", reverse("logout")).outcome, lambda who: 405)


@rule("home")
def home(w, route):
    return same_for(IDENTITIES, lambda who: fetch(w, who, "get", "/").outcome, lambda who: web(who, 200))


# the map dashboard (指挥地图) and the 3-D view


@rule("maps:dashboard", "maps:buildings3d")
def map_page(w, route):
    """Open to everyone signed in; the layers and colours drawn from residents are offered only
    with the right to population figures."""
    url = reverse(route.name)
    population_option = 'value="population"' if route.name == "maps:dashboard" else 'value="residents"'

    def observe(who):
        answer = fetch(w, who, "get", url)
        return (answer.status, population_option in answer.text()) if answer.status == 200 else answer.outcome

    return same_for(IDENTITIES, observe, lambda who: web(who, (200, who in POPULATION)))


@rule("maps:grid_tiles")
def grid_tiles(w, route):
    codes = {grid.code: key for key, grid in w.grids.items()}

    def observe(who):
        answer = fetch(w, who, "get", tile_url(route.name))
        if answer.status != 200:
            return answer.outcome
        return frozenset(codes[feature["code"]] for feature in decode_tile(answer.body, "grids"))

    return same_for(IDENTITIES, observe, lambda who: web(who, PLACES.get(who)))


@rule("maps:extent")
def extent(w, route):
    def observe(who):
        answer = fetch(w, who, "get", reverse(route.name))
        return answer.json()["bbox"] if answer.status == 200 else answer.outcome

    def expect(who):
        if who == "anonymous":
            return LOGIN
        extents = [w.grids[key].geom.extent for key in PLACES[who]]
        west, south = min(e[0] for e in extents), min(e[1] for e in extents)
        east, north = max(e[2] for e in extents), max(e[3] for e in extents)
        return [pytest.approx(value, abs=1e-9) for value in (west, south, east, north)]

    return same_for(IDENTITIES, observe, expect)


@rule("maps:layer_values")
def layer_values(w, route):
    grid_key = grid_keys_by_id(w)
    open_cases = {key: case.grid_id for key, case in w.cases.items()}

    def observe(who, layer):
        answer = fetch(w, who, "get", reverse(route.name), {"layer": layer})
        if answer.status != 200:
            return answer.outcome
        return {grid_key[int(gid)]: value for gid, value in answer.json()["values"].items()}

    def counted(who):
        seen = frozenset(CASE_KEYS) if who == "planner" else CASES_SEEN[who]  # planners: counts are aggregates
        return {key: float(sum(1 for case in seen if grid_key[open_cases[case]] == key)) for key in PLACES[who]}

    def residents(who):
        if who not in POPULATION:
            return web(who, 403)
        return {key: None if (n := shown(who, RESIDENTS[key])) is None else float(n) for key in PLACES[who]}

    population = same_for(IDENTITIES, lambda who: observe(who, "population"), residents)
    cases = same_for(
        IDENTITIES, lambda who: observe(who, "open_cases"), lambda who: LOGIN if who == "anonymous" else counted(who)
    )
    return {"population": population[0], "open_cases": cases[0]}, {"population": population[1], "open_cases": cases[1]}


def _case_ids(answer: Answer, key: str = "cases", field: str = "id") -> Any:
    if answer.status != 200:
        return answer.outcome
    return answer.json()[key]


def case_set_rule(
    url: Callable[[Any], str],
    params: Callable[[Any], dict] = lambda w: {},
    seen: Callable[[str], frozenset[str]] = lambda who: CASES_SEEN[who],
):
    def check(w, route):
        by_id = cases_by_id(w)

        def observe(who):
            answer = fetch(w, who, "get", url(w), params(w))
            if answer.status != 200:
                return answer.outcome
            return frozenset(by_id[row["id"]] for row in answer.json()["cases"])

        return same_for(CASE_LEVEL, observe, lambda who: web(who, seen(who)))

    return check


RULES["maps:case_markers"] = case_set_rule(lambda w: reverse("maps:case_markers"))
RULES["maps:case_changes"] = case_set_rule(
    lambda w: reverse("maps:case_changes"), lambda w: {"since": (w.at - timezone.timedelta(hours=1)).isoformat()}
)
RULES["maps:overdue_cases"] = case_set_rule(
    lambda w: reverse("maps:overdue_cases"),
    seen=lambda who: CASES_SEEN[who] - {"c6"},  # c6 came in just now
)


@rule("maps:case_detail")
def map_case_detail(w, route):
    def observe(who):
        found = {}
        for key, case in w.cases.items():
            answer = fetch(w, who, "get", reverse(route.name, args=[case.pk]))
            found[key] = answer.outcome
            if answer.status == 200:
                detail = answer.json()
                # The map is not the place for personal data: no reporter at all
                assert not {"reporter_name", "reporter_phone", "reporter_phone_masked"} & detail.keys()
                assert HOTLINE_CALLER not in answer.text() and PUBLIC_CALLER not in answer.text()
        return found

    return same_for(CASE_LEVEL, observe, lambda who: visible_or_404(who, CASE_KEYS, CASES_SEEN.get(who, ())))


@rule("maps:grid_panel")
def grid_panel(w, route):
    """Grids in scope open (200) with their residents as the user may see them; others 404."""

    def observe(who):
        found = {}
        for key in GRID_KEYS:
            answer = fetch(w, who, "get", reverse(route.name, args=[w.grids[key].pk]))
            if answer.status != 200:
                found[key] = answer.outcome
                continue
            panel = answer.json()
            found[key] = (200, panel["structure"]["population"] if "structure" in panel else ABSENT)
            assert by_id_keys(w, panel["recent_cases"]) <= CASES_SEEN[who]
        return found

    def expect(who):
        found = visible_or_404(who, GRID_KEYS, PLACES.get(who, ()))
        for key, outcome in found.items():
            if outcome == 200:
                found[key] = (200, shown(who, RESIDENTS[key]) if who in POPULATION else ABSENT)
        return found

    return same_for(IDENTITIES, observe, expect)


def by_id_keys(w, rows) -> frozenset[str]:
    by_id = cases_by_id(w)
    return frozenset(by_id[row["id"]] for row in rows)


@rule("maps:workers")
def workers(w, route):
    names = {w.users["grid_worker"].pk: "worker_a", w.users["grid_worker_b"].pk: "worker_b"}

    def observe(who):
        answer = fetch(w, who, "get", reverse(route.name))
        if answer.status != 200:
            return answer.outcome
        data = answer.json()
        positions = frozenset(names[row["worker_id"]] for row in data["positions"])
        tracks = frozenset(names[feature["properties"]["worker_id"]] for feature in data["tracks"]["features"])
        assert tracks == positions
        return positions

    return same_for(IDENTITIES, observe, lambda who: web(who, MONITORS.get(who, 403)))


def photo_rule(url: Callable[[Any, str], str], api_route: bool = False):
    def check(w, route):
        stored = {key: (w.media / photo.image.name).read_bytes() for key, photo in w.photos.items()}

        def observe(who):
            found = {}
            for key in w.photos:
                answer = fetch(w, who, "get", url(w, key), api=api_route)
                found[key] = answer.outcome
                if answer.status == 200:
                    assert answer.body == stored[key]
            return found

        return same_for(
            CASE_LEVEL,
            observe,
            lambda who: visible_or_404(who, w.photos, CASES_SEEN.get(who, ()), 401 if api_route else LOGIN),
        )

    return check


RULES["maps:case_photo"] = photo_rule(lambda w, key: reverse("maps:case_photo", args=[w.photos[key].pk]))
RULES["command:case_photo"] = photo_rule(lambda w, key: reverse("command:case_photo", args=[w.photos[key].pk]))
RULES["patrol_api:case-photo"] = photo_rule(
    lambda w, key: reverse("patrol_api:case-photo", args=[w.cases[key].pk, w.photos[key].pk]), api_route=True
)


# 3-D buildings and facilities


@rule("maps:building_tiles")
def building_tiles(w, route):
    building_key = {building.pk: key for key, building in w.buildings.items()}

    def observe(who):
        answer = fetch(w, who, "get", tile_url(route.name))
        if answer.status != 200:
            return answer.outcome
        features = decode_tile(answer.body, "buildings")
        assert len(features) == len(GRID_KEYS)  # every building is drawn (grey massing outside the scope)
        detailed = [f for f in features if not _absent(f.get("id"))]
        for feature in features:
            if feature not in detailed or who not in POPULATION:  # massing only, or no right to the figures
                assert all(_absent(feature.get(field)) for field in ("residents", "followed", "households"))
        return {
            building_key[int(f["id"])]: None if _absent(f.get("residents")) else int(f["residents"]) for f in detailed
        }

    def expect(who):
        if who not in POPULATION:
            return web(who, dict.fromkeys(PLACES[who], None) if who in PLACES else None)
        return {key: shown(who, RESIDENTS[key]) for key in PLACES[who]}

    return same_for(IDENTITIES, observe, expect)


@rule("maps:facility_tiles")
def facility_tiles(w, route):
    facility_key = {facility.pk: key for key, facility in w.facilities.items()}

    def observe(who):
        answer = fetch(w, who, "get", tile_url(route.name))
        if answer.status != 200:
            return answer.outcome
        return frozenset(facility_key[int(f["id"])] for f in decode_tile(answer.body, "facilities"))

    return same_for(IDENTITIES, observe, lambda who: web(who, PLACES.get(who)))


@rule("maps:building_classes")
def building_classes(w, route):
    west, south, east, north = w.district.geom.extent
    bbox = f"{west - 0.001},{south - 0.001},{east + 0.001},{north + 0.001}"

    def observe(who):
        answer = fetch(w, who, "get", reverse(route.name), {"colour_by": "residents", "bbox": bbox})
        if answer.status != 200:
            return answer.outcome
        data = answer.json()
        return data["buildings"], data["classes"]["min"]  # the lowest class bound: no count under five unless exact

    def expect(who):
        if who not in POPULATION:
            return web(who, 403)
        present = [n for key in PLACES[who] if (n := shown(who, RESIDENTS[key])) is not None]
        return len(PLACES[who]), float(min(present)) if present else None

    return same_for(IDENTITIES, observe, expect)


@rule("maps:building_panel")
def building_panel(w, route):
    def observe(who):
        found = {}
        for key, building in w.buildings.items():
            answer = fetch(w, who, "get", reverse(route.name, args=[building.pk]))
            found[key] = answer.outcome
            if answer.status == 200:
                panel = answer.json()
                households = panel["household_list"]
                if who in PERSONAL_DATA:  # by name, phone masked, within the persons the user may open
                    expected_rows = [w.residents[key].household.phone_masked] if key in PLACES[who] else []
                    assert [row["phone_masked"] for row in households] == expected_rows
                else:
                    assert households is None
                if "structure" not in panel:
                    assert "households" not in panel
                found[key] = (200, panel["structure"]["residents"] if "structure" in panel else ABSENT)
        return found

    def expect(who):
        found = visible_or_404(who, GRID_KEYS, PLACES.get(who, ()))
        for key, outcome in found.items():
            if outcome == 200:
                found[key] = (200, shown(who, RESIDENTS[key]) if who in POPULATION else ABSENT)
        return found

    return same_for(IDENTITIES, observe, expect)


# planners' statistics (统计分析), exports and the map report


def _statistics_status(who: str) -> Any:
    return web(who, 200 if who in STATISTICS else 403)


@rule(
    "maps:statistics",
    "maps:stats_series",
    "maps:stats_hotspots",
    "maps:stats_coverage",
)
def statistics_page(w, route):
    url = reverse(route.name)
    return same_for(IDENTITIES, lambda who: fetch(w, who, "get", url).outcome, _statistics_status)


@rule("maps:stats_distance")
def statistics_distance(w, route):
    params = {"question": "households_near", "facility_type": w.facilities["a1g1"].facility_type_id, "metres": 300}
    url = reverse(route.name)
    return same_for(IDENTITIES, lambda who: fetch(w, who, "get", url, params).outcome, _statistics_status)


@rule("maps:stats_counts")
def statistics_counts(w, route):
    codes = {grid.code: key for key, grid in w.grids.items()}

    def observe(who):
        answer = fetch(
            w,
            who,
            "get",
            reverse(route.name),
            {"level": "grid", "by_month": "0", "by_category": "0", "first_day": w.at.date().isoformat()},
        )
        if answer.status != 200:
            return answer.outcome
        return frozenset(codes[row["code"]] for row in answer.json()["rows"])

    return same_for(IDENTITIES, observe, lambda who: web(who, STATISTICS.get(who, 403)))


@rule("maps:stats_profile")
def statistics_profile(w, route):
    """Population per grid: the statistics module suppresses every figure under five."""

    codes = {grid.code: key for key, grid in w.grids.items()}

    def observe(who):
        answer = fetch(w, who, "get", reverse(route.name))
        if answer.status != 200:
            return answer.outcome
        data = answer.json()
        assert "population" in data["suppressed"]
        return {codes[row["code"]]: row["population"] for row in data["rows"]}

    def expect(who):  # exports suppress for everyone, the admin included
        return (
            web(who, {key: RESIDENTS[key] if RESIDENTS[key] >= 5 else None for key in STATISTICS[who]})
            if who in STATISTICS
            else web(who, 403)
        )

    return same_for(IDENTITIES, observe, expect)


@rule("maps:stats_export")
def statistics_export(w, route):
    codes = {grid.code: key for key, grid in w.grids.items()}

    def observe(who):
        found = {}
        for fmt in ("csv", "geojson", "gpkg"):
            answer = fetch(
                w,
                who,
                "get",
                reverse(route.name, args=["counts", fmt]),
                {"level": "grid", "by_month": "0", "by_category": "0", "first_day": w.at.date().isoformat()},
            )
            if answer.status != 200:
                found[fmt] = answer.outcome
            elif fmt == "csv":
                rows = list(csv.reader(io.StringIO(answer.body.decode("utf-8-sig"))))
                found[fmt] = frozenset(codes[row[0]] for row in rows[1:] if row and row[0] in codes)
            else:
                found[fmt] = frozenset(key for code, key in codes.items() if code.encode() in answer.body)
        return found

    return same_for(
        IDENTITIES,
        observe,
        lambda who: dict.fromkeys(("csv", "geojson", "gpkg"), web(who, STATISTICS.get(who, 403))),
    )


@rule("maps:map_report")
def map_report(w, route):
    def observe(who):
        return {
            street: fetch(w, who, "get", reverse(route.name), {"street": w.streets[street].pk}).outcome
            for street in ("A", "B")
        }

    def expect(who):
        if who not in STATISTICS:
            return dict.fromkeys(("A", "B"), _statistics_status(who))
        return {"A": 200, "B": 200 if who in ("planner", "admin") else 403}

    return same_for(IDENTITIES, observe, expect)


# grid design (网格划分)


@rule("maps:grid_design")
def grid_design(w, route):
    url = reverse(route.name)
    return same_for(
        IDENTITIES,
        lambda who: fetch(w, who, "get", url).outcome,
        lambda who: web(who, 200 if who in DESIGNERS else 403),
    )


@rule("maps:grid_design_propose", "maps:grid_design_merge", "maps:grid_design_split", "maps:grid_design_adopt")
def grid_design_post(w, route):
    url = reverse(route.name) if route.name.endswith("propose") else reverse(route.name, args=[999999])
    allowed = 200 if route.name.endswith("propose") else 404  # an empty form is shown again; no such proposal

    def observe(who):
        outcome = rolled_back(lambda: fetch(w, who, "post", url).outcome)
        assert GridDesignProposal.objects.count() == 0
        return outcome

    return same_for(IDENTITIES, observe, lambda who: web(who, allowed if who in DESIGNERS else 403))


# the command center (指挥中心)


def _numbers_in_page(w, text: str) -> frozenset[str]:
    return frozenset(key for key, case in w.cases.items() if case.number in text)


@rule("command:queue")
def command_queue(w, route):
    def observe(who):
        answer = fetch(w, who, "get", reverse(route.name), {"tab": "open"})
        return _numbers_in_page(w, answer.text()) if answer.status == 200 else answer.outcome

    return same_for(CASE_LEVEL, observe, lambda who: web(who, CASES_SEEN[who]))


@rule("command:department")
def command_department(w, route):
    def observe(who):
        pages = [fetch(w, who, "get", reverse(route.name), {"tab": tab}) for tab in ("todo", "done")]
        if pages[0].status != 200:
            return pages[0].outcome
        return _numbers_in_page(w, pages[0].text() + pages[1].text())

    return same_for(
        IDENTITIES, observe, lambda who: web(who, frozenset({"c1"}) if who == "department_handler" else frozenset())
    )


@rule("command:register")
def command_register(w, route):
    url = reverse(route.name)

    def observe(who):
        page = fetch(w, who, "get", url).outcome
        posted = rolled_back(lambda: fetch(w, who, "post", url).outcome)  # an empty form: nothing is registered
        assert Case.objects.count() == len(CASE_KEYS)
        return page, posted

    return same_for(IDENTITIES, observe, lambda who: webs(who, (200, 400) if who in REGISTRARS else (403, 403)))


# 上报数 per grid worker on the 综合评价 tables (fixed L3): an evaluator counts the reports
# made in his scope only. worker_b reported c2 in street A and c4 in street B.
INDICATOR_REPORTS = {
    "shift_leader": {"worker_a": 2, "worker_b": 1},
    "leader": {"worker_a": 2, "worker_b": 1},
    "planner": {"worker_a": 2, "worker_b": 2},  # aggregates of the whole district are their work
    "admin": {"worker_a": 2, "worker_b": 2},
}


@rule("command:indicators")
def command_indicators(w, route):
    """The page and its CSV and Excel exports: evaluators only, each with his scope's figures."""
    url = reverse(route.name)
    period = {"start": (w.at.date() - dt.timedelta(days=1)).isoformat(), "end": timezone.localdate().isoformat()}

    def reports(answer):
        """上报数 by worker from the CSV or the Excel export."""
        if answer.status != 200:
            return answer.outcome
        if answer.body.startswith(b"PK"):  # the workbook: a title row, the headers, the rows
            sheet = openpyxl.load_workbook(io.BytesIO(answer.body)).worksheets[0]
            rows = [[c.value for c in row] for row in sheet.iter_rows(min_row=3)]
        else:
            rows = list(csv.reader(io.StringIO(answer.body.decode("utf-8-sig"))))[1:]
        return {row[0]: int(row[2]) for row in rows}

    def observe(who):
        page = fetch(w, who, "get", url).outcome
        workers = {"level": "grid_worker", **period}
        csv_export = fetch(w, who, "get", url, {**workers, "format": "csv"})
        xlsx_export = fetch(w, who, "get", url, {**workers, "format": "xlsx"})
        return page, reports(csv_export), reports(xlsx_export)

    def expect(who):
        if who not in EVALUATORS:
            return webs(who, (403, 403, 403))
        return 200, INDICATOR_REPORTS[who], INDICATOR_REPORTS[who]

    return same_for(IDENTITIES, observe, expect)


@rule("command:case_detail")
def command_case_detail(w, route):
    def observe(who):
        found = {}
        for key, case in w.cases.items():
            answer = fetch(w, who, "get", reverse(route.name, args=[case.pk]))
            found[key] = answer.outcome
            if answer.status == 200 and case.reporter_phone_masked:
                assert case.reporter_phone_masked in answer.text()  # masked, never clear (fetch checks)
        return found

    return same_for(CASE_LEVEL, observe, lambda who: visible_or_404(who, CASE_KEYS, CASES_SEEN.get(who, ())))


REFUSED = "refused"


def _refused(outcome: Any) -> Any:
    """A refusal that writes nothing: bad input (400), role (403) or state (409), whichever the
    service meets first for this case; which one is the workflow's business (tests/events)."""
    return REFUSED if outcome in (400, 403, 409) else outcome


def _roles_for(action: str) -> frozenset[str]:
    return frozenset(role for t in workflow.TRANSITIONS if t.action == action for role in t.roles)


def _an_invisible_case(who: str) -> str | None:
    hidden = sorted(set(CASE_KEYS) - CASES_SEEN[who])
    return hidden[0] if hidden else None


def _a_visible_case(who: str) -> str | None:
    seen = sorted(CASES_SEEN[who])
    return seen[0] if seen else None


# One action of each kind of actor (the view looks the case up before it looks at the action).
ACTIONS_PROBED = ("file", "handle", "urge")


@rule("command:case_act")
def command_case_act(w, route):
    """Every action on a case outside the user's sight is a 404, writing nothing; 督办 (urge) on a
    case in sight is refused (403) to every role the workflow table does not give it to."""
    history = CaseHistory.objects.count()

    def observe(who):
        found = {}
        hidden = _an_invisible_case(who) if who != "anonymous" else "c1"
        if hidden:
            for action in ACTIONS_PROBED:
                url = reverse(route.name, args=[w.cases[hidden].pk, action])
                found[f"{action} hidden"] = rolled_back(lambda url=url: fetch(w, who, "post", url).outcome)
        seen = _a_visible_case(who) if who != "anonymous" else None
        if seen and w.users[who].role not in _roles_for("urge"):
            url = reverse(route.name, args=[w.cases[seen].pk, "urge"])
            urge = {"level": "normal", "comment": "督办"}
            found["urge seen"] = rolled_back(lambda: fetch(w, who, "post", url, urge).outcome)
        assert CaseHistory.objects.count() == history
        return found

    def expect(who):
        hidden = _an_invisible_case(who) if who != "anonymous" else "c1"
        expected = {f"{action} hidden": web(who, 404) for action in ACTIONS_PROBED} if hidden else {}
        seen = _a_visible_case(who) if who != "anonymous" else None
        if seen and w.users[who].role not in _roles_for("urge"):
            expected["urge seen"] = 403
        return expected

    return same_for(CASE_LEVEL, observe, expect)


# the REST API (phones and other clients)


def api_status_rule(method: str, status: Callable[[str], Any], data: Any = None):
    def check(w, route):
        url = reverse(route.name)

        def observe(who):
            return rolled_back(lambda: fetch(w, who, method, url, data, api=True, format="json").outcome)

        return same_for(IDENTITIES, observe, lambda who: api(who, status(who)))

    return check


@rule("patrol_api:token")
def api_token(w, route):
    def observe(who):
        cache.clear()  # the log-in throttle counts per address, and every identity here is 127.0.0.1
        return fetch(w, who, "get", reverse(route.name)).outcome

    return same_for(IDENTITIES, observe, lambda who: 405)


for _name in ("patrol_api:logout", "patrol_api:logout-all"):
    RULES[_name] = api_status_rule("get", lambda who: 405)
for _name in ("patrol_api:categories", "patrol_api:departments", "patrol_api:workflow"):
    RULES[_name] = api_status_rule("get", lambda who: 200)


@rule("patrol_api:me")
def api_me(w, route):
    def observe(who):
        answer = fetch(w, who, "get", reverse(route.name), api=True)
        return answer.json()["username"] if answer.status == 200 else answer.outcome

    return same_for(IDENTITIES, observe, lambda who: api(who, w.users[who].username if who != "anonymous" else None))


@rule("patrol_api:my-grids")
def api_my_grids(w, route):
    codes = {grid.code: key for key, grid in w.grids.items()}

    def observe(who):
        answer = fetch(w, who, "get", reverse(route.name), api=True)
        if answer.status != 200:
            return answer.outcome
        data = answer.json()
        features = data["features"] if isinstance(data, dict) else data
        return frozenset(codes[f["properties"]["code"]] for f in features)

    def expect(who):
        return api(who, PLACES[who] if who.startswith("grid_worker") else frozenset())

    return same_for(IDENTITIES, observe, expect)


def api_case_list_rule(expected: Callable[[str], frozenset[str]], identities=IDENTITIES):
    def check(w, route):
        by_id = cases_by_id(w)

        def observe(who):
            answer = fetch(w, who, "get", reverse(route.name), api=True)
            if answer.status != 200:
                return answer.outcome
            data = answer.json()
            rows = data["results"] if isinstance(data, dict) else data
            return frozenset(by_id[row["id"]] for row in rows)

        return same_for(identities, observe, lambda who: api(who, expected(who)))

    return check


REPORTS = {"grid_worker": {"c1", "c5"}, "grid_worker_b": {"c2", "c4"}, "operator": {"c3"}}
RULES["patrol_api:my-reports"] = api_case_list_rule(lambda who: frozenset(REPORTS.get(who, ())))
RULES["patrol_api:my-tasks"] = api_case_list_rule(
    lambda who: frozenset({"c3"}) if who == "grid_worker" else frozenset()  # 核实 of the hotline call
)
_case_list = api_case_list_rule(lambda who: CASES_SEEN[who], CASE_LEVEL)


@rule("patrol_api:cases")
def api_cases(w, route):
    """GET: the cases in sight. POST without a body: refused as invalid input, nothing created."""
    observed, expected = _case_list(w, route)
    posted = api_status_rule("post", lambda who: 400)(w, route)
    assert Case.objects.count() == len(CASE_KEYS) and CaseReceipt.objects.count() == 1
    return {"get": observed, "post": posted[0]}, {"get": expected, "post": posted[1]}


@rule("patrol_api:cases-self-handled")
def api_self_handled(w, route):
    posted = api_status_rule("post", lambda who: 400)(w, route)
    read = api_status_rule("get", lambda who: 405)(w, route)
    assert Case.objects.count() == len(CASE_KEYS)
    return {"post": posted[0], "get": read[0]}, {"post": posted[1], "get": read[1]}


def api_case_rule(suffix: str = ""):
    def check(w, route):
        by_id = cases_by_id(w)

        def observe(who):
            found = {}
            for key, case in w.cases.items():
                answer = fetch(w, who, "get", reverse(route.name, args=[case.pk]), api=True)
                found[key] = answer.outcome
                if answer.status == 200 and route.name == "patrol_api:case-duplicates":
                    assert {by_id[row["id"]] for row in answer.json()} <= CASES_SEEN[who]
                if answer.status == 200 and route.name == "patrol_api:case":
                    assert answer.json()["reporter_phone_masked"] == case.reporter_phone_masked
            return found

        return same_for(CASE_LEVEL, observe, lambda who: visible_or_404(who, CASE_KEYS, CASES_SEEN[who], 401))

    return check


for _name in ("patrol_api:case", "patrol_api:case-routing", "patrol_api:case-duplicates"):
    RULES[_name] = api_case_rule()


def test_a_photo_is_served_only_under_its_own_case(world):
    """The photo URL names its case: another case's id never opens it, even for the admin."""
    c1_photo = world.photos["c1"]
    for who in ("admin", "grid_worker"):
        url = reverse("patrol_api:case-photo", args=[world.cases["c5"].pk, c1_photo.pk])
        assert fetch(world, who, "get", url, api=True).status == 404


def api_action_rule(action: str):
    def check(w, route):
        history = CaseHistory.objects.count()

        def observe(who):
            found = {}
            hidden = _an_invisible_case(who) if who != "anonymous" else "c1"
            seen = _a_visible_case(who) if who != "anonymous" else None
            for label, key in (("hidden", hidden), ("seen", seen)):
                if key is None or (label == "seen" and w.users[who].role in _roles_for(action)):
                    continue
                url = reverse(route.name, args=[w.cases[key].pk])
                found[label] = rolled_back(lambda url=url: fetch(w, who, "post", url, {}, api=True, format="json"))
            assert CaseHistory.objects.count() == history
            return {label: _refused(answer.outcome) for label, answer in found.items()}

        def expect(who):
            expected = {}
            if who == "anonymous":
                return {"hidden": 401}
            if _an_invisible_case(who):
                expected["hidden"] = 404
            if _a_visible_case(who) and w.users[who].role not in _roles_for(action):
                expected["seen"] = REFUSED
            return expected

        return same_for(CASE_LEVEL, observe, expect)

    return check


for _action in workflow.Action:
    if f"patrol_api:case-action-{_action.value}" in {route.name for route in ROUTES}:
        RULES[f"patrol_api:case-action-{_action.value}"] = api_action_rule(_action.value)


# Patrols and check-ins: the grid workers' right (accounts/roles.py); the superuser has every right.
PATROLLERS = {"grid_worker", "grid_worker_b", "admin"}


def _patrollers_only(ok: Any) -> Callable[[str], Any]:
    return lambda who: ok if who in PATROLLERS else 403


@rule("patrol_api:patrols")
def api_patrol_start(w, route):
    # Both grid workers are on patrol already: starting again returns the open patrol (200)
    result = api_status_rule("post", lambda who: 201 if who == "admin" else _patrollers_only(200)(who))(w, route)
    assert PatrolSession.objects.count() == 2
    return result


@rule("patrol_api:patrol-points", "patrol_api:patrol-stop")
def api_patrol_session(w, route):
    url = reverse(route.name, args=[w.sessions["grid_worker"].pk])
    own = 400 if route.name.endswith("points") else 200  # no points sent / stopped (rolled back)

    def observe(who):
        return rolled_back(lambda: fetch(w, who, "post", url, {}, api=True, format="json").outcome)

    def expect(who):
        if who in ("grid_worker_b", "admin"):
            return 404  # another worker's patrol
        return api(who, _patrollers_only(own)(who))

    return same_for(IDENTITIES, observe, expect)


@rule("patrol_api:check-ins")
def api_check_in(w, route):
    result = api_status_rule("post", _patrollers_only(400))(w, route)
    assert CheckIn.objects.count() == 0
    return result


# Open311 GeoReport v2: public by the standard, public reports only, no reporter ever


@rule(
    "open311:discovery",
    "open311:services",
    "open311:service",
    "open311:requests",
    "open311:request",
    "open311:token",
)
def open311(w, route):
    public = w.cases["c6"]
    receipt = CaseReceipt.objects.get(case=public)
    args = {
        "open311:service": {"service_code": w.category.code, "fmt": "json"},
        "open311:request": {"service_request_id": public.number, "fmt": "json"},
        "open311:token": {"token": receipt.token, "fmt": "json"},
    }.get(route.name, {"fmt": "json"})
    url = reverse(route.name, kwargs=args)

    def observe(who):
        answer = fetch(w, who, "get", url)
        assert PUBLIC_CALLER not in answer.text() and HOTLINE_CALLER not in answer.text()
        if route.name == "open311:requests":
            return answer.status, frozenset(row["service_request_id"] for row in answer.json())
        return answer.status

    expected = (200, frozenset({public.number})) if route.name == "open311:requests" else 200
    observed, wanted = same_for(IDENTITIES, observe, lambda who: expected)
    # an internal case is not published
    internal = reverse("open311:request", kwargs={"service_request_id": w.cases["c3"].number, "fmt": "json"})
    observed["internal case"], wanted["internal case"] = fetch(w, "anonymous", "get", internal).status, 404
    return observed, wanted


# the admin site and the import / export page


@rule("geodata_import:index")
def admin_import_page(w, route):
    return same_for(
        IDENTITIES,
        lambda who: fetch(w, who, "get", reverse(route.name)).outcome,
        lambda who: 200 if who in ("admin", "staff_operator") else ADMIN_LOGIN,
    )


@rule("geodata_import:export")
def admin_export(w, route):
    """Exports need the view permissions of the layer's models; the population leaves masked only."""

    def observe(who):
        answer = fetch(w, who, "get", reverse(route.name), {"layer": "population", "fmt": "csv"})
        if answer.status == 200:
            text = answer.body.decode("utf-8-sig")
            assert all(person.id_number_masked in text for person in w.residents.values())
        return answer.outcome

    def expect(who):
        return {"admin": 200, "staff_operator": 403}.get(who, ADMIN_LOGIN)

    with _captured("geodata.admin_import") as records:
        result = same_for(IDENTITIES, observe, expect)
    assert [r.getMessage() for r in records if "export" in r.getMessage()] == [
        "admin export by admin: layer=population format=csv"
    ]
    return result


class _captured:
    """Log records of one logger while the block runs."""

    def __init__(self, name: str):
        self.logger = logging.getLogger(name)
        self.records: list[logging.LogRecord] = []
        self.handler = logging.Handler()
        self.handler.emit = self.records.append  # type: ignore[method-assign]

    def __enter__(self):
        self.logger.addHandler(self.handler)
        self.level, self.logger.level = self.logger.level, logging.INFO
        return self.records

    def __exit__(self, *exc):
        self.logger.removeHandler(self.handler)
        self.logger.level = self.level


@rule("geodata_import:problems")
def admin_import_problems(w, route):
    """The rows an import refused may hold personal data: only their uploader downloads them."""
    token = str(uuid.uuid4())
    folder = w.media / "import-problems" / token
    folder.mkdir(parents=True)
    (folder / "owner.json").write_text(json.dumps({"user": w.users["admin"].pk, "name": "x.problems.csv"}))
    (folder / "problems.csv").write_text("行,问题\n2,缺少身份证号\n")
    url = reverse(route.name, args=[token])
    return same_for(
        IDENTITIES,
        lambda who: fetch(w, who, "get", url).outcome,
        lambda who: {"admin": 200, "staff_operator": 403}.get(who, ADMIN_LOGIN),
    )


def _admin_url(w, route: Route) -> str:
    """A concrete URL for one admin pattern: objects of the world where the pattern takes an id."""
    name = route.name.removeprefix("admin:")
    if route.name.startswith("admin/"):  # the admin's unnamed catch-all
        return "/admin/no-such-page/"
    simple = {"index", "login", "logout", "password_change", "password_change_done", "jsi18n", "autocomplete"}
    if name in simple:
        return reverse(route.name)
    if name == "app_list":
        return reverse(route.name, kwargs={"app_label": "geodata"})
    if name == "view_on_site":
        person = w.residents["a1g1"]
        return reverse(route.name, args=[ContentType.objects.get_for_model(person).pk, person.pk])
    if name == "geodata_person_reveal":
        return reverse(route.name, args=[w.residents["a1g1"].pk])
    if name == "auth_user_password_change":  # named by Django's UserAdmin, for our accounts.User
        return reverse(route.name, args=[w.users["grid_worker"].pk])
    for model in admin.site._registry:
        prefix = f"{model._meta.app_label}_{model._meta.model_name}_"
        if name.startswith(prefix):
            view = name.removeprefix(prefix)
            if view in ("changelist", "add"):
                return reverse(route.name)
            obj = model._default_manager.order_by("pk").first()
            return reverse(route.name, args=[obj.pk if obj is not None else 0])
    raise AssertionError(f"no URL for {route.name}")


def _model_view(name: str):
    """(model, its ModelAdmin, view) of an admin URL name such as "geodata_person_change"."""
    for model, model_admin in admin.site._registry.items():
        prefix = f"{model._meta.app_label}_{model._meta.model_name}_"
        if name.startswith(prefix):
            return model, model_admin, name.removeprefix(prefix)
    return None, None, None


def _superuser_sees(w, name: str) -> Any:
    """What the superuser gets from one model page: what its ModelAdmin allows (the append-only
    logs allow no add, change or delete), a redirect for an id that has no object."""
    model, model_admin, view = _model_view(name)
    if model is None:
        return 200  # auth_user_password_change: the superuser sets any password
    request = RequestFactory().get("/admin/")
    request.user = w.users["admin"]
    if view in ("changelist", "add"):
        return 200 if view == "changelist" or model_admin.has_add_permission(request) else 403
    obj = model._default_manager.order_by("pk").first()
    if view == "delete" and not model_admin.has_delete_permission(request, obj):
        return 403
    if obj is None:
        return 302  # "no such object": back to the admin index
    return 200  # change (read-only where change is not allowed), history, password, reveal


NO_ACCESS = "no access"


def admin_rule(w, route):
    """Nobody but staff reaches the admin site; a staff member without model permissions opens
    no model page; the superuser opens every page without an error."""
    url = _admin_url(w, route)
    name = route.name.removeprefix("admin:")
    general = {"login": 302, "logout": 405, "index": 200, "password_change": 200, "password_change_done": 200}
    general |= {"jsi18n": 200, "app_list": 200}

    def observe(who):
        answer = fetch(w, who, "get", url)
        model_page = name not in general and not route.name.startswith("admin/")
        if who == "staff_operator" and model_page and (answer.status, answer.location) in ((403, ""), (302, "/admin/")):
            return NO_ACCESS  # refused, or told that the id names no object
        return answer.outcome

    def expect(who):
        if who not in ("admin", "staff_operator"):
            return {"login": 200, "logout": 302}.get(name, ADMIN_LOGIN)  # logout: back to the admin index
        if name in general:
            return 404 if (who, name) == ("staff_operator", "app_list") else general[name]  # no model of the app
        if route.name.startswith("admin/") or name == "view_on_site":
            return 404  # the catch-all; a person has no public page
        if who == "staff_operator":
            return NO_ACCESS
        if name == "autocomplete":
            return 403  # without its query parameters
        return _superuser_sees(w, name)

    return same_for(IDENTITIES, observe, expect)


def _rule_for(route: Route) -> Rule | None:
    if route.name.startswith(("admin:", "admin/")):
        return admin_rule
    return RULES.get(route.name)


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_every_url_pattern(world, route):
    check = _rule_for(route)
    assert check is not None, f"{route.pattern} ({route.name}) has no access rule: decide who may use it"
    observed, expected = check(world, route)
    assert observed == expected


def test_every_rule_names_a_url_that_exists():
    names = {route.name for route in ROUTES}
    assert sorted(set(RULES) - names) == []


def test_the_world_is_what_the_matrix_assumes(world):
    """The spec tables above rest on these facts of the world: checked so that they cannot drift."""
    grid_key = grid_keys_by_id(world)
    assert {key: (grid_key[case.grid_id], case.state) for key, case in world.cases.items()} == {
        "c1": ("a1g1", "dispatched"),
        "c2": ("a1g2", "reported"),
        "c3": ("a1g1", "verifying"),
        "c4": ("b1g1", "reported"),
        "c5": ("a1g1", "dispatched"),
        "c6": ("a2g1", "verifying"),
    }
    assert world.cases["c1"].current_department == world.sanitation
    assert world.cases["c5"].current_department == world.greening
    assert world.cases["c3"].current_assignee == world.users["grid_worker"]
    assert world.cases["c3"].reporter_phone_masked == "139****5678"
    assert set(world.photos) == {"c1", "c2", "c3", "c4", "c5"}  # Open311 sends a media URL, not a file
    residents = {key: Person.objects.filter(household__building=b).count() for key, b in world.buildings.items()}
    assert residents == {key: Person.objects.filter(household__grid=g).count() for key, g in world.grids.items()}
    assert residents == RESIDENTS  # one building per grid: a count of 7, one of 3, two of 1
    assert PersonalDataReveal.objects.count() == 0


def test_the_personal_data_scan_sees_a_reveal_and_every_reveal_is_logged(world):
    """The scan of every answer is not blind: the one page that shows an ID number in clear (the
    admin's reveal, with a reason) trips it. That reveal is logged (who, what, why); a grid worker,
    who has the right in his grids but no admin access, reaches no reveal page and logs nothing."""
    resident = world.residents["a1g1"]
    url = reverse("admin:geodata_person_reveal", args=[resident.pk])
    reveal = {"field": "id_number", "reason": "入户核查低保"}
    assert fetch(world, "grid_worker", "post", url, reveal).outcome == ADMIN_LOGIN
    assert PersonalDataReveal.objects.count() == 0
    with pytest.raises(AssertionError, match="in clear"):
        fetch(world, "admin", "post", url, reveal)
    log = PersonalDataReveal.objects.get()
    assert (log.user, log.person, log.field) == (world.users["admin"], resident, "id_number")
    assert log.reason == "入户核查低保"
    assert fetch(world, "admin", "post", url, {"field": "id_number", "reason": ""}).status == 200  # no reason: refused
    assert PersonalDataReveal.objects.count() == 1
