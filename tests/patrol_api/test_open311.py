"""Open311 GeoReport v2 at /open311/v2/: every endpoint in JSON and XML, following the specification's examples."""

import datetime as dt
import re
from xml.etree import ElementTree

import pytest
from django.test import Client
from django.utils import timezone

from events import services as case_services
from events.models import Case, Category
from patrol_api import services
from patrol_api.models import ApiKey, CaseReceipt
from tests.events.factories import POINT_NW, POINT_SW, local
from tests.factories import FacilityFactory, UserFactory

BASE = "/open311/v2"


@pytest.fixture
def public(world):
    """An API key for a third-party app, and a component category (with the FACILITY_CODE attribute)."""
    api_key, raw_key = services.api_key_issue(name="随手拍", contact="app@example.cn")
    manhole = Category.objects.create(
        kind="C",
        major_code="01",
        major_name="公用设施",
        minor_code="01",
        minor_name="上水井盖",
        filing_condition="井盖丢失、破损、移位",
        closing_condition="井盖恢复完好",
        default_department=world.sanitation,
    )
    world.api_key, world.raw_key, world.manhole = api_key, raw_key, manhole
    return world


def xml(response) -> ElementTree.Element:
    assert response["Content-Type"] == "text/xml; charset=utf-8"
    assert response.content.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    return ElementTree.fromstring(response.content)  # noqa: S314 (our own answer, in a test)


def as_dict(element: ElementTree.Element) -> dict:
    return {child.tag: child.text for child in element}


def post_request(client, fmt="json", **fields):
    return client.post(f"{BASE}/requests.{fmt}", fields)  # application/x-www-form-urlencoded as in the spec


def spec_example_form(world, **overrides) -> dict:
    """The specification's example POST, with our service code, coordinates and Chinese text."""
    return {
        "api_key": world.raw_key,
        "jurisdiction_id": "city.gov",
        "service_code": "E0102",
        "lat": str(POINT_SW.y),
        "long": str(POINT_SW.x),
        "address_string": "测试路1号",
        "email": "smit333@sfgov.edu",
        "device_id": "tt222111",
        "account_id": "123456",
        "first_name": "明",
        "last_name": "李",
        "phone": "13812345678",
        "description": "小区门口垃圾成堆",
        "media_url": "http://farm3.static.flickr.com/2002/2212426634_5ed477a060.jpg",
        "attribute[WHISPAWN]": "123456",
        "attribute[WHISDORN]": "COISL001",
        **overrides,
    }


# --- discovery and services ----------------------------------------------------------------------


@pytest.mark.django_db
def test_discovery_in_json_and_xml(public):
    client = Client()
    body = client.get(f"{BASE}/discovery.json").json()
    assert body["endpoints"] == [
        {
            "specification": "http://wiki.open311.org/GeoReport_v2",
            "url": "http://testserver/open311/v2",
            "changeset": "2026-11-22 00:00",
            "type": "production",
            "formats": ["text/xml", "application/json"],
        }
    ]
    root = xml(client.get(f"{BASE}/discovery.xml"))
    assert root.tag == "discovery"
    endpoint = root.find("endpoints/endpoint")
    assert endpoint.findtext("specification") == "http://wiki.open311.org/GeoReport_v2"
    assert [f.text for f in endpoint.findall("formats/format")] == ["text/xml", "application/json"]


@pytest.mark.django_db
def test_service_list_in_json_and_xml(public):
    client = Client()
    response = client.get(f"{BASE}/services.json?jurisdiction_id=city.gov")
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response.json() == [
        {
            "service_code": "C0101",
            "service_name": "上水井盖",
            "description": "井盖丢失、破损、移位",
            "metadata": True,
            "type": "realtime",
            "keywords": "公用设施, 上水井盖",
            "group": "公用设施",
        },
        {
            "service_code": "E0102",
            "service_name": "暴露垃圾",
            "description": "成堆、成片的生活垃圾",
            "metadata": False,
            "type": "realtime",
            "keywords": "市容环境, 暴露垃圾",
            "group": "市容环境",
        },
    ]
    root = xml(client.get(f"{BASE}/services.xml"))
    assert root.tag == "services"
    assert [as_dict(s) for s in root.findall("service")][1] == {
        "service_code": "E0102",
        "service_name": "暴露垃圾",
        "description": "成堆、成片的生活垃圾",
        "metadata": "false",
        "type": "realtime",
        "keywords": "市容环境, 暴露垃圾",
        "group": "市容环境",
    }


