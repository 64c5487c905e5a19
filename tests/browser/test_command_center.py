"""The command center in headless Chromium at 1920x1080: dispatch a case, the department handles it with a photo."""

import pytest

from events.models import Case, CaseHistory
from events.workflow import Action, State
from tests.browser.conftest import log_in, screenshot
from tests.command.flows import dispatched, filed, reported
from tests.events import conftest as events_fixtures
from tests.events.factories import POINT_NW, jpeg

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct-horse-battery"

# The events test world (tests/events/conftest.py), reused as this module's fixtures.
world = events_fixtures.world
fast_password_hasher = events_fixtures.fast_password_hasher
media_root = events_fixtures.media_root


def test_dispatcher_dispatches_to_the_suggested_department_and_the_department_handles_it(page, live_server, world):
    # Given a case waiting for dispatch, among other work of the street
    case = filed(world, at=None)
    reported(world, at=None, point=POINT_NW, description="人行道上堆放建筑垃圾")
    dispatched(world, point=POINT_NW)  # dispatched last Monday: overdue, red
    requests = []
    page.on("request", lambda request: requests.append(request.url))

    # When the dispatcher opens the queue: every open case of the street, the overdue one first
    log_in(page, live_server, "dispatcher", PASSWORD)
    page.goto(f"{live_server.url}/command/")
    assert page.locator("#case-table tbody tr .light").evaluate_all("dots => dots.map(d => d.dataset.light)") == [
        "red",
        "green",
        "green",
    ]
    screenshot(page, "command-queue")
    # ... and the 待派遣 tab
    page.locator('a.tab[data-tab="filed"]').click()
    page.wait_for_load_state("networkidle")
    row = page.locator(f'tr[data-case="{case.number}"]')
    assert page.locator("#case-table tbody tr").count() == 1
    assert row.locator(".c-state").inner_text() == "待派遣"
    assert row.locator(".light").get_attribute("data-light") == "green"
    assert row.locator("button.dispatch-to").inner_text() == "派往街道环卫所"

    # ... opens the case and dispatches it to the first suggested department
    row.locator("a.case-link").click()
    page.wait_for_load_state("networkidle")
    assert page.locator("#case-state").inner_text() == "待派遣"
    page.wait_for_selector("#case-map path.leaflet-interactive")  # the grid outline, without tiles
    suggestion = page.locator("#routing button.dispatch-to").first
    assert suggestion.get_attribute("data-department") == "ZY-HW"
    suggestion.click()
    page.wait_for_load_state("networkidle")

    # Then the case is with sanitation
    assert page.locator("#case-state").inner_text() == "处置中"
    assert page.locator(".messages li").inner_text() == (
        f"案件 {case.number}：派遣完成，当前状态“处置中”，责任部门：街道环卫所"
    )
    page.locator("form[action='/accounts/logout/'] button").click()
    page.wait_for_load_state("networkidle")

    # When the sanitation handler finds it among the department's cases and reports it handled with a photo
    log_in(page, live_server, "handler", PASSWORD)
    page.goto(f"{live_server.url}/command/department/")
    page.locator(f'tr[data-case="{case.number}"] details.inline-action summary').first.click()
    screenshot(page, "department-cases")
    page.locator(f'tr[data-case="{case.number}"] a.case-link').click()
    page.wait_for_load_state("networkidle")
    handle = page.locator("form.action-handle")
    handle.locator("input[name=photos]").set_input_files(
        files=[{"name": "after.jpg", "mimeType": "image/jpeg", "buffer": jpeg(size=(320, 240)).read()}]
    )
    handle.locator("textarea[name=comment]").fill("垃圾已清运，地面已冲洗")
    handle.locator("button[type=submit]").click()
    page.wait_for_load_state("networkidle")

    # Then the case waits for 核查, and the timeline shows both steps with the after photo
    assert page.locator("#case-state").inner_text() == "待核查"
    events = page.locator("#timeline li.event")
    assert events.locator(".event-action").all_inner_texts() == ["上报", "立案", "派遣", "处置反馈"]
    assert "dispatcher（派遣员） · 街道环卫所" in events.nth(2).inner_text()
    handled = events.nth(3)
    assert "handler（部门处置人员） · 街道环卫所" in handled.inner_text()
    assert "垃圾已清运，地面已冲洗" in handled.inner_text()
    photo = handled.locator("img.thumb")
    photo.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth === 320", arg=photo.element_handle())
    screenshot(page, "case-detail")
    page.set_viewport_size({"width": 1366, "height": 768})  # a laptop
    screenshot(page, "case-detail-laptop")

    assert Case.objects.get(pk=case.pk).state == State.HANDLED
    assert list(CaseHistory.objects.filter(case=case).values_list("action", flat=True))[-2:] == [
        Action.DISPATCH,
        Action.HANDLE,
    ]
    # Everything came from our own server: no CDN, no tiles
    assert all(url.startswith(live_server.url) or url.startswith("data:") for url in requests)


def test_operator_registers_a_hotline_call_by_clicking_the_map(page, live_server, world):
    log_in(page, live_server, "operator", PASSWORD)
    page.goto(f"{live_server.url}/command/register/")
    grids = page.locator("#register-map path.leaflet-interactive")
    assert grids.count() == 4  # the street's grids, drawn without any base-map tiles
    box = grids.first.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    longitude, latitude = page.input_value("#id_longitude"), page.input_value("#id_latitude")
    assert longitude and latitude
    page.select_option("#id_category", label=str(world.category))
    page.fill("#id_description", "市民来电：小区门口垃圾堆积")
    page.fill("#id_reporter_phone", "13812345678")
    screenshot(page, "hotline-register")
    page.click("#register-form button[type=submit]")
    page.wait_for_load_state("networkidle")

    case = Case.objects.get()
    assert page.locator("#case-state").inner_text() == "待核实"
    assert page.locator("#case-number").inner_text() == case.number
    assert (f"{case.location.x:.6f}", f"{case.location.y:.6f}") == (longitude, latitude)
    assert case.grid.geom.covers(case.location)
    assert case.reporter_phone_masked == "138****5678"
    screenshot(page, "hotline-registered")
