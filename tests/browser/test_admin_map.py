import pytest

from accounts.models import Role
from tests.browser.conftest import log_in, screenshot
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_wrong_password_shows_a_chinese_error_and_stays_logged_out(page, live_server):
    UserFactory(username="operator1", role=Role.OPERATOR)
    log_in(page, live_server, "operator1", "wrong-password")
    assert page.locator(".error").inner_text() == "用户名或密码错误，请重试。"
    assert "/accounts/login/" in page.url


def test_admin_shows_a_grid_on_a_leaflet_map_without_network_tiles(page, live_server, district):
    UserFactory(username="boss", role=Role.ADMIN, is_staff=True, is_superuser=True)
    log_in(page, live_server, "boss", "correct-horse-battery")
    grid = district["grids"][0]
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(f"{live_server.url}/admin/geodata/grid/{grid.pk}/change/")
    page.wait_for_selector(".leaflet-container path.leaflet-interactive")
    assert page.locator("input[name=code]").input_value() == grid.code
    assert page.locator(".leaflet-tile").count() == 0  # no-network base map mode
    assert all(url.startswith(live_server.url) or url.startswith("data:") for url in requests)
    screenshot(page, "admin-grid-map")