@pytest.mark.django_db
def test_service_definition_in_json_and_xml(public):
    client = Client()
    assert client.get(f"{BASE}/services/E0102.json").json() == {"service_code": "E0102", "attributes": []}
    assert client.get(f"{BASE}/services/C0101.json").json() == {
        "service_code": "C0101",
        "attributes": [
            {
                "variable": True,
                "code": "FACILITY_CODE",
                "datatype": "string",
                "required": False,
                "datatype_description": "16位部件编码",
                "order": 1,
                "description": "部件（井盖、路灯等）上标注的编码，不知道可不填",
            }
        ],
    }
    root = xml(client.get(f"{BASE}/services/C0101.xml"))
    assert root.tag == "service_definition"
    assert root.findtext("service_code") == "C0101"
    attribute = root.find("attributes/attribute")
    assert (attribute.findtext("variable"), attribute.findtext("code"), attribute.findtext("required")) == (
        "true",
        "FACILITY_CODE",
        "false",
    )
    assert xml(client.get(f"{BASE}/services/E0102.xml")).find("attributes") is not None


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_unknown_service_code_is_a_404_error_array(public, fmt):
    response = Client().get(f"{BASE}/services/E9999.{fmt}")
    assert response.status_code == 404
    if fmt == "json":
        assert response.json() == [{"code": 404, "description": "service_code E9999 not found / 服务类别不存在"}]
    else:
        errors = xml(response)
        assert errors.tag == "errors"
        assert as_dict(errors.find("error")) == {
            "code": "404",
            "description": "service_code E9999 not found / 服务类别不存在",
        }


# --- POST requests ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_post_request_as_in_the_spec_example_creates_a_public_case_waiting_for_verification(public):
    response = post_request(Client(), **spec_example_form(public))
    assert response.status_code == 201
    case = Case.objects.get()
    assert response.json() == [
        {
            "service_request_id": case.number,
            "service_notice": "已受理，将由网格员在 2 个工作小时内现场核实；可凭编号查询办理进度。",
            "account_id": None,
        }
    ]
    # A case from the public, waiting for 核实 by the worker of its grid
    assert (case.source, case.state, case.current_assignee, case.reporter) == (
        "public",
        "verifying",
        public.worker,
        None,
    )
    assert (case.reporter_name, case.reporter_phone_masked, case.address) == ("李明", "138****5678", "测试路1号")
    receipt = CaseReceipt.objects.get()
    assert (receipt.channel, receipt.api_key, receipt.media_url) == (
        "open311",
        public.api_key,
        "http://farm3.static.flickr.com/2002/2212426634_5ed477a060.jpg",
    )
    assert receipt.attributes == {"WHISPAWN": "123456", "WHISDORN": "COISL001"}
    assert list(case.history.values_list("action", "actor_role")) == [("register", "public")]


@pytest.mark.django_db
def test_post_request_in_xml_with_a_facility_attribute(public):
    facility = FacilityFactory(code="5001040101000001")
    response = post_request(
        Client(),
        "xml",
        **spec_example_form(public, service_code="C0101", **{"attribute[FACILITY_CODE]": facility.code}),
    )
    assert response.status_code == 201
    root = xml(response)
    assert root.tag == "service_requests"
    request = root.find("request")
    case = Case.objects.get()
    assert request.findtext("service_request_id") == case.number
    assert request.find("account_id").text is None  # <account_id/>, as in the spec example
    assert case.facility == facility


@pytest.mark.django_db
def test_multivaluelist_attributes_are_kept(public):
    form = spec_example_form(public)
    form["attribute[KINDS][]"] = ["纸箱", "塑料"]
    assert post_request(Client(), **form).status_code == 201
    assert CaseReceipt.objects.get().attributes["KINDS"] == ["纸箱", "塑料"]


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize(
    ("change", "status", "text"),
    [
        ({"api_key": None}, 403, "Missing or invalid api_key"),
        ({"api_key": "wrong-key"}, 403, "Missing or invalid api_key"),
        ({"service_code": None}, 400, "service_code was not provided"),
        ({"service_code": "E9999"}, 404, "service_code E9999 not found"),
        ({"lat": None, "long": None}, 400, "lat: lat 和 long 必填"),
        ({"lat": "abc"}, 400, "lat: "),
        ({"lat": "39.9", "long": "116.4"}, 400, "location: 位置 (116.400000, 39.900000) 不在本辖区任何网格内"),
        ({"lat": "48.85", "long": "2.35"}, 400, "不在中国境内"),
        ({"description": ""}, 400, "description: 请填写问题描述"),
        ({"phone": "12345"}, 400, "phone: 电话号码格式无效"),
        ({"media_url": "not a url"}, 400, "media_url: "),
        (
            {"service_code": "C0101", "attribute[FACILITY_CODE]": "0000000000000000"},
            400,
            "部件编码 0000000000000000 不存在",
        ),
    ],
)
def test_bad_posts_are_error_arrays_and_create_nothing(public, fmt, change, status, text):
    form = {k: v for k, v in spec_example_form(public, **change).items() if v is not None}
    response = post_request(Client(), fmt, **form)
    assert response.status_code == status
    if fmt == "json":
        errors = response.json()
        assert all(error["code"] == status for error in errors)
        descriptions = [error["description"] for error in errors]
    else:
        root = xml(response)
        assert root.tag == "errors"
        descriptions = [e.findtext("description") for e in root.findall("error")]
    assert any(text in d for d in descriptions), descriptions
    assert Case.objects.count() == CaseReceipt.objects.count() == 0


