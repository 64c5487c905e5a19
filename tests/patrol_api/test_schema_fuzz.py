"""No input makes the server answer 500: a property-based run (schemathesis) over every operation of /api/schema/.

Each operation gets a bounded number of generated requests, signed in as a grid worker or a
shift leader, against the real PostGIS. Half of the generated ids are replaced by ids that
exist, so the runs reach the services and not only the 404 path.
"""

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from knox.models import AuthToken
from rest_framework.throttling import ScopedRateThrottle
from schemathesis.config import SchemathesisConfig

from events import services as case_services
from events.models import Case
from patrol import services as patrol_services
from patrol_api import services
from tests.events.factories import POINT_SW, jpeg

MAX_EXAMPLES = 10
CALLS = {"count": 0}

# Loaded once at collection through the WSGI application itself (the schema view needs no database).
# The grid worker's run has every phase (the coverage phase tries boundary and missing values
# systematically); the shift leader's run only fuzzes the case endpoints, to keep the suite short.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
case_schema = schemathesis.openapi.from_wsgi(
    "/api/schema/?format=json",
    get_wsgi_application(),
    config=SchemathesisConfig.from_dict({"phases": {"coverage": {"enabled": False}}}),
).include(path_regex="^/api/v1/cases")


@pytest.fixture(scope="module", autouse=True)
def count_calls():
    yield
    print(f"\nschemathesis: {CALLS['count']} generated requests")


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """Like Django's test client: requests must not close the connection that holds the test's transaction."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def seeded(world, monkeypatch):
    """Existing objects whose ids replace half of the generated ones, tokens, and no throttling."""
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"login": "100000/min", "write": "100000/min"})
    case = case_services.case_report(
        actor=world.worker,
        source=Case.Source.GRID_WORKER,
        category=world.category,
        location=POINT_SW,
        description="路边有成堆垃圾",
        photos=[jpeg()],
    )
    session, _ = patrol_services.patrol_start(worker=world.worker)
    _, raw_key = services.api_key_issue(name="fuzz")
    return {
        "case_id": case.pk,
        "photo_id": case.photos.get().pk,
        "session_id": session.pk,
        "service_request_id": case.number,
        "api_key": raw_key,
        "tokens": {role: AuthToken.objects.create(user=getattr(world, role))[1] for role in ("worker", "shift_leader")},
    }


def _use_existing_ids(case, seeded) -> None:
    for name, value in (case.path_parameters or {}).items():
        if name in seeded and isinstance(value, int) and value % 2 == 0:
            case.path_parameters[name] = seeded[name]
    if isinstance(case.body, dict) and "api_key" in case.body and len(str(case.body["api_key"])) % 2 == 0:
        case.body["api_key"] = seeded["api_key"]


FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


def _call(case, seeded, role: str) -> None:
    if case.path.startswith("/api/v1/auth/logout"):
        return  # would revoke the token the rest of the run signs in with
    _use_existing_ids(case, seeded)
    response = case.call(headers={"Authorization": f"Token {seeded['tokens'][role]}"})
    CALLS["count"] += 1
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}\n{response.text[:2000]}"
    )


@pytest.mark.django_db
@schema.parametrize()
@FUZZ_SETTINGS
def test_no_input_makes_a_500_for_a_grid_worker(case, seeded):
    _call(case, seeded, "worker")


@pytest.mark.django_db
@case_schema.parametrize()
@FUZZ_SETTINGS
def test_no_input_makes_a_500_for_a_shift_leader(case, seeded):
    """Case reads and workflow actions again, as a command-center role that may act on them."""
    _call(case, seeded, "shift_leader")
