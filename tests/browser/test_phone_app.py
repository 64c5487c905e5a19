"""The grid worker's phone app (/m/) in headless Chromium with a phone viewport.

Reports made offline wait in IndexedDB with their photos and idempotency keys, survive a
reload (the service worker serves the shell with no network) and arrive exactly once when
the network returns.
"""

import datetime as dt

import pytest
from django.utils import timezone

from accounts.models import Role
from events import services
from events.models import Case, CaseHistory, CasePhoto
from geodata.models import GridAssignment
from patrol.models import PatrolSession
from patrol_api.models import CaseReceipt
from tests.browser.conftest import screenshot
from tests.events.factories import POINT_SW, CategoryFactory, jpeg
from tests.factories import DepartmentFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct-horse-battery"


@pytest.fixture
def worker(district, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user = UserFactory(username="wang", role=Role.GRID_WORKER, first_name="王网格")
    GridAssignment.objects.create(grid=district["grids"][2], worker=user)
    CategoryFactory(default_department=DepartmentFactory(code="ZY-HW", name="街道环卫所"))
    return user


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(jpeg(size=(640, 480)).read())
    return path


def open_app(page, live_server) -> None:
    context = page.context
    context.grant_permissions(["geolocation"], origin=live_server.url)
    context.set_geolocation({"latitude": POINT_SW.y, "longitude": POINT_SW.x, "accuracy": 12})
    page.goto(f"{live_server.url}/m/")
    page.fill("#username", "wang")
    page.fill("#password", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#view-report:not([hidden])")
    # The service worker controls the page: from now on the shell opens without network.
    page.wait_for_function("navigator.serviceWorker.controller !== null")


def report(page, photo, description: str, shot: str = "") -> None:
    page.click('.tabs button[data-view="view-report"]')
    page.set_input_files("#photo-input", str(photo))
    page.wait_for_selector("#photo-previews img")
    page.wait_for_selector('#location-text[data-ready="true"]')
    page.fill("#category-search", "垃圾")
    page.click('#category-list li[data-code="E0102"]')
    page.fill("#description", description)
    if shot:
        screenshot(page, shot)
    page.click("#report-submit")
    page.wait_for_selector("#photo-previews img", state="detached")  # the form is reset once it is queued


def outbox_items(page) -> int:
    return page.locator("#outbox-list .outbox-item").count()


def test_reports_made_offline_survive_a_reload_and_arrive_exactly_once(phone_page, live_server, worker, photo):
    page = phone_page
    page.set_viewport_size({"width": 360, "height": 640})  # a cheap Android phone
    open_app(page, live_server)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360  # nothing to scroll sideways

    # Online: a report with a photo arrives at once
    report(page, photo, "在线上报：路口有成堆垃圾", shot="phone-app-report")
    page.click('.tabs button[data-view="view-outbox"]')
    page.wait_for_selector("#sent-list .sent-item")
    assert Case.objects.count() == 1

    # Offline: two reports wait on the phone, visible in the outbox
    page.context.set_offline(True)
    page.wait_for_selector('#net-status[data-online="false"]')
    report(page, photo, "离线上报一：地下车库入口垃圾")
    report(page, photo, "离线上报二：楼道堆放杂物")
    page.click('.tabs button[data-view="view-outbox"]')
    page.wait_for_function("document.querySelectorAll('#outbox-list .outbox-item').length === 2")
    assert page.locator("#outbox-count").inner_text() == "2"
    assert Case.objects.count() == 1  # nothing reached the server
    screenshot(page, "phone-app-offline-outbox")

    # A reload with no network: the shell comes from the service worker, the queue from IndexedDB
    page.reload()
    page.wait_for_selector("#view-report:not([hidden])")
    page.click('.tabs button[data-view="view-outbox"]')
    page.wait_for_function("document.querySelectorAll('#outbox-list .outbox-item').length === 2")
    assert "1 张照片" in page.locator("#outbox-list .outbox-item").first.inner_text()
    assert Case.objects.count() == 1

    # The network returns: both are sent by themselves, exactly once, with their photos
    page.context.set_offline(False)
    page.wait_for_function("document.querySelectorAll('#outbox-list .outbox-item').length === 0")
    page.wait_for_function("document.querySelectorAll('#sent-list .sent-item').length === 3")
    screenshot(page, "phone-app-sent")
    cases = list(Case.objects.order_by("id"))
    assert [c.description for c in cases] == [
        "在线上报：路口有成堆垃圾",
        "离线上报一：地下车库入口垃圾",
        "离线上报二：楼道堆放杂物",
    ]
    assert [c.photos.count() for c in cases] == [1, 1, 1]
    assert {c.reporter for c in cases} == {worker}
    assert {c.state for c in cases} == {"reported"}
    keys = list(CaseReceipt.objects.values_list("idempotency_key", flat=True))
    assert len(keys) == len(set(keys)) == 3
    assert CaseReceipt.objects.filter(accuracy_m=12).count() == 3

    # Sending again and reloading changes nothing: no second copy of anything
    page.click("#outbox-send")
    page.reload()
    page.wait_for_selector("#view-report:not([hidden])")
    page.evaluate("GridQueue.flushAll()")
    assert (Case.objects.count(), CasePhoto.objects.count(), CaseHistory.objects.count()) == (3, 3, 3)


def test_my_tasks_show_deadline_colours_and_a_check_is_completed_with_a_photo(
    phone_page, live_server, worker, photo, district
):
    handler = UserFactory(username="handler", role=Role.DEPARTMENT_HANDLER, department=DepartmentFactory())
    operator = UserFactory(username="operator", role=Role.OPERATOR, street=district["street"])
    case = services.case_report(
        actor=worker,
        source=Case.Source.GRID_WORKER,
        category=CategoryFactory(),
        location=POINT_SW,
        description="人行道上有建筑垃圾",
    )
    services.case_file(case=case, actor=operator, auto_dispatch=False)
    dispatcher = UserFactory(role=Role.DISPATCHER, street=district["street"])
    services.case_dispatch(case=case, actor=dispatcher, department=handler.department)
    services.case_handle(case=case, actor=handler, comment="已清运", photos=[jpeg()])
    overdue = services.case_report(
        actor=operator,
        source=Case.Source.HOTLINE,
        category=CategoryFactory(),
        location=POINT_SW,
        description="热线反映：小区门口垃圾桶满溢",
        at=timezone.now() - dt.timedelta(days=7),
    )

    page = phone_page
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    open_app(page, live_server)
    # The map of my grid, on the no-network base map: our layers only, no tiles
    page.click('.tabs button[data-view="view-map"]')
    page.wait_for_selector("#map path.leaflet-interactive")
    page.wait_for_function(
        "document.querySelector('#map path.leaflet-interactive').getBoundingClientRect().width > 100"
    )
    assert page.locator("#map .leaflet-tile").count() == 0
    screenshot(page, "phone-app-map")
    page.click('.tabs button[data-view="view-tasks"]')
    page.wait_for_selector(f'#task-list li[data-id="{case.pk}"]')
    assert "light-red" in page.get_attribute(f'#task-list li[data-id="{overdue.pk}"]', "class")
    assert "已超时" in page.inner_text(f'#task-list li[data-id="{overdue.pk}"]')
    assert "light-green" in page.get_attribute(f'#task-list li[data-id="{case.pk}"]', "class")
    screenshot(page, "phone-app-tasks")

    page.click(f'#task-list li[data-id="{case.pk}"]')
    page.wait_for_selector("#task-photos img")  # the department's "after" photo
    page.set_input_files("#task-photo-input", str(photo))
    page.wait_for_selector("#task-photo-previews img")
    page.click("#task-yes")
    page.wait_for_selector(f'#task-list li[data-id="{case.pk}"]', state="detached")
    case.refresh_from_db()
    assert case.state == "checked"
    assert list(case.photos.values_list("stage", flat=True).order_by("id")) == ["after", "verify"]
    assert all(url.startswith(live_server.url) or url.startswith(("data:", "blob:")) for url in requests)


def test_patrol_mode_records_the_track_while_the_app_is_open(phone_page, live_server, worker):
    page = phone_page
    open_app(page, live_server)
    page.click('.tabs button[data-view="view-map"]')
    page.click("#patrol-toggle")
    page.wait_for_selector("#patrol-toggle:text('结束巡查')")
    # The worker walks east along the street: about 50 m between fixes
    for step in range(1, 4):
        page.context.set_geolocation({"latitude": POINT_SW.y, "longitude": POINT_SW.x + step * 0.0005, "accuracy": 8})
        page.wait_for_selector(f"#patrol-info:text('已记录 {step + 1} 个点')")
    page.click("#patrol-toggle")
    page.wait_for_selector("#patrol-toggle:text('开始巡查')")
    session = PatrolSession.objects.get(worker=worker)
    assert session.ended_at is not None
    assert session.points.count() == 4
    assert len(session.track.coords) == 4
    assert 140 < session.length_m < 150  # 3 × 0.0005° of longitude at 29.4° N ≈ 145 m


def test_a_report_the_server_refuses_stays_on_the_phone_with_the_reason(phone_page, live_server, worker, photo):
    page = phone_page
    open_app(page, live_server)
    # The worker stands outside the jurisdiction (a wrong GPS fix far away)
    page.context.set_geolocation({"latitude": 39.9, "longitude": 116.4, "accuracy": 30})
    page.wait_for_selector("#location-text:text('116.400000')")
    report(page, photo, "定位漂移时的上报")
    page.click('.tabs button[data-view="view-outbox"]')
    page.wait_for_selector("#outbox-list .outbox-item.failed")
    assert "不在本辖区任何网格内" in page.inner_text("#outbox-list .outbox-item.failed")
    assert Case.objects.count() == 0
    # It is not retried by itself; the worker deletes it
    page.click("#outbox-list .outbox-item.failed button")
    page.wait_for_selector("#outbox-list .outbox-item", state="detached")
    assert page.evaluate("GridQueue.allReports().then(r => r.length)") == 0
