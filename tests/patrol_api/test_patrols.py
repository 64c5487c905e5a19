"""Patrol sessions, GPS batches and check-ins through the API (over patrol.services)."""

import datetime as dt

import pytest
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from patrol.models import CheckIn, PatrolPoint, PatrolSession
from tests.events.factories import POINT_SW


def points(start: dt.datetime, count: int, step_s: int = 30) -> list[dict]:
    return [
        {
            "lon": POINT_SW.x + i * 0.0001,
            "lat": POINT_SW.y,
            "recorded_at": (start + dt.timedelta(seconds=i * step_s)).isoformat(),
            "accuracy_m": 6,
        }
        for i in range(count)
    ]


@pytest.mark.django_db
def test_a_patrol_from_start_to_stop_keeps_points_and_a_track(world):
    client = world.clients["worker"]
    started = client.post("/api/v1/patrols")
    assert started.status_code == 201
    session_id = started.json()["id"]
    # Starting again while it is open returns the same patrol
    again = client.post("/api/v1/patrols")
    assert (again.status_code, again.json()["id"]) == (200, session_id)

    begin = timezone.now() - dt.timedelta(minutes=10)
    batch = points(begin, 5)
    first = client.post(f"/api/v1/patrols/{session_id}/points", {"points": batch}, format="json")
    assert first.json() == {"accepted": 5, "duplicates": 0, "rejected": []}
    # The same batch resent after a lost answer adds nothing
    resent = client.post(f"/api/v1/patrols/{session_id}/points", {"points": batch}, format="json")
    assert resent.json() == {"accepted": 0, "duplicates": 5, "rejected": []}

    stopped = client.post(f"/api/v1/patrols/{session_id}/stop")
    body = stopped.json()
    assert stopped.status_code == 200
    assert body["ended_at"] is not None
    assert body["track"]["type"] == "LineString"
    assert len(body["track"]["coordinates"]) == 5
    assert 35 < body["length_m"] < 45  # 4 steps of 0.0001° of longitude at 29.4° N ≈ 38.8 m
    assert PatrolPoint.objects.filter(session_id=session_id).count() == 5


@pytest.mark.django_db
def test_bad_points_are_reported_by_index_and_the_good_ones_kept(world):
    client = world.clients["worker"]
    session_id = client.post("/api/v1/patrols").json()["id"]
    good = points(timezone.now() - dt.timedelta(minutes=5), 2)
    batch = [
        good[0],
        {"lon": "abc", "lat": 29.4, "recorded_at": good[0]["recorded_at"]},
        {"lon": 0, "lat": 0, "recorded_at": good[0]["recorded_at"]},
        {"lon": 106.4, "lat": 29.4, "recorded_at": "2026-13-45T25:00:00+08:00"},
        {"lon": 106.4, "lat": 29.4, "recorded_at": "2026-11-22T09:00:00"},
        {"lon": 10**400, "lat": 29.4, "recorded_at": good[1]["recorded_at"]},
        {"lon": 106.4, "lat": 29.4, "recorded_at": "0001-01-01T00:00:00+08:00"},
        good[1],
    ]
    response = client.post(f"/api/v1/patrols/{session_id}/points", {"points": batch}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["duplicates"]) == (2, 0)
    assert [r["index"] for r in body["rejected"]] == [1, 2, 3, 4, 5, 6]
    assert "不在中国境内" in body["rejected"][1]["message"]
    assert PatrolPoint.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    "payload",
    [{}, {"points": "many"}, {"points": [1, 2]}, {"points": [{}] * 2001}],
    ids=["missing", "str", "ints", "too-many"],
)
def test_a_malformed_batch_is_400_and_writes_nothing(world, payload):
    client = world.clients["worker"]
    session_id = client.post("/api/v1/patrols").json()["id"]
    response = client.post(f"/api/v1/patrols/{session_id}/points", payload, format="json")
    assert (response.status_code, list(response.json())) == (400, ["points"])
    assert PatrolPoint.objects.count() == 0


@pytest.mark.django_db
def test_another_workers_patrol_is_404(world):
    session_id = world.clients["worker"].post("/api/v1/patrols").json()["id"]
    other = world.clients["other_worker"]
    assert other.post(f"/api/v1/patrols/{session_id}/points", {"points": []}, format="json").status_code == 404
    assert other.post(f"/api/v1/patrols/{session_id}/stop").status_code == 404
    assert other.post("/api/v1/patrols/999999/stop").status_code == 404
    assert PatrolSession.objects.get().ended_at is None


@pytest.mark.django_db
def test_only_grid_workers_patrol(world):
    response = world.clients["operator"].post("/api/v1/patrols")
    assert (response.status_code, response.json()["detail"]) == (403, "只有网格员可以记录巡查和签到")
    assert (
        world.clients["operator"]
        .post("/api/v1/check-ins", {"kind": "in", "longitude": 106.4, "latitude": 29.4})
        .status_code
        == 403
    )
    assert PatrolSession.objects.count() == CheckIn.objects.count() == 0


@pytest.mark.django_db
def test_check_in_and_out_record_the_grid(world):
    client = world.clients["worker"]
    response = client.post(
        "/api/v1/check-ins", {"kind": "in", "longitude": POINT_SW.x, "latitude": POINT_SW.y}, format="json"
    )
    assert response.status_code == 201
    assert (response.json()["kind_display"], response.json()["grid"]) == ("签到", world.grid_sw.code)
    outside = client.post("/api/v1/check-ins", {"kind": "out", "longitude": 116.4, "latitude": 39.9}, format="json")
    assert (outside.status_code, outside.json()["grid"]) == (201, None)
    assert list(CheckIn.objects.order_by("at").values_list("kind", flat=True)) == ["in", "out"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"kind": "lunch", "longitude": 106.4, "latitude": 29.4}, "kind"),
        ({"kind": "in", "latitude": 29.4}, "longitude"),
        ({"kind": "in", "longitude": 2.35, "latitude": 48.85}, "location"),
    ],
)
def test_bad_check_ins_are_400(world, payload, field):
    response = world.clients["worker"].post("/api/v1/check-ins", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert CheckIn.objects.count() == 0


@pytest.mark.django_db
def test_a_batch_of_thirty_points_costs_the_same_few_queries_as_one(world, django_assert_num_queries):
    # Given a phone with a knox token and an open patrol
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=world.worker)[1]}")
    session_id = client.post("/api/v1/patrols").json()["id"]
    begin = timezone.now() - dt.timedelta(minutes=30)
    # When it uploads 30 points, then exactly 7 queries run, whatever the batch size: token and
    # user, the user's other tokens, the session (view), SAVEPOINT, the session locked, one
    # INSERT for every point, RELEASE (the savepoint only because the test runs in a transaction)
    with django_assert_num_queries(7):
        response = client.post(f"/api/v1/patrols/{session_id}/points", {"points": points(begin, 30)}, format="json")
    assert response.json() == {"accepted": 30, "duplicates": 0, "rejected": []}
    assert PatrolPoint.objects.filter(session_id=session_id).count() == 30