@pytest.mark.django_db
def test_a_revoked_key_is_refused(public):
    services.api_key_revoke(api_key=public.api_key)
    response = post_request(Client(), **spec_example_form(public))
    assert (response.status_code, response.json()[0]["code"]) == (403, 403)
    assert Case.objects.count() == 0


@pytest.mark.django_db
def test_a_json_array_body_is_a_400_not_a_crash(public):
    response = Client().post(f"{BASE}/requests.json", "[1, 2]", content_type="application/json")
    assert response.status_code == 400
    assert response.json()[0]["code"] == 400


# --- tokens (batch mode keys) -------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_batch_mode_key_gets_a_token_that_resolves_to_the_request(public):
    _, raw_key = services.api_key_issue(name="批处理接入方", returns_token=True)
    response = post_request(Client(), **spec_example_form(public, api_key=raw_key))
    assert response.status_code == 201
    (answer,) = response.json()
    assert set(answer) == {"token", "service_notice", "account_id"}  # no service_request_id with a token
    token = answer["token"]
    number = Case.objects.get().number
    assert Client().get(f"{BASE}/tokens/{token}.json").json() == [{"service_request_id": number, "token": token}]
    root = xml(Client().get(f"{BASE}/tokens/{token}.xml"))
    assert as_dict(root.find("request")) == {"service_request_id": number, "token": token}
    missing = Client().get(f"{BASE}/tokens/0123456789abcdef.json")
    assert (missing.status_code, missing.json()[0]["code"]) == (404, 404)
    assert xml(Client().get(f"{BASE}/tokens/0123456789abcdef.xml")).tag == "errors"


# --- GET requests ---------------------------------------------------------------------------------------


def public_case(world, *, at, point=POINT_SW, category=None):
    return case_services.case_report(
        actor=None,
        source=Case.Source.PUBLIC,
        category=category or world.category,
        location=point,
        description="路边垃圾",
        address="测试路2号",
        reporter_name="李明",
        reporter_phone="13812345678",
        at=at,
    )


@pytest.mark.django_db
def test_get_requests_in_json_with_statuses_and_notes(public):
    now = timezone.now()
    open_case = public_case(public, at=now - dt.timedelta(days=1))
    voided = public_case(public, at=now - dt.timedelta(days=2), point=POINT_NW)
    case_services.case_void(case=voided, actor=public.operator, reason="重复", at=now - dt.timedelta(hours=30))
    public_case(public, at=now - dt.timedelta(days=120))  # outside the default 90 days
    case_services.case_report(  # internal: never published
        actor=public.worker,
        source=Case.Source.GRID_WORKER,
        category=public.category,
        location=POINT_SW,
        description="内部",
    )
    body = Client().get(f"{BASE}/requests.json").json()
    assert [r["service_request_id"] for r in body] == [open_case.number, voided.number]
    first, second = body
    assert first == {
        "service_request_id": open_case.number,
        "status": "open",
        "status_notes": "待核实",
        "service_name": "暴露垃圾",
        "service_code": "E0102",
        "description": "路边垃圾",
        "agency_responsible": None,
        "service_notice": None,
        "requested_datetime": timezone.localtime(open_case.reported_at).isoformat(timespec="seconds"),
        "updated_datetime": timezone.localtime(open_case.reported_at).isoformat(timespec="seconds"),
        "expected_datetime": None,
        "address": "测试路2号",
        "lat": round(POINT_SW.y, 6),
        "long": round(POINT_SW.x, 6),
        "media_url": None,
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00", first["requested_datetime"])
    assert (second["status"], second["status_notes"]) == ("closed", "已作废")
    assert dt.datetime.fromisoformat(second["updated_datetime"]) == (now - dt.timedelta(hours=30)).replace(
        microsecond=0
    )
    assert "李明" not in str(body) and "13812345678" not in str(body)


@pytest.mark.django_db
def test_get_requests_filters(public):
    now = timezone.now()
    garbage = public_case(public, at=now - dt.timedelta(days=1))
    manhole = public_case(public, at=now - dt.timedelta(days=3), category=public.manhole)
    old = public_case(public, at=local(2025, 1, 10, 9, 0))
    case_services.case_void(case=manhole, actor=public.operator, reason="已修复")
    client = Client()

    def ids(query):
        response = client.get(f"{BASE}/requests.json?{query}")
        assert response.status_code == 200, response.json()
        return [r["service_request_id"] for r in response.json()]

    assert ids("status=open") == [garbage.number]
    assert ids("status=closed") == [manhole.number]
    assert ids("status=open,closed") == [garbage.number, manhole.number]
    assert ids("service_code=C0101") == [manhole.number]
    assert ids("service_code=C0101,E0102") == [garbage.number, manhole.number]
    assert ids("start_date=2025-01-01T00:00:00Z&end_date=2025-02-01T00:00:00Z") == [old.number]
    assert ids("start_date=2025-01-01T00:00:00%2B08:00") == [old.number]
    # service_request_id overrides every other argument
    assert ids(f"service_request_id={old.number},{garbage.number}&status=closed") == [garbage.number, old.number]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    [
        "start_date=2025-01-01T00:00:00Z&end_date=2025-06-01T00:00:00Z",
        "start_date=2025-02-01T00:00:00Z&end_date=2025-01-01T00:00:00Z",
        "status=pending",
        "start_date=yesterday",
    ],
)
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_bad_searches_are_400_error_arrays(public, query, fmt):
    response = Client().get(f"{BASE}/requests.{fmt}?{query}")
    assert response.status_code == 400
    if fmt == "json":
        assert response.json()[0]["code"] == 400
    else:
        assert xml(response).find("error/code").text == "400"


