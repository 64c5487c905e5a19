"""Uploads are checked the same way at every entry point: a photo is decoded as an image (its
name and content type are not trusted) and has a size limit; a refused upload is a 400 with
the reason and leaves nothing behind — no case, no history row, no file in the photo store.

Entry points: the API report (JSON base64 and multipart), 自处理, the API workflow actions
with photos (处置), the command center's registration form and action form, Open311 (a
media URL, never a file), and the admin's import page (a file that is not a layer).
"""

from __future__ import annotations

import base64
import io
import os
import types

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from knox.models import AuthToken
from PIL import Image
from rest_framework.test import APIClient

from accounts.models import Role
from events import services
from events.models import Case, CaseHistory, CasePhoto
from geodata.models import Grid, GridAssignment
from patrol_api import services as api_services
from tests.events.factories import POINT_SW, CategoryFactory, jpeg
from tests.factories import DepartmentFactory, UserFactory, tiled_district
from tests.security.conftest import stored_files

pytestmark = pytest.mark.django_db

PHP = b"<?php system($_GET['c']); ?>"


def _truncated_jpeg() -> bytes:
    data = jpeg(size=(640, 480)).read()
    return data[: len(data) // 2]


def _gif() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "GIF")
    return buffer.getvalue()


# (what, bytes, the reason the server gives)
BAD_PHOTOS = [
    ("a script named photo.jpg", PHP, "文件不是有效的图片"),
    ("a truncated JPEG", _truncated_jpeg(), "文件不是有效的图片"),
    ("a GIF", _gif(), "只接受 JPEG、PNG 或 WebP 格式的照片"),
    ("an empty file", b"", "照片文件为空"),
]


@pytest.fixture
def world():
    district = tiled_district()
    sanitation = DepartmentFactory(code="ZY-HW", name="环卫所")
    category = CategoryFactory(default_department=sanitation)
    users = types.SimpleNamespace(
        worker=UserFactory(username="worker", role=Role.GRID_WORKER),
        operator=UserFactory(username="operator", role=Role.OPERATOR, street=district["street"]),
        handler=UserFactory(username="handler", role=Role.DEPARTMENT_HANDLER, department=sanitation),
        admin=UserFactory(username="admin", role=Role.ADMIN, is_staff=True, is_superuser=True),
    )
    GridAssignment.objects.create(grid=district["grids"][2], worker=users.worker, is_primary=True)
    return types.SimpleNamespace(category=category, users=users, district=district)


def _api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=user)[1]}")
    return client


def _report(world, photos) -> dict:
    return {
        "category": world.category.code,
        "longitude": POINT_SW.x,
        "latitude": POINT_SW.y,
        "description": "垃圾",
        "photos": photos,
    }


def _nothing_left(media_root, *, cases: int = 0, history: int = 0) -> None:
    assert Case.objects.count() == cases
    assert CaseHistory.objects.count() == history
    assert CasePhoto.objects.count() == 0
    assert stored_files(media_root) == []


@pytest.mark.parametrize(("what", "data", "reason"), BAD_PHOTOS, ids=[b[0] for b in BAD_PHOTOS])
def test_api_report_as_json_refuses_what_is_not_a_photo(world, media_root, what, data, reason):
    photo = "data:image/jpeg;base64," + base64.b64encode(data).decode()
    response = _api(world.users.worker).post(
        "/api/v1/cases", _report(world, [photo]), format="json", HTTP_IDEMPOTENCY_KEY="upload-json-1"
    )
    assert response.status_code == 400
    assert response.json() == {"photos": [reason]}
    _nothing_left(media_root)


@pytest.mark.parametrize(("what", "data", "reason"), BAD_PHOTOS[:3], ids=[b[0] for b in BAD_PHOTOS[:3]])
def test_api_report_as_multipart_trusts_neither_name_nor_content_type(world, media_root, what, data, reason):
    upload = SimpleUploadedFile("IMG_0001.jpg", data, content_type="image/jpeg")
    response = _api(world.users.worker).post("/api/v1/cases", _report(world, [upload]), format="multipart")
    assert response.status_code == 400
    assert response.json() == {"photos": [reason]}
    _nothing_left(media_root)


