"""The database connection lost in the middle of a request: a clean 503, nothing half written,
and the phone's retry with the same Idempotency-Key creates exactly one case.

The request is made to wait on a lock this test holds (from its own connection), its
backend is then terminated with pg_terminate_backend, as a PostgreSQL restart or a
network cut would do, and the lock is released.
"""

from __future__ import annotations

import base64
import json
import threading
import time

import psycopg
import pytest
from django.db import connection
from django.test import RequestFactory
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from accounts.models import Role
from events.models import Case, CaseHistory, CaseNumberCounter, CasePhoto
from geodata.models import GridAssignment
from gridmgmt.middleware import MESSAGE, RETRY_AFTER_SECONDS, unavailable_response
from patrol_api.models import CaseReceipt
from tests.events.factories import POINT_SW, CategoryFactory, jpeg
from tests.factories import UserFactory, tiled_district
from tests.security.conftest import database_url, stored_files

KEY = "phone-retry-0001"
WAIT_SECONDS = 30


@pytest.fixture
def phone():
    """A grid worker's phone: an API token, a category and a point in the worker's grid."""
    district = tiled_district()
    worker = UserFactory(username="worker", role=Role.GRID_WORKER)
    GridAssignment.objects.create(grid=district["grids"][2], worker=worker, is_primary=True)
    category = CategoryFactory()
    _, token = AuthToken.objects.create(user=worker)
    return worker, category, token


def _report(category) -> dict:
    photo = base64.b64encode(jpeg().read()).decode()
    return {
        "category": category.code,
        "longitude": POINT_SW.x,
        "latitude": POINT_SW.y,
        "description": "人行道上有成堆垃圾",
        "photos": [photo],
    }


def _post(token: str, body: dict):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client.post("/api/v1/cases", body, format="json", HTTP_IDEMPOTENCY_KEY=KEY)


class RequestThread(threading.Thread):
    """One request on its own thread, hence on its own database connection (Django's are per thread)."""

    def __init__(self, token: str, body: dict):
        super().__init__(daemon=True)
        self.token, self.body = token, body
        self.response = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.response = _post(self.token, self.body)
        except BaseException as error:  # reported by the test
            self.error = error
        finally:
            connection.close()


def _backend_waiting_on(holder: psycopg.Connection, request: RequestThread) -> int:
    """The pid of the backend blocked by `holder`'s lock, polling until the request waits on it."""
    deadline = time.monotonic() + WAIT_SECONDS
    with psycopg.connect(database_url(), autocommit=True) as watcher:
        while time.monotonic() < deadline:
            rows = watcher.execute(
                "SELECT pid FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", [holder.info.backend_pid]
            ).fetchall()
            if rows:
                assert len(rows) == 1
                return rows[0][0]
            request.join(timeout=0.01)  # the poll interval; also notices a request that never waited
            assert request.is_alive(), f"the request did not wait on the lock: {request.response} {request.error}"
    raise AssertionError("the request never waited on the lock")


def _nothing_written(media_root) -> None:
    assert Case.objects.count() == 0
    assert CaseHistory.objects.count() == 0
    assert CasePhoto.objects.count() == 0
    assert CaseReceipt.objects.count() == 0
    assert CaseNumberCounter.objects.count() == 0


def _assert_503(response) -> None:
    assert response.status_code == 503
    assert response.json() == {"detail": MESSAGE}
    assert response["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert response["Content-Type"] == "application/json"


def _retry_creates_exactly_one_case(token: str, body: dict, worker, media_root) -> None:
    retried = _post(token, body)
    assert retried.status_code == 201, retried.content
    case = Case.objects.get()
    assert case.client_key == f"{worker.pk}:{KEY}"
    assert case.number == retried.json()["number"]
    assert CaseHistory.objects.filter(case=case).count() == 1
    [photo] = CasePhoto.objects.filter(case=case)
    assert photo.image.name in stored_files(media_root)
    assert CaseReceipt.objects.get().case == case

    again = _post(token, body)  # the answer to the retry was lost too: the phone sends once more
    assert again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["number"] == case.number
    assert Case.objects.count() == 1
    assert CasePhoto.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_connection_lost_while_the_report_waits_answers_503_and_the_retry_creates_one_case(phone, media_root):
    """The report waits in the middle of its transaction, on the day's case-number counter (this
    test holds an uncommitted counter row for the same prefix, as a concurrent report would)."""
    worker, category, token = phone
    body = _report(category)
    prefix = f"{category.code}{timezone.localdate():%Y%m%d}"
    with psycopg.connect(database_url()) as holder:
        holder.execute("INSERT INTO events_casenumbercounter (prefix, last) VALUES (%s, 7)", [prefix])
        request = RequestThread(token, body)
        request.start()
        pid = _backend_waiting_on(holder, request)
        assert holder.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone() == (True,)
        request.join(timeout=WAIT_SECONDS)
        holder.rollback()
    assert not request.is_alive() and request.error is None
    _assert_503(request.response)
    _nothing_written(media_root)
    assert stored_files(media_root) == []

    _retry_creates_exactly_one_case(token, body, worker, media_root)


@pytest.mark.django_db(transaction=True)
def test_connection_lost_at_commit_leaves_no_row_and_the_retry_creates_one_case(phone, media_root):
    """The report has written its case, history, photo and receipt rows and waits at COMMIT:
    PostgreSQL checks the (deferred) foreign keys then, and this test holds the category row."""
    worker, category, token = phone
    body = _report(category)
    with psycopg.connect(database_url()) as holder:
        holder.execute("SELECT id FROM events_category WHERE id = %s FOR UPDATE", [category.pk])
        request = RequestThread(token, body)
        request.start()
        pid = _backend_waiting_on(holder, request)
        waiting = holder.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()[0]
        assert waiting == "COMMIT"
        assert holder.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone() == (True,)
        request.join(timeout=WAIT_SECONDS)
        holder.rollback()
    assert not request.is_alive() and request.error is None
    _assert_503(request.response)
    _nothing_written(media_root)
    # The photo file was written before the COMMIT; the request's end deleted it (no row names it).
    assert stored_files(media_root) == []

    _retry_creates_exactly_one_case(token, body, worker, media_root)


def test_a_page_gets_the_503_page_and_json_clients_get_json():
    """The answer's shape follows the client: a page for browsers, JSON for the API and map endpoints."""
    factory = RequestFactory()
    page = unavailable_response(factory.get("/command/", HTTP_ACCEPT="text/html"))
    assert page.status_code == 503 and page["Content-Type"] == "text/html; charset=utf-8"
    assert MESSAGE in page.content.decode()
    api = unavailable_response(factory.get("/maps/api/cases/"))
    assert api.status_code == 503 and json.loads(api.content) == {"detail": MESSAGE}
    xml = unavailable_response(factory.get("/open311/v2/requests.xml"))
    assert xml.status_code == 503 and xml["Content-Type"] == "application/xml; charset=utf-8"
    assert f"<description>{MESSAGE}</description>" in xml.content.decode()
    for response in (page, api, xml):
        assert response["Retry-After"] == str(RETRY_AFTER_SECONDS)