@pytest.mark.django_db
def test_get_requests_in_xml_like_the_spec_example(public):
    case = public_case(public, at=timezone.now() - dt.timedelta(hours=2))
    root = xml(Client().get(f"{BASE}/requests.xml"))
    assert root.tag == "service_requests"
    request = as_dict(root.find("request"))
    assert list(request) == [
        "service_request_id",
        "status",
        "status_notes",
        "service_name",
        "service_code",
        "description",
        "agency_responsible",
        "service_notice",
        "requested_datetime",
        "updated_datetime",
        "expected_datetime",
        "address",
        "lat",
        "long",
        "media_url",
    ]
    assert (request["service_request_id"], request["status"], request["lat"]) == (
        case.number,
        "open",
        str(round(POINT_SW.y, 6)),
    )
    assert request["agency_responsible"] is None


@pytest.mark.django_db
def test_get_one_request_in_json_and_xml(public):
    post_request(Client(), **spec_example_form(public))
    case = Case.objects.get()
    case_services.case_verify(case=case, actor=public.worker, confirmed=True)
    case_services.case_file(case=case, actor=public.operator)  # dispatched automatically to sanitation
    (body,) = Client().get(f"{BASE}/requests/{case.number}.json").json()
    case.refresh_from_db()
    assert (body["status"], body["status_notes"], body["agency_responsible"]) == ("open", "处置中", "街道环卫所")
    assert body["expected_datetime"] == timezone.localtime(case.due_at).isoformat(timespec="seconds")
    assert body["media_url"] == "http://farm3.static.flickr.com/2002/2212426634_5ed477a060.jpg"
    root = xml(Client().get(f"{BASE}/requests/{case.number}.xml"))
    assert root.find("request/service_request_id").text == case.number
    missing = Client().get(f"{BASE}/requests/E0102209901010001.json")
    assert (missing.status_code, missing.json()[0]["code"]) == (404, 404)
    assert xml(Client().get(f"{BASE}/requests/E0102209901010001.xml")).tag == "errors"


@pytest.mark.django_db
def test_admin_issues_a_key_shown_once_and_revokes_it(client, public):
    admin_user = UserFactory(username="root", is_staff=True, is_superuser=True, role="admin")
    client.force_login(admin_user)
    response = client.post(
        "/admin/patrol_api/apikey/add/", {"name": "市民通", "contact": "", "returns_token": ""}, follow=True
    )
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"] if "新密钥" in str(m)]
    raw_key = shown[0].split("：")[-1]
    api_key = ApiKey.objects.get(name="市民通")
    assert raw_key not in str(ApiKey.objects.filter(pk=api_key.pk).values().get())  # only the digest is stored
    assert post_request(Client(), **spec_example_form(public, api_key=raw_key)).status_code == 201
    client.post("/admin/patrol_api/apikey/", {"action": "revoke", "_selected_action": [api_key.pk]})
    assert post_request(Client(), **spec_example_form(public, api_key=raw_key)).status_code == 403
