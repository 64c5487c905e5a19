import types

import pytest
from django.contrib.gis.geos import MultiPolygon, Polygon
from rest_framework.test import APIClient

from accounts.models import Role
from geodata.models import GridAssignment
from tests.events.factories import CategoryFactory
from tests.factories import DepartmentFactory, UserFactory


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Photos go to a temporary directory, never into .local/media."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def api():
    return APIClient()


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def world(district):
    """The test district (2 x 2 grids), two departments, one user per role, one category.

    `worker` patrols grid 3 (south-west, where POINT_SW lies) and `other_worker` grid 1.
    Command-center users are scoped to the test street; the category's default department
    is sanitation (so 立案 dispatches automatically unless asked not to).
    """
    street = district["street"]
    sanitation = DepartmentFactory(code="ZY-HW", name="街道环卫所")
    greening = DepartmentFactory(code="ZY-YL", name="园林绿化所")
    other_street = district["district"].streets.create(
        code="500104002", name="另一街道", geom=MultiPolygon(Polygon.from_bbox((106.5, 29.5, 106.51, 29.51)))
    )
    users = {
        "worker": UserFactory(username="worker", role=Role.GRID_WORKER, first_name="张网格"),
        "other_worker": UserFactory(username="worker2", role=Role.GRID_WORKER),
        "operator": UserFactory(username="operator", role=Role.OPERATOR, street=street),
        "shift_leader": UserFactory(username="shift", role=Role.SHIFT_LEADER, street=street),
        "dispatcher": UserFactory(username="dispatcher", role=Role.DISPATCHER, street=street),
        "leader": UserFactory(username="leader", role=Role.LEADER, street=street),
        "handler": UserFactory(username="handler", role=Role.DEPARTMENT_HANDLER, department=sanitation),
        "other_handler": UserFactory(username="handler2", role=Role.DEPARTMENT_HANDLER, department=greening),
        "outside_operator": UserFactory(username="operator2", role=Role.OPERATOR, street=other_street),
        "planner": UserFactory(username="planner", role=Role.PLANNER),
    }
    grids = district["grids"]
    GridAssignment.objects.create(grid=grids[2], worker=users["worker"], is_primary=True)
    GridAssignment.objects.create(grid=grids[0], worker=users["other_worker"], is_primary=True)
    category = CategoryFactory(default_department=sanitation)
    return types.SimpleNamespace(
        **district,
        **users,
        clients={name: client_for(user) for name, user in users.items()},
        sanitation=sanitation,
        greening=greening,
        category=category,
        grid_sw=grids[2],
    )
