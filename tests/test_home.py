from accounts.models import Role
from tests.factories import UserFactory


def test_home_requires_login(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/"


def test_each_role_sees_only_its_entry_points(client, db):
    client.force_login(UserFactory(role=Role.GRID_WORKER))
    worker_page = client.get("/").content.decode()
    assert "数据管理" not in worker_page and "网格划分" not in worker_page
    client.force_login(UserFactory(role=Role.ADMIN, is_superuser=True, is_staff=True))
    admin_page = client.get("/").content.decode()
    assert 'href="/admin/"' in admin_page and "数据管理" in admin_page
    assert 'href="/api/docs/"' in admin_page


def test_healthz_reports_postgis(client, db):
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["postgis"].startswith("3.")
