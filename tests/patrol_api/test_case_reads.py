"""Reads: my reports with timelines, my tasks with timer lights, the category tree, case list/detail scope, photos."""

import datetime as dt

import pytest
from django.utils import timezone

from events import services
from events.models import Case, Category
from tests.events.factories import POINT_NW, POINT_SW, jpeg, local
from tests.factories import DepartmentFactory


def reported(world, *, actor=None, source=Case.Source.GRID_WORKER, point=POINT_SW, at=None, photos=()):
    return services.case_report(
        actor=actor or world.worker,
        source=source,
        category=world.category,
        location=point,
        description="路边有成堆垃圾",
        photos=list(photos),
        at=at,
    )


@pytest.mark.django_db
def test_my_reports_have_states_and_timelines(world):
    # Given two reports of mine, one of which was filed and dispatched, and one of someone else
    first = reported(world, at=local(2026, 11, 16, 9, 0), photos=[jpeg()])
    second = reported(world, at=local(2026, 11, 16, 10, 0))
    reported(world, actor=world.other_worker, point=POINT_NW, at=local(2026, 11, 16, 11, 0))
    services.case_file(case=first, actor=world.operator, at=local(2026, 11, 16, 9, 30))
    # When I ask for my reports
    body = world.clients["worker"].get("/api/v1/me/reports").json()
    # Then I see mine, newest first, each with its state and its timeline
    assert body["count"] == 2
    assert [r["number"] for r in body["results"]] == [second.number, first.number]
    latest, earliest = body["results"]
    assert (latest["state"], [e["action"] for e in latest["timeline"]]) == ("reported", ["report"])
    assert earliest["state"] == "dispatched"
    assert [(e["action"], e["to_state_display"]) for e in earliest["timeline"]] == [
        ("report", "待立案"),
        ("file", "待派遣"),
        ("dispatch", "处置中"),
    ]
    assert earliest["timeline"][0]["actor"] == "张网格"
    assert earliest["timeline"][2]["actor_role_display"] == "系统"
    assert earliest["timeline"][0]["photo_ids"] == [p["id"] for p in earliest["photos"]]


@pytest.mark.django_db
def test_my_reports_take_a_constant_number_of_queries(world, django_assert_max_num_queries):
    for hour in range(9, 14):
        reported(world, at=local(2026, 11, 16, hour, 0), photos=[jpeg()])
    with django_assert_max_num_queries(12):
        body = world.clients["worker"].get("/api/v1/me/reports").json()
    assert body["count"] == 5


@pytest.mark.django_db
def test_my_tasks_are_verify_and_check_with_deadlines_and_lights(world):
    now = timezone.now()
    # A public report in my grid waits for my 核实; the timer started long ago, so it is red
    verify = reported(world, actor=world.operator, source=Case.Source.HOTLINE, at=now - dt.timedelta(days=10))
    # A handled case waits for my 核查
    check = reported(world)
    services.case_file(case=check, actor=world.operator)
    services.case_handle(case=check, actor=world.handler, comment="已清运", photos=[jpeg()])
    # A case of another grid is not my task, but its worker's
    elsewhere = reported(world, actor=world.operator, source=Case.Source.HOTLINE, point=POINT_NW)

    body = world.clients["worker"].get("/api/v1/me/tasks").json()

    assert [(t["number"], t["task"], t["task_display"]) for t in body] == [
        (verify.number, "verify", "核实"),
        (check.number, "check", "核查"),
    ]
    assert body[0]["timer_light"] == "red"
    assert body[1]["timer_light"] == "green"
    assert dt.datetime.fromisoformat(body[1]["deadline"]) > now
    assert [p["stage"] for p in body[1]["photos"]] == ["after"]  # what to check against
    assert [t["number"] for t in world.clients["other_worker"].get("/api/v1/me/tasks").json()] == [elsewhere.number]
    assert world.clients["operator"].get("/api/v1/me/tasks").json() == []


@pytest.mark.django_db
def test_category_tree_has_filing_conditions_and_only_active_categories(world):
    Category.objects.create(
        kind="C",
        major_code="01",
        major_name="公用设施",
        minor_code="01",
        minor_name="上水井盖",
        filing_condition="井盖丢失、破损、移位",
        closing_condition="井盖恢复完好",
    )
    Category.objects.create(
        kind="E",
        major_code="01",
        major_name="市容环境",
        minor_code="09",
        minor_name="停用类别",
        filing_condition="—",
        closing_condition="—",
        is_active=False,
    )
    body = world.clients["worker"].get("/api/v1/categories").json()
    assert [(k["kind"], k["name"]) for k in body] == [("C", "部件"), ("E", "事件")]
    component = body[0]["majors"][0]
    assert (component["code"], component["name"]) == ("01", "公用设施")
    assert component["categories"][0]["code"] == "C0101"
    assert component["categories"][0]["filing_condition"] == "井盖丢失、破损、移位"
    event_categories = body[1]["majors"][0]["categories"]
    assert [c["code"] for c in event_categories] == ["E0102"]
    assert event_categories[0]["filing_condition"] == "成堆、成片的生活垃圾"
    assert event_categories[0]["handling_limits"]["normal"] == {"unit": "hours", "a": "2.0", "b": "4.0", "c": "8.0"}
    assert event_categories[0]["default_department"] == "街道环卫所"


