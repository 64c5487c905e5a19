"""The 3-D view in headless Chromium (WebGL through its software renderer): opened from the
dashboard on its current view, buildings extruded from the building tiles, recoloured, and a
click on a building opening its panel."""

import datetime as dt

import pytest
from django.contrib.gis.geos import MultiPolygon, Point, Polygon
from django.utils import timezone

from accounts.models import Role
from geodata.models import Building, Facility, GridAssignment, Household, Person
from tests.browser.conftest import log_in, screenshot
from tests.events.factories import CaseFactory, CategoryFactory
from tests.factories import ORIGIN, FacilityFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

X0, Y0 = ORIGIN


def box(dx0: float, dy0: float, dx1: float, dy1: float) -> MultiPolygon:
    return MultiPolygon(Polygon.from_bbox((X0 + dx0, Y0 + dy0, X0 + dx1, Y0 + dy1)), srid=4326)


@pytest.fixture
def town(district):
    """One building per grid (≈ 40 m square, 6 to 30 floors); A (grid 1) has 2 households,
    5 residents and 3 open cases; facilities around."""
    UserFactory(username="operator", role=Role.OPERATOR, street=district["street"], first_name="李受理")
    worker = UserFactory(username="worker", role=Role.GRID_WORKER, first_name="张网格")
    g1, g2, g3, g4 = district["grids"]
    GridAssignment.objects.create(grid=g1, worker=worker)
    shapes = {
        "A": (g1, 12, box(0.0006, 0.0026, 0.0010, 0.0030)),
        "B": (g2, 30, box(0.0026, 0.0026, 0.0030, 0.0030)),
        "C": (g3, 6, box(0.0006, 0.0014, 0.0010, 0.0018)),
        "D": (g4, 20, box(0.0026, 0.0014, 0.0030, 0.0018)),
    }
    buildings = {
        code: Building.objects.create(
            code=code, address=f"测试路{code}号", floors=floors, grid=grid, footprint=shape, location=shape.centroid
        )
        for code, (grid, floors, shape) in shapes.items()
    }
    a = buildings["A"]
    for n, count in ((1, 3), (2, 2)):
        home = Household.objects.create(code=f"HB{n}", building=a, grid=g1, room=f"10{n}")
        Person.objects.bulk_create(
            Person(
                household=home,
                name=f"居民{n}{i}",
                sex="F",
                birth_date=dt.date(1980, 1, 1),
                id_number_encrypted="x",
                id_number_hash=f"hash-{n}-{i}",
                id_number_masked="5001**********0000",
            )
            for i in range(count)
        )
    category = CategoryFactory()
    for _ in range(3):
        CaseFactory(grid=g1, location=a.location, category=category, reported_at=timezone.now() - dt.timedelta(hours=2))
    for dx, dy, grid, status in ((0.0012, 0.0024, g1, Facility.Status.DAMAGED), (0.0020, 0.0021, g2, "intact")):
        FacilityFactory(grid=grid, location=Point(X0 + dx, Y0 + dy, srid=4326), status=status)
    return buildings


