import datetime as dt

import pytest
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from accounts.models import Role
from geodata.models import GridAssignment
from tests.factories import UserFactory

PASSWORD = "correct-horse-battery"


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def worker(district):
    user = UserFactory(username="wang", role=Role.GRID_WORKER, first_name="网格员王")
    GridAssignment.objects.create(grid=district["grids"][0], worker=user)
    GridAssignment.objects.create(grid=district["grids"][3], worker=user)
    return user


def test_token_login_returns_an_expiring_token_and_the_profile(api, worker):
    response = api.post("/api/v1/auth/token", {"username": "wang", "password": PASSWORD}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["username"] == "wang"
    assert body["user"]["role"] == "grid_worker"
    assert body["user"]["grid_codes"] == ["500104001001001", "500104001001004"]
    expiry = dt.datetime.fromisoformat(body["expiry"])
    assert dt.timedelta(days=6, hours=23) < expiry - timezone.now() <= dt.timedelta(days=7)
    api.credentials(HTTP_AUTHORIZATION=f"Token {body['token']}")
    assert api.get("/api/v1/me").json()["username"] == "wang"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"username": "wang", "password": "wrong"}, "non_field_errors"),
        ({"username": "wang"}, "password"),
        ({"password": PASSWORD}, "username"),
    ],
)
def test_bad_login_gets_a_field_level_400_and_no_token(api, worker, payload, field):
    response = api.post("/api/v1/auth/token", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert AuthToken.objects.count() == 0


def test_logout_revokes_the_token(api, worker):
    token = api.post("/api/v1/auth/token", {"username": "wang", "password": PASSWORD}, format="json").json()["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.post("/api/v1/auth/logout").status_code == 204
    assert api.get("/api/v1/me").status_code == 401


def test_expired_token_is_refused(api, worker):
    _instance, token = AuthToken.objects.create(user=worker, expiry=dt.timedelta(seconds=-1))
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/v1/me").status_code == 401


def test_login_is_throttled_after_ten_attempts_a_minute_from_one_address(api, worker):
    # Different user names, so that the per-account lock-out (django-axes) does not kick in first.
    codes = [
        api.post("/api/v1/auth/token", {"username": f"guess{n}", "password": "wrong"}, format="json").status_code
        for n in range(11)
    ]
    assert codes == [400] * 10 + [429]


def test_my_grids_is_geojson_with_six_decimals(api, worker, district):
    api.force_authenticate(worker)
    body = api.get("/api/v1/me/grids").json()
    assert body["type"] == "FeatureCollection"
    assert [f["properties"]["code"] for f in body["features"]] == ["500104001001001", "500104001001004"]
    ring = body["features"][0]["geometry"]["coordinates"][0]
    assert all(len(str(value).split(".")[-1]) <= 6 for point in ring for value in point)


def test_anonymous_requests_get_401(api):
    assert api.get("/api/v1/me").status_code == 401
    assert api.get("/api/v1/me/grids").status_code == 401


def test_openapi_schema_and_docs_are_served_without_a_cdn(client, db):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/auth/token" in schema.content
    client.force_login(UserFactory(username="dev", role=Role.ADMIN))
    docs = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in docs
    assert "cdn" not in docs.lower() and "unpkg" not in docs.lower()


def test_logout_all_revokes_every_token_of_the_user(api, worker):
    tokens = [
        api.post("/api/v1/auth/token", {"username": "wang", "password": PASSWORD}, format="json").json()["token"]
        for _ in range(2)
    ]
    api.credentials(HTTP_AUTHORIZATION=f"Token {tokens[0]}")
    assert api.post("/api/v1/auth/logout-all").status_code == 204
    assert AuthToken.objects.filter(user=worker).count() == 0
    api.credentials(HTTP_AUTHORIZATION=f"Token {tokens[1]}")
    assert api.get("/api/v1/me").status_code == 401


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/api/v1/me/reports"),
        ("get", "/api/v1/me/tasks"),
        ("get", "/api/v1/categories"),
        ("get", "/api/v1/departments"),
        ("get", "/api/v1/workflow"),
        ("get", "/api/v1/cases"),
        ("post", "/api/v1/cases"),
        ("post", "/api/v1/cases/self-handled"),
        ("get", "/api/v1/cases/1"),
        ("get", "/api/v1/cases/1/photos/1"),
        ("get", "/api/v1/cases/1/routing"),
        ("get", "/api/v1/cases/1/duplicates"),
        ("post", "/api/v1/cases/1/actions/file"),
        ("post", "/api/v1/patrols"),
        ("post", "/api/v1/patrols/1/points"),
        ("post", "/api/v1/patrols/1/stop"),
        ("post", "/api/v1/check-ins"),
    ],
)
def test_every_endpoint_needs_a_token(api, db, method, url):
    assert getattr(api, method)(url).status_code == 401