@pytest.mark.django_db
def test_case_list_is_scoped_and_filtered(world):
    mine = reported(world)
    other = reported(world, actor=world.other_worker, point=POINT_NW)
    services.case_file(case=other, actor=world.operator)

    def numbers(client_name, query=""):
        response = world.clients[client_name].get(f"/api/v1/cases{query}")
        assert response.status_code == 200
        return sorted(r["number"] for r in response.json()["results"])

    assert numbers("worker") == [mine.number]
    assert numbers("operator") == sorted([mine.number, other.number])
    assert numbers("operator", "?state=dispatched") == [other.number]
    assert numbers("operator", "?state=reported&state=dispatched") == sorted([mine.number, other.number])
    assert numbers("operator", f"?grid={world.grid_sw.code}") == [mine.number]
    assert numbers("operator", "?category=E0102&light=green") == sorted([mine.number, other.number])
    assert numbers("outside_operator") == []
    assert numbers("handler") == [other.number]  # dispatched to sanitation automatically
    assert numbers("other_handler") == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("?state=nonsense", 400),
        ("?light=blue", 400),
        ("?reported_after=not-a-date", 400),
        ("?category=%00", 400),
        ("?limit=abc&offset=-1x", 200),  # DRF's pagination falls back to its defaults
    ],
)
def test_case_list_refuses_bad_filters(world, query, status):
    reported(world)
    response = world.clients["operator"].get(f"/api/v1/cases{query}")
    assert response.status_code == status
    if status == 400:
        assert set(response.json()) <= {"state", "light", "reported_after", "category"}
    else:
        assert response.json()["count"] == 1


@pytest.mark.django_db
def test_case_detail_is_404_for_a_case_out_of_sight_or_unknown(world):
    case = reported(world, actor=world.other_worker, point=POINT_NW)
    assert world.clients["worker"].get(f"/api/v1/cases/{case.pk}").status_code == 404
    assert world.clients["operator"].get(f"/api/v1/cases/{case.pk}").status_code == 200
    assert world.clients["operator"].get("/api/v1/cases/999999").status_code == 404
    assert world.clients["operator"].get("/api/v1/cases/99999999999999999999999").status_code == 404


@pytest.mark.django_db
def test_case_detail_lists_the_actions_i_may_take(world):
    case = reported(world)
    operator_actions = world.clients["operator"].get(f"/api/v1/cases/{case.pk}").json()["actions"]
    assert [a["action"] for a in operator_actions] == ["request_verification", "file", "void", "merge"]
    assert operator_actions[1] == {
        "action": "file",
        "label": "立案",
        "url": f"/api/v1/cases/{case.pk}/actions/file",
    }
    assert world.clients["worker"].get(f"/api/v1/cases/{case.pk}").json()["actions"] == []


@pytest.mark.django_db
def test_photos_are_served_only_to_who_may_see_the_case(world):
    case = reported(world, photos=[jpeg()])
    photo = case.photos.get()
    url = f"/api/v1/cases/{case.pk}/photos/{photo.pk}"
    response = world.clients["worker"].get(url)
    assert (response.status_code, response["Content-Type"]) == (200, "image/jpeg")
    assert b"".join(response.streaming_content)[:2] == b"\xff\xd8"
    assert world.clients["other_worker"].get(url).status_code == 404
    assert world.clients["worker"].get(f"/api/v1/cases/{case.pk}/photos/{photo.pk + 1}").status_code == 404


@pytest.mark.django_db
def test_routing_duplicates_departments_and_workflow_for_command_center_clients(world):
    first = reported(world)
    second = reported(world)
    client = world.clients["operator"]
    routing = client.get(f"/api/v1/cases/{second.pk}/routing").json()
    assert routing == [
        {
            "department": {"code": "ZY-HW", "name": "街道环卫所", "kind": "professional"},
            "reason": "类别默认部门",
            "matches": True,
        }
    ]
    assert [c["number"] for c in client.get(f"/api/v1/cases/{second.pk}/duplicates").json()] == [first.number]
    DepartmentFactory(code="ZZ-1", name="另一个部门")
    assert [d["code"] for d in client.get("/api/v1/departments").json()] == ["ZY-HW", "ZY-YL", "ZZ-1"]
    workflow = client.get("/api/v1/workflow").json()
    assert {
        "source": "reported",
        "action": "file",
        "target": "filed",
        "roles": ["operator", "shift_leader"],
        "needs_comment": False,
        "needs_photo": "",
    } in workflow["transitions"]
    assert [a["value"] for a in workflow["actions"] if not a["endpoint"]] == [
        "report",
        "register",
        "self_handle",
        "absorb",
        "alert",
    ]
