"""The admin page for importing and exporting layers (geodata/admin_import.py)."""

import json
from urllib.parse import quote

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile

from geodata import pii
from geodata.models import Grid, Person
from tests.factories import PersonFactory, UserFactory
from tests.geodata.import_files import COMMUNITY_CODE, cell, geojson, register_without_grids

PAGE = "/admin/geodata/import/"


@pytest.fixture
def settings_media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings


def staff(*permissions: str, username: str = "clerk"):
    user = UserFactory(username=username, is_staff=True)
    for codename in permissions:
        user.user_permissions.add(Permission.objects.get(codename=codename, content_type__app_label="geodata"))
    return user


def grids_file(tmp_path, *, overlapping_third: bool) -> SimpleUploadedFile:
    features = [({"code": f"{COMMUNITY_CODE}001"}, cell(0, 0)), ({"code": f"{COMMUNITY_CODE}002"}, cell(1, 0))]
    if overlapping_third:
        features.append(({"code": f"{COMMUNITY_CODE}003"}, cell(0, 0)))
    data = geojson(tmp_path / "grids.geojson", features).read_bytes()
    return SimpleUploadedFile("新山村网格.geojson", data, content_type="application/geo+json")


def test_the_page_shows_both_forms_to_staff(client, db):
    client.force_login(staff())

    response = client.get(PAGE)

    assert response.status_code == 200
    content = response.content.decode()
    assert "数据导入与导出" in content
    assert 'name="layer"' in content and 'value="population"' in content
    assert "开始导入" in content and "下载" in content


def test_a_visitor_who_is_not_staff_is_sent_to_the_login(client, db):
    client.force_login(UserFactory(is_staff=False))

    response = client.post(PAGE, {"layer": "grids", "mode": "strict", "tolerance": "1"})

    assert response.status_code == 302 and response.url.startswith("/admin/login/")


def test_partial_upload_loads_good_rows_and_hands_back_the_others(client, db, tmp_path, settings_media):
    register_without_grids(cols=2, rows=1)
    clerk = staff("add_grid")
    client.force_login(clerk)

    response = client.post(
        PAGE,
        {"layer": "grids", "mode": "partial", "tolerance": "1", "file": grids_file(tmp_path, overlapping_third=True)},
    )

    assert response.status_code == 200
    content = response.content.decode()
    assert "网格导入完成：共 3 行，导入 1 行，拒绝 2 行" in content
    assert f"与第 3 行（{COMMUNITY_CODE}003）重叠" in content
    assert list(Grid.objects.values_list("code", flat=True)) == [f"{COMMUNITY_CODE}002"]
    link = response.context["problems_token"]
    download = client.get(f"{PAGE}problems/{link}/")
    assert download.status_code == 200
    assert download["Content-Disposition"] == "attachment; filename*=utf-8''" + quote("新山村网格.problems.geojson")
    rejected = json.loads(b"".join(download.streaming_content))
    assert [f["properties"]["code"] for f in rejected["features"]] == [f"{COMMUNITY_CODE}001", f"{COMMUNITY_CODE}003"]
    # Another member of staff cannot fetch the problem rows (they may hold personal data).
    client.force_login(staff("add_grid", username="other"))
    assert client.get(f"{PAGE}problems/{link}/").status_code == 403


def test_strict_upload_of_a_good_file_loads_it(client, db, tmp_path, settings_media):
    register_without_grids(cols=2, rows=1)
    client.force_login(staff("add_grid"))

    response = client.post(
        PAGE,
        {"layer": "grids", "mode": "strict", "tolerance": "1", "file": grids_file(tmp_path, overlapping_third=False)},
    )

    assert "网格导入完成：共 2 行，导入 2 行，拒绝 0 行" in response.content.decode()
    assert sorted(Grid.objects.values_list("code", flat=True)) == [f"{COMMUNITY_CODE}001", f"{COMMUNITY_CODE}002"]
    assert response.context["problems_token"] is None


def test_importing_needs_the_add_permission_of_the_layer(client, db, tmp_path, settings_media):
    register_without_grids(cols=2, rows=1)
    client.force_login(staff("add_building"))

    response = client.post(
        PAGE,
        {"layer": "grids", "mode": "strict", "tolerance": "1", "file": grids_file(tmp_path, overlapping_third=False)},
    )

    assert response.status_code == 403
    assert Grid.objects.count() == 0


def test_export_downloads_the_layer_for_users_who_may_view_it(client, district):
    client.force_login(staff("view_grid"))

    response = client.get(f"{PAGE}export/", {"layer": "grids", "fmt": "geojson", "within": COMMUNITY_CODE})

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="grids-')
    data = json.loads(b"".join(response.streaming_content))
    assert sorted(f["properties"]["code"] for f in data["features"]) == [g.code for g in Grid.objects.order_by("code")]
    assert client.get(f"{PAGE}export/", {"layer": "population", "fmt": "csv"}).status_code == 403


def test_population_export_from_the_page_is_masked(client, db):
    person = PersonFactory()
    client.force_login(staff("view_household", "view_person"))

    response = client.get(f"{PAGE}export/", {"layer": "population", "fmt": "csv"})

    content = b"".join(response.streaming_content).decode("utf-8-sig")
    assert person.id_number_masked in content
    assert pii.decrypt(Person.objects.get().id_number_encrypted) not in content


def test_an_invalid_export_request_shows_the_page_with_the_error(client, db):
    client.force_login(staff("view_grid"))

    response = client.get(f"{PAGE}export/", {"layer": "grids", "fmt": "kml"})

    assert response.status_code == 400
    assert "选择一个有效的选项" in response.content.decode()


def test_the_admin_index_links_to_the_import_page(client, db):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    assert 'href="/admin/geodata/import/"' in client.get("/admin/").content.decode()
