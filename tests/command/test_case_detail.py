"""The case page: facts, map, photos through a checked view, the timeline and the buttons this user may press."""

import json
import re

import pytest
from django.test import Client

from events import selectors, services
from events.models import CasePhoto
from tests.command.flows import MONDAY, dispatched, logged_in, reported
from tests.events.factories import jpeg, local

pytestmark = pytest.mark.django_db


def action_forms(html: str) -> list[str]:
    """The actions offered by the page, in order (each is a POST form with data-action)."""
    return re.findall(r'<form method="post" action="/command/cases/\d+/(\w+)/"[^>]*data-action="\w+"', html)


def test_a_case_outside_the_users_scope_is_not_found(world):
    # Given a case in 测试街道, dispatched to sanitation
    case = dispatched(world)
    url = f"/command/cases/{case.pk}/"
    # Then the operator of another street and the greening handler get 404, not the case
    assert logged_in(world.outside_operator).get(url).status_code == 404
    assert logged_in(world.other_handler).get(url).status_code == 404
    # While the street's operator and the sanitation handler see it
    assert logged_in(world.operator).get(url).status_code == 200
    assert logged_in(world.handler).get(url).status_code == 200


def test_anonymous_visitors_are_sent_to_the_login_page(world):
    case = reported(world)
    response = Client().get(f"/command/cases/{case.pk}/")
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next=/command/cases/{case.pk}/"


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("operator", ["request_verification", "file", "void", "merge"]),
        ("shift_leader", ["request_verification", "file", "void", "merge", "urge"]),
        ("dispatcher", []),
        ("leader", ["urge"]),
    ],
)
def test_the_buttons_of_a_reported_case_are_the_actions_the_workflow_allows(world, who, expected):
    case = reported(world)
    user = getattr(world, who)
    html = logged_in(user).get(f"/command/cases/{case.pk}/").content.decode()
    assert action_forms(html) == expected
    # Exactly the table's answer, less 并入 (the other half of 合并, never a button of its own)
    assert expected == [a for a in selectors.case_actions_for(case=case, user=user) if a != "absorb"]
    assert ('id="no-actions"' in html) == (not expected)


def test_the_department_sees_return_extension_and_handle_on_its_dispatched_case(world):
    case = dispatched(world)
    html = logged_in(world.handler).get(f"/command/cases/{case.pk}/").content.decode()
    assert action_forms(html) == ["return", "request_extension", "handle"]
    # The after photo is compulsory for 处置反馈, the reason for 回退 (read from the transition table)
    assert re.search(r'name="photos"[^>]*required', html)
    assert re.search(r'<textarea name="comment"[^>]*required[^>]*id="id_return_comment"', html)


def test_the_page_shows_facts_state_timer_and_the_timeline_with_photos(world):
    # Given a case dispatched Monday 09:30 and handled with an after photo
    case = dispatched(world)
    services.case_handle(
        case=case, actor=world.handler, comment="已清运完毕", photos=[jpeg()], at=local(2026, 11, 16, 11, 0)
    )
    response = logged_in(world.operator).get(f"/command/cases/{case.pk}/")
    html = response.content.decode()
    assert response.status_code == 200
    assert '<span class="state-badge" id="case-state">待核查</span>' in html
    # The 核查 step runs since 11:00 (2 working hours: 11:00-12:00, 14:00-15:00) and is long overdue: red
    assert '<strong id="case-deadline">2026-11-16 15:00</strong>' in html
    assert 'data-light="red"' in html
    assert '<span id="case-light-label">已超时</span>' in html
    assert "路边有成堆垃圾" in html and "测试路1号" in html

    # The timeline: every row with action, states, actor and role, oldest first
    timeline = html.split('id="timeline"')[1].split("</ol>")[0]
    actions = re.findall(r'<strong class="event-action">(.+?)</strong>', timeline)
    assert actions == ["上报", "立案", "派遣", "处置反馈"]
    assert "张网格（网格员）" in timeline
    assert "handler（部门处置人员） · 街道环卫所" in timeline
    assert "派往：街道环卫所" in timeline
    assert "已清运完毕" in timeline
    # Photos: the report's before photo and the handler's after photo, both through the checked view
    photos = list(CasePhoto.objects.filter(case=case).order_by("id"))
    assert [p.stage for p in photos] == ["before", "after"]
    for photo in photos:
        assert f'src="/command/photos/{photo.pk}/"' in timeline
    assert "/media/" not in html and photos[0].image.name not in html


def test_the_map_data_holds_the_case_point_and_its_grid_in_wgs84(world):
    case = reported(world)
    html = logged_in(world.operator).get(f"/command/cases/{case.pk}/").content.decode()
    data = json.loads(re.search(r'<script id="case-map-data" type="application/json">(.+?)</script>', html).group(1))
    assert data["point"] == pytest.approx([106.4005, 29.4005])
    assert data["grid"]["properties"] == {"name": "第3网格"}
    assert data["grid"]["geometry"]["type"] == "Polygon"
    assert 'id="case-map"' in html


def test_a_photo_is_served_only_to_users_who_may_see_its_case(world):
    case = reported(world)
    photo = CasePhoto.objects.get(case=case)
    url = f"/command/photos/{photo.pk}/"
    response = logged_in(world.operator).get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response["Cache-Control"] == "private, max-age=3600"
    with photo.image.open("rb") as stored:
        assert b"".join(response.streaming_content) == stored.read()
    assert logged_in(world.outside_operator).get(url).status_code == 404
    assert logged_in(world.handler).get(url).status_code == 404  # never dispatched to sanitation


def test_duplicates_are_suggested_on_a_reported_case(world):
    # Given two reports of the same category at the same place, an hour apart
    first = reported(world, at=MONDAY)
    second = reported(world, at=local(2026, 11, 16, 10, 0))
    html = logged_in(world.operator).get(f"/command/cases/{second.pk}/").content.decode()
    duplicates = html.split('id="duplicates"')[1].split("</table>")[0]
    assert first.number in duplicates
    assert '<input type="hidden" name="into" value="' + first.number + '">' in duplicates