def test_api_photo_size_limit_is_enforced_before_decoding(world, media_root, settings):
    settings.GRIDMGMT_PHOTO_MAX_BYTES = 1024 * 1024
    big = os.urandom(1024 * 1024 + 1)  # not even an image: the size is refused first
    client = _api(world.users.worker)
    as_json = client.post("/api/v1/cases", _report(world, [base64.b64encode(big).decode()]), format="json")
    assert as_json.status_code == 400
    assert as_json.json() == {"photos": ["照片不能超过 1 MB"]}
    upload = SimpleUploadedFile("big.jpg", big, content_type="image/jpeg")
    as_file = client.post("/api/v1/cases", _report(world, [upload]), format="multipart")
    assert as_file.status_code == 400
    assert as_file.json() == {"photos": ["照片不能超过 1 MB"]}
    _nothing_left(media_root)


def test_self_handled_report_refuses_a_fake_after_photo(world, media_root):
    before, after = base64.b64encode(jpeg().read()).decode(), base64.b64encode(PHP).decode()
    body = _report(world, [before]) | {"after_photos": [after]}
    response = _api(world.users.worker).post("/api/v1/cases/self-handled", body, format="json")
    assert response.status_code == 400
    assert response.json() == {"photos": ["文件不是有效的图片"]}
    _nothing_left(media_root)


def _dispatched_case(world) -> Case:
    case = services.case_report(
        actor=world.users.worker,
        source=Case.Source.GRID_WORKER,
        category=world.category,
        location=POINT_SW,
        description="垃圾",
    )
    return services.case_file(case=case, actor=world.users.operator)


def test_api_action_with_a_fake_photo_changes_nothing(world, media_root):
    case = _dispatched_case(world)
    history = CaseHistory.objects.count()
    response = _api(world.users.handler).post(
        f"/api/v1/cases/{case.pk}/actions/handle",
        {"comment": "已清运", "photos": [base64.b64encode(PHP).decode()]},
        format="json",
    )
    assert response.status_code == 400
    assert response.json() == {"photos": ["文件不是有效的图片"]}
    case.refresh_from_db()
    assert case.state == "dispatched"
    _nothing_left(media_root, cases=1, history=history)


def test_command_center_registration_refuses_a_fake_photo(client, world, media_root):
    client.force_login(world.users.operator)
    response = client.post(
        reverse("command:register"),
        {
            "source": Case.Source.HOTLINE,
            "category": world.category.pk,
            "urgency": "normal",
            "longitude": POINT_SW.x,
            "latitude": POINT_SW.y,
            "description": "热线反映垃圾",
            "client_key": "register-0001",
            "photos": [SimpleUploadedFile("现场.jpg", PHP, content_type="image/jpeg")],
        },
    )
    assert response.status_code == 400
    assert "文件不是有效的图片" in response.content.decode()
    _nothing_left(media_root)


def test_command_center_action_form_refuses_a_fake_photo(client, world, media_root):
    case = _dispatched_case(world)
    history = CaseHistory.objects.count()
    client.force_login(world.users.handler)
    response = client.post(
        reverse("command:case_act", args=[case.pk, "handle"]),
        {"comment": "已清运", "photos": [SimpleUploadedFile("after.png", _truncated_jpeg(), content_type="image/png")]},
    )
    assert response.status_code == 400
    assert "文件不是有效的图片" in response.content.decode()
    case.refresh_from_db()
    assert case.state == "dispatched"
    _nothing_left(media_root, cases=1, history=history)


def test_open311_takes_a_media_url_never_a_file(world, media_root):
    _, raw_key = api_services.api_key_issue(name="市民App")
    response = APIClient().post(
        "/open311/v2/requests.json",
        {
            "api_key": raw_key,
            "service_code": world.category.code,
            "lat": POINT_SW.y,
            "long": POINT_SW.x,
            "description": "井盖缺失",
            "media_url": "javascript:alert(1)",
            "media": SimpleUploadedFile("x.jpg", PHP, content_type="image/jpeg"),
        },
        format="multipart",
    )
    assert response.status_code == 400
    assert "media_url" in response.content.decode()
    _nothing_left(media_root)


def test_admin_import_refuses_a_file_that_is_not_a_layer_whole(client, world, media_root):
    client.force_login(world.users.admin)
    grids = Grid.objects.count()
    response = client.post(
        reverse("geodata_import:index"),
        {
            "layer": "grids",
            "mode": "strict",
            "file": SimpleUploadedFile("grids.geojson", PHP, content_type="application/geo+json"),
            "srs": "",
            "encoding": "",
            "source_layer": "",
            "tolerance": "1",
        },
    )
    assert response.status_code == 200
    assert response.context["report"].refused
    assert '<p class="gm-summary gm-refused">' in response.content.decode()
    assert Grid.objects.count() == grids
