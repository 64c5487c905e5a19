"""The command-center map in headless Chromium: grids drawn from vector tiles, layers recoloured,
a grid's panel, a case reported through the service appearing without a reload."""

import datetime as dt

import pytest
from django.utils import timezone

from accounts.models import Role
from events import services
from events.models import Case
from geodata.models import GridAssignment
from tests.browser.conftest import log_in, screenshot
from tests.events.factories import POINT_NW, CategoryFactory
from tests.factories import DepartmentFactory, UserFactory
from tests.maps.helpers import cases, residents

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

GRID_PATHS = ".leaflet-grids-pane path"


@pytest.fixture
def command_center(district):
    """An operator of the test street; grid 1 has many residents and no case, grid 3 few residents and open cases."""
    street = district["street"]
    operator = UserFactory(username="operator", role=Role.OPERATOR, street=street, first_name="李受理")
    worker = UserFactory(username="worker", role=Role.GRID_WORKER, first_name="张网格")
    g1, g2, g3, _ = district["grids"]
    GridAssignment.objects.create(grid=g3, worker=worker)
    residents(g1, 40)
    residents(g2, 20, sex="M")
    residents(g3, 2)
    category = CategoryFactory(default_department=DepartmentFactory(code="ZY-HW", name="街道环卫所"))
    now = timezone.now()
    cases(g3, 3, category=category, reported_at=now - dt.timedelta(hours=1))
    return {**district, "operator": operator, "worker": worker, "category": category}


def fills(page) -> list[str]:
    return page.eval_on_selector_all(GRID_PATHS, "els => els.map(e => e.getAttribute('fill'))")


def open_dashboard(page, live_server):
    log_in(page, live_server, "operator", "correct-horse-battery")
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(f"{live_server.url}/maps/")
    page.wait_for_function("document.body.dataset.dashboardReady === '1'")
    page.wait_for_function(f"document.querySelectorAll('{GRID_PATHS}').length >= 4")
    return requests


def test_the_dashboard_draws_the_grids_and_switching_the_layer_recolours_them(page, live_server, command_center):
    requests = open_dashboard(page, live_server)
    assert page.locator("h1").inner_text() == "指挥地图"
    page.wait_for_function("document.body.dataset.layer === 'population'")
    before = fills(page)
    assert len(set(before)) >= 2  # 40, 20, 2 and 0 residents fall in different classes
    assert "实有人口（人）" in page.locator("#legend").inner_text()
    tiles_before = [url for url in requests if "/maps/tiles/" in url]

    page.select_option("#layer", "open_cases")
    page.wait_for_function("document.body.dataset.layer === 'open_cases'")
    after = fills(page)
    assert after != before
    assert "未结案件（件）" in page.locator("#legend").inner_text()
    # recoloured in place: no tile was fetched again
    assert [url for url in requests if "/maps/tiles/" in url] == tiles_before
    assert all(url.startswith(live_server.url) or url.startswith("data:") for url in requests)
    # three open cases of grid 3, as markers or one cluster
    page.wait_for_function("document.querySelectorAll('.case-marker[data-case-id], .cluster').length >= 1")
    screenshot(page, "dashboard")


def test_clicking_a_grid_opens_its_panel(page, live_server, command_center):
    open_dashboard(page, live_server)
    grid = command_center["grids"][0]
    # the north-west grid: click the middle of its polygon on the map
    point = page.evaluate(
        """([lat, lon]) => { const m = window.gridDashboard.map; const p = m.latLngToContainerPoint([lat, lon]);
               const r = m.getContainer().getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; }""",
        [grid.geom.centroid.y, grid.geom.centroid.x],
    )
    page.mouse.click(point[0], point[1])
    page.wait_for_selector(f".grid-panel[data-grid-id='{grid.pk}']")
    panel = page.locator("#detail")
    assert "第1网格" in panel.inner_text()
    assert page.locator("[data-field=population]").inner_text() == "40"
    assert page.locator("[data-field=households]").inner_text() == "<5"  # one household; the operator: suppressed
    assert page.locator("[data-field=female]").inner_text() == "40"  # all of them in one band
    assert page.locator("#pyramid").is_visible()
    screenshot(page, "dashboard-grid-panel")


def test_a_case_reported_through_the_service_appears_without_reload(page, live_server, command_center):
    open_dashboard(page, live_server)
    page.evaluate("window.gridDashboard.map.setZoom(18)")
    page.evaluate("window.__notReloaded = true")
    case = services.case_report(
        actor=command_center["worker"],
        source=Case.Source.GRID_WORKER,
        category=command_center["category"],
        location=POINT_NW,
        description="人行道上有成堆垃圾",
    )
    page.wait_for_selector(f"#feed li[data-case-id='{case.pk}']", timeout=10_000)
    assert case.number in page.locator("#feed").inner_text()
    assert page.evaluate("window.__notReloaded") is True
    page.evaluate(f"window.gridDashboard.map.setView([{POINT_NW.y}, {POINT_NW.x}], 18)")
    page.wait_for_selector(f".case-marker[data-case-id='{case.pk}']")
    assert page.locator(f".case-marker[data-case-id='{case.pk}']").get_attribute("class") == "case-marker light-green"
    screenshot(page, "dashboard-live-case")
    # a click on the marker opens the case with its timeline
    page.click(f".case-marker[data-case-id='{case.pk}']")
    page.wait_for_selector(f".case-panel[data-case-id='{case.pk}'] .timeline li")
    assert "上报" in page.locator(".case-panel .timeline").inner_text()


def test_the_statistics_page_shows_counts_and_a_hot_spot_map(page, live_server, command_center):
    UserFactory(username="planner", role=Role.PLANNER)
    log_in(page, live_server, "planner", "correct-horse-battery")
    page.goto(f"{live_server.url}/maps/statistics/")
    page.wait_for_selector("#counts-table table")
    assert "案件统计" in page.locator("#counts-table").inner_text()
    assert page.locator("#counts-table tbody tr").count() == 1  # grid 3, one category, one month
    page.click("button[data-tab=hotspots]")
    page.wait_for_selector("#hotspots-table table")
    page.wait_for_function("document.querySelectorAll('#hotspot-map path').length >= 4")
    assert page.locator("#hotspots-table tbody tr").count() == 4
    page.click("button[data-tab=profile]")
    page.wait_for_selector("#profile-table table")
    assert "&lt;5" not in page.locator("#profile-table").inner_text()
    assert "<5" in page.locator("#profile-table").inner_text()  # grid 3 has 2 residents
    screenshot(page, "statistics")
