"""热线登记: the command center records a hotline call; refusals keep the input and create no case."""

import json
import re

import pytest

from events.models import Case, CaseHistory, CasePhoto
from events.workflow import Action, State
from tests.command.flows import logged_in
from tests.events.factories import jpeg

pytestmark = pytest.mark.django_db


def call(world, **changes) -> dict:
    data = {
        "source": "hotline",
        "category": world.category.pk,
        "urgency": "normal",
        "longitude": "106.4005",
        "latitude": "29.4005",
        "address": "测试路8号门口",
        "description": "小区门口垃圾三天没人清",
        "reporter_name": "王先生",
        "reporter_phone": "13812345678",
        "client_key": "web-test-0001",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def errors(response) -> list[str]:
    return re.findall(r'<(?:span|p) class="error">(.+?)</(?:span|p)>', response.content.decode())


def refusal(response) -> str:
    return re.search(r'<div class="refusal" role="alert">(.+?)</div>', response.content.decode()).group(1)


def test_a_hotline_call_becomes_a_case_waiting_for_the_grid_workers_verification(world):
    client = logged_in(world.operator)
    response = client.post("/command/register/", call(world, photos=[jpeg()]))
    case = Case.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/command/cases/{case.pk}/"
    assert (case.source, case.state, case.current_assignee) == ("hotline", State.VERIFYING, world.grid_worker)
    assert (case.grid, case.street, case.address) == (world.grid_sw, world.street, "测试路8号门口")
    assert (case.location.x, case.location.y) == pytest.approx((106.4005, 29.4005))
    assert (case.reporter, case.reporter_name, case.reporter_phone_masked) == (world.operator, "王先生", "138****5678")
    assert list(CaseHistory.objects.filter(case=case).values_list("action", "actor__username")) == [
        (Action.REGISTER, "operator")
    ]
    assert list(CasePhoto.objects.filter(case=case).values_list("stage", flat=True)) == ["before"]
    page = client.get(response["Location"]).content.decode()
    assert f"已登记，案件编号 {case.number}，当前状态“待核实”" in page


def test_submitting_the_same_form_twice_creates_one_case(world):
    client = logged_in(world.operator)
    first = client.post("/command/register/", call(world))
    second = client.post("/command/register/", call(world))
    assert Case.objects.count() == 1
    assert first["Location"] == second["Location"]


def test_missing_location_and_description_keep_the_rest_of_the_input(world):
    response = logged_in(world.operator).post(
        "/command/register/", call(world, longitude=None, latitude=None, description="")
    )
    assert response.status_code == 400
    assert errors(response) == [
        "请在地图上点选位置，或输入经纬度",
        "请在地图上点选位置，或输入经纬度",
        "请填写问题描述",
    ]
    html = response.content.decode()
    assert 'value="测试路8号门口"' in html and 'value="王先生"' in html
    assert 'value="web-test-0001"' in html  # the same retry key
    assert Case.objects.count() == 0


def test_a_point_outside_every_grid_is_refused(world):
    response = logged_in(world.operator).post("/command/register/", call(world, longitude="106.6", latitude="29.6"))
    assert response.status_code == 400
    assert errors(response) == ["位置 (106.600000, 29.600000) 不在本辖区任何网格内，请确认定位或联系指挥中心"]
    assert Case.objects.count() == 0


def test_an_operator_cannot_register_a_case_in_another_street(world):
    response = logged_in(world.outside_operator).post("/command/register/", call(world))
    assert response.status_code == 403
    assert errors(response) == ["该案件不在您的管辖范围内"]
    assert Case.objects.count() == 0
    assert CaseHistory.objects.count() == 0


def test_an_invalid_phone_number_is_a_form_error(world):
    response = logged_in(world.operator).post("/command/register/", call(world, reporter_phone="12345"))
    assert response.status_code == 400
    assert errors(response) == ["电话号码格式无效（手机号11位，或区号-座机号）"]
    assert Case.objects.count() == 0


def test_roles_outside_the_command_center_cannot_register(world):
    response = logged_in(world.handler).get("/command/register/")
    assert response.status_code == 403
    assert refusal(response) == "您的角色不能登记案件"
    assert logged_in(world.dispatcher).post("/command/register/", call(world)).status_code == 403
    assert Case.objects.count() == 0


def test_the_map_outlines_the_grids_of_the_operators_street(world):
    html = logged_in(world.operator).get("/command/register/").content.decode()
    outline = json.loads(re.search(r'<script id="register-outline" type="application/json">(.+?)</script>', html)[1])
    assert sorted(f["properties"]["name"] for f in outline["features"]) == ["第1网格", "第2网格", "第3网格", "第4网格"]
    assert re.search(r'name="client_key" value="web-[0-9a-f]{32}"', html)
