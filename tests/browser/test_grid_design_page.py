import pytest
from django.contrib.auth.models import Permission

from accounts.models import Role
from geodata.models import Grid, GridDesignProposal
from tests.browser.conftest import log_in, screenshot
from tests.factories import UserFactory
from tests.geodata.test_grid_design import register_community, square_community

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_planner_proposes_grids_sees_them_on_the_map_and_adopts_them(page, live_server):
    community = register_community(*square_community())  # 4 000 households in 100 buildings
    planner = UserFactory(username="planner", role=Role.PLANNER)
    planner.user_permissions.add(Permission.objects.get(codename="design_grids"))
    log_in(page, live_server, "planner", "correct-horse-battery")
    requests = []
    page.on("request", lambda request: requests.append(request.url))

    page.goto(f"{live_server.url}/maps/design/?community={community.pk}")
    page.select_option("select[name=community]", str(community.pk))
    page.fill("input[name=households_min]", "300")
    page.fill("input[name=households_max]", "500")
    page.click("#propose-button")
    page.wait_for_selector("#balance-panel")

    # Ten grids of 400 households: ten coloured polygons on the map, ten rows in the table.
    page.wait_for_function("document.querySelectorAll('#design-map path.leaflet-interactive').length === 10")
    assert page.locator("table.balance tbody tr").count() == 10
    assert page.locator("#households-summary").inner_text() == "400 / 400 / 400"
    assert page.locator(".messages").inner_text() == f"已生成方案 #{GridDesignProposal.objects.get().pk}：10 个网格。"
    assert page.locator(".leaflet-tooltip").first.inner_text() == "001\n400户"
    screenshot(page, "grid-design")

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#adopt-button")
    page.wait_for_selector("#adoption-report")

    assert "已采用" in page.locator("#balance-panel").inner_text()
    assert "停用 0 个网格，新建 10 个" in page.locator("#adoption-report").inner_text()
    assert Grid.objects.filter(community=community, valid_to__isnull=True).count() == 10
    assert GridDesignProposal.objects.get().status == "adopted"
    assert all(url.startswith(live_server.url) or url.startswith("data:") for url in requests)