def test_the_3d_mode_opens_on_the_dashboard_view_draws_buildings_and_opens_a_panel(page, live_server, town):
    errors: list[str] = []
    requests: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: requests.append(request.url))
    log_in(page, live_server, "operator", "correct-horse-battery")
    page.goto(f"{live_server.url}/maps/")
    page.wait_for_function("document.body.dataset.dashboardReady === '1'")
    page.evaluate(f"window.gridDashboard.map.setView([{Y0 + 0.002}, {X0 + 0.002}], 17, {{animate: false}})")

    # Given the dashboard on the block at Leaflet zoom 17, 三维 opens the same view (MapLibre zoom 16)
    page.click("#open-3d")
    page.wait_for_url("**/maps/3d/?*")
    assert "zoom=16" in page.url and f"lon={X0 + 0.002:.6f}" in page.url and f"lat={Y0 + 0.002:.6f}" in page.url
    page.wait_for_function("document.body.dataset.buildings3dReady === '1'", timeout=30_000)

    # every building of the block is drawn, extruded to floors × 3 m
    drawn = """() => {
        const seen = {};
        window.buildings3d.map.queryRenderedFeatures({layers: ['buildings-3d']})
            .forEach(f => { seen[f.properties.id] = f.properties.height_m; });
        return seen;
    }"""
    page.wait_for_function(f"Object.keys(({drawn})()).length === 4", timeout=30_000)
    heights = {int(k): v for k, v in page.evaluate(drawn).items()}
    assert heights == {b.pk: b.floors * 3.0 for b in town.values()}
    assert page.evaluate("window.buildings3d.map.getPitch()") == 60
    assert "户数（户）" in page.locator("#legend").inner_text()

    # colouring by residents changes the paint, not the tiles
    tiles_before = [url for url in requests if "/tiles/buildings/" in url]
    page.select_option("#colour-by", "residents")
    page.wait_for_function("document.body.dataset.colourBy === 'residents'")
    assert "实有人口（人）" in page.locator("#legend").inner_text()
    paint = page.evaluate("window.buildings3d.map.getPaintProperty('buildings-3d', 'fill-extrusion-color')")
    assert "residents" in str(paint)
    assert [url for url in requests if "/tiles/buildings/" in url] == tiles_before

    # dragging with the right button rotates and tilts; touch gestures are on
    box = page.locator("#b3d-map").bounding_box()
    x, y = box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.8
    page.mouse.move(x, y)
    page.mouse.down(button="right")
    page.mouse.move(x + 120, y + 60, steps=6)
    page.mouse.up(button="right")
    page.wait_for_function("!window.buildings3d.map.isMoving()")
    assert page.evaluate("window.buildings3d.map.getBearing()") != -20
    assert page.evaluate("window.buildings3d.map.getPitch()") < 60
    handlers = "['touchZoomRotate', 'touchPitch', 'dragRotate', 'dragPan', 'scrollZoom'].map(h => m[h].isEnabled())"
    assert page.evaluate(f"(() => {{ const m = window.buildings3d.map; return {handlers}; }})()") == [True] * 5

    # a click on building A opens its panel
    a = town["A"]
    point = page.evaluate(
        """([lon, lat]) => { const m = window.buildings3d.map; const p = m.project([lon, lat]);
               const r = m.getContainer().getBoundingClientRect();
               const hit = m.queryRenderedFeatures([p.x, p.y], {layers: ['buildings-3d']});
               return [r.left + p.x, r.top + p.y, hit.length ? hit[0].properties.id : null]; }""",
        [a.location.x, a.location.y],
    )
    assert point[2] == a.pk
    page.mouse.click(point[0], point[1])
    page.wait_for_selector(f".building-panel[data-building-id='{a.pk}']")
    panel = page.locator("#building")
    assert "测试路A号" in panel.inner_text() and "12 层" in panel.inner_text()
    # the operator may not see residents by name: 2 households is under five, not shown
    assert page.locator("[data-field=households]").inner_text() == "<5"
    assert page.locator("[data-field=residents]").inner_text() == "5"
    assert page.locator("[data-field=open_cases]").inner_text() == "3"
    assert "张网格" in page.locator("[data-field=workers]").inner_text()
    assert "居民" not in panel.inner_text()  # counts only for the operator
    # for the person looking at the screenshot: closer, tilted, the selected building in blue
    page.evaluate(f"window.buildings3d.map.jumpTo({{center: [{X0 + 0.0018}, {Y0 + 0.0022}], zoom: 17, pitch: 60}})")
    page.wait_for_function("(m => m.loaded() && m.areTilesLoaded() && !m.isMoving())(window.buildings3d.map)")
    screenshot(page, "buildings3d")

    assert errors == []
    assert all(url.startswith(live_server.url) or url.startswith(("data:", "blob:")) for url in requests)
