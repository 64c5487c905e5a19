"""Open311 GeoReport v2 (http://wiki.open311.org/GeoReport_v2) at /open311/v2/, in XML and JSON.

Service codes are our category codes (C/E + 大类 + 小类, e.g. E0102). A request posted here
becomes a case from the public, waiting for 核实 by the worker of its grid. Our finer states
map to open/closed, with the state in `status_notes`. Only cases from the public are
published, never a reporter's name or phone. Errors are the specification's arrays of
{code, description}; times are ISO 8601 with their offset; everything is UTF-8.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any
from xml.etree import ElementTree

from django.contrib.gis.geos import Point
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, parsers, renderers, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from events import workflow
from events.models import Case, Category
from geodata import pii
from geodata.models import Facility
from patrol.services import CHINA_BOUNDS
from patrol_api import selectors, services
from patrol_api.errors import as_api_exception
from patrol_api.models import ApiKey, CaseReceipt
from patrol_api.serializers import FiniteFloatField

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-11-22 00:00"
FACILITY_ATTRIBUTE = "FACILITY_CODE"
# Container elements of the XML and the element of each item (the Spark convention in reverse).
_ITEM_OF = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
}


# --- formats ----------------------------------------------------------------------------------------


def _xml_value(parent: ElementTree.Element, name: str, value: Any) -> None:
    element = ElementTree.SubElement(parent, name)
    _xml_fill(element, name, value)


def _xml_fill(element: ElementTree.Element, name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool):
        element.text = "true" if value else "false"
    elif isinstance(value, dict):
        for key, item in value.items():
            _xml_value(element, key, item)
    elif isinstance(value, list):
        for item in value:
            _xml_value(element, _ITEM_OF.get(name, "item"), item)
    else:
        element.text = str(value)


class Open311XMLRenderer(renderers.BaseRenderer):
    media_type = "text/xml"
    format = "xml"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        response = (renderer_context or {}).get("response")
        view = (renderer_context or {}).get("view")
        root_name = getattr(response, "open311_root", None) or getattr(view, "xml_root", "response")
        root = ElementTree.Element(root_name)
        _xml_fill(root, root_name, data)
        body = ElementTree.tostring(root, encoding="unicode")
        return f'<?xml version="1.0" encoding="utf-8"?>\n{body}'.encode()


class Open311JSONRenderer(renderers.BaseRenderer):
    media_type = "application/json"
    format = "json"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def open311_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Errors as the specification's array of {code, description}, one entry per problem."""
    exc = as_api_exception(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    response.data = [{"code": response.status_code, "description": text} for text in _descriptions(response.data)]
    response.open311_root = "errors"
    return response


def _descriptions(data: Any, field: str = "") -> list[str]:
    if isinstance(data, dict):
        if set(data) <= {"detail", "code"} and "detail" in data:
            return _descriptions(data["detail"], field)
        found = []
        for key, value in data.items():
            label = field if key in ("non_field_errors", "detail") else key
            found.extend(_descriptions(value, label))
        return found
    if isinstance(data, list):
        return [text for item in data for text in _descriptions(item, field)]
    return [f"{field}: {data}" if field else str(data)]


class Open311Error(exceptions.APIException):
    def __init__(self, status_code: int, description: str):
        self.status_code = status_code
        super().__init__(detail=description)


FORMAT_PARAMETER = OpenApiParameter(
    "fmt", OpenApiTypes.STR, OpenApiParameter.PATH, enum=["json", "xml"], description="返回格式：json 或 xml"
)
JURISDICTION_PARAMETER = OpenApiParameter(
    "jurisdiction_id", OpenApiTypes.STR, description="单一辖区，可不填（填写也被忽略）"
)
ERROR_ARRAY = inline_serializer(
    "Open311Error", {"code": serializers.IntegerField(), "description": serializers.CharField()}, many=True
)


class Open311Api(APIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)
    renderer_classes = (Open311JSONRenderer, Open311XMLRenderer)
    xml_root = "response"

    def get_exception_handler(self):
        return open311_exception_handler

    def get_format_suffix(self, **kwargs):
        # The format is the URL's extension (services.xml); named "fmt", not DRF's "format",
        # so that the schema generator does not drop these URLs as format-suffix duplicates.
        return kwargs.get("fmt")


def w3_time(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return timezone.localtime(value).isoformat(timespec="seconds")


# --- discovery and services -------------------------------------------------------------------------


@extend_schema(tags=["Open311"], parameters=[FORMAT_PARAMETER], responses={200: OpenApiTypes.OBJECT})
class DiscoveryApi(Open311Api):
    """Service discovery: where the GeoReport v2 endpoint is and which formats it speaks."""

    xml_root = "discovery"

    def get(self, request: Request, fmt: str) -> Response:
        return Response(
            {
                "changeset": CHANGESET,
                "contact": "街道城市管理指挥中心",
                "key_service": "接入密钥由系统管理员在后台（Open311 接入密钥）签发",
                "endpoints": [
                    {
                        "specification": SPECIFICATION,
                        "url": request.build_absolute_uri("/open311/v2"),
                        "changeset": CHANGESET,
                        "type": "production",
                        "formats": ["text/xml", "application/json"],
                    }
                ],
            }
        )


def _service(category: Category) -> dict[str, Any]:
    return {
        "service_code": category.code,
        "service_name": category.minor_name,
        "description": category.filing_condition,
        "metadata": category.kind == Category.Kind.COMPONENT,
        "type": "realtime",
        "keywords": f"{category.major_name}, {category.minor_name}",
        "group": category.major_name,
    }


def _attributes(category: Category) -> list[dict[str, Any]]:
    if category.kind != Category.Kind.COMPONENT:
        return []
    return [
        {
            "variable": True,
            "code": FACILITY_ATTRIBUTE,
            "datatype": "string",
            "required": False,
            "datatype_description": "16位部件编码",
            "order": 1,
            "description": "部件（井盖、路灯等）上标注的编码，不知道可不填",
        }
    ]


@extend_schema(
    tags=["Open311"],
    parameters=[FORMAT_PARAMETER, JURISDICTION_PARAMETER],
    responses={200: OpenApiTypes.OBJECT, 400: ERROR_ARRAY},
)
class ServiceListApi(Open311Api):
    """GET services: every active category (service_code = category code)."""

    xml_root = "services"

    def get(self, request: Request, fmt: str) -> Response:
        return Response([_service(category) for category in selectors.categories_active()])


@extend_schema(
    tags=["Open311"],
    parameters=[FORMAT_PARAMETER, JURISDICTION_PARAMETER],
    responses={200: OpenApiTypes.OBJECT, 404: ERROR_ARRAY},
)
class ServiceDefinitionApi(Open311Api):
    """GET a service definition: the attributes a request of this service may carry."""

    xml_root = "service_definition"

    def get(self, request: Request, service_code: str, fmt: str) -> Response:
        category = selectors.category_by_code(code=service_code)
        if category is None:
            raise Open311Error(404, f"service_code {service_code} not found / 服务类别不存在")
        return Response({"service_code": category.code, "attributes": _attributes(category)})


# --- service requests -----------------------------------------------------------------------------------

_ATTRIBUTE_KEY = re.compile(r"^attribute\[([A-Za-z0-9_]{1,32})\](\[\])?$")


class RequestCreateInput(serializers.Serializer):
    lat = FiniteFloatField(min_value=-90, max_value=90, required=False)
    long = FiniteFloatField(min_value=-180, max_value=180, required=False)
    address_string = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    address_id = serializers.CharField(max_length=64, required=False, allow_blank=True)
    email = serializers.EmailField(required=False, allow_blank=True)
    device_id = serializers.CharField(max_length=128, required=False, allow_blank=True)
    account_id = serializers.CharField(max_length=128, required=False, allow_blank=True)
    first_name = serializers.CharField(max_length=25, required=False, allow_blank=True, default="")
    last_name = serializers.CharField(max_length=25, required=False, allow_blank=True, default="")
    phone = serializers.CharField(max_length=20, required=False, allow_blank=True, default="")
    description = serializers.CharField(max_length=4000, required=False, allow_blank=True, default="")
    media_url = serializers.URLField(max_length=500, required=False, allow_blank=True, default="")

    def validate_phone(self, phone: str) -> str:
        if not phone:
            return ""
        try:
            return pii.normalize_phone(phone)
        except pii.InvalidPhone as error:
            raise serializers.ValidationError(str(error)) from None

    def validate(self, attrs):
        if attrs.get("lat") is None or attrs.get("long") is None:
            raise serializers.ValidationError(
                {"lat": ["lat 和 long 必填：本系统按坐标确定网格，不能只凭 address_string / address_id 定位"]}
            )
        west, south, east, north = CHINA_BOUNDS
        if not (west <= attrs["long"] <= east and south <= attrs["lat"] <= north):
            raise serializers.ValidationError({"lat": [f"坐标 ({attrs['lat']}, {attrs['long']}) 不在中国境内"]})
        return attrs


class RequestSearchInput(serializers.Serializer):
    service_request_id = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    service_code = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    start_date = serializers.DateTimeField(required=False, allow_null=True)
    end_date = serializers.DateTimeField(required=False, allow_null=True)
    status = serializers.CharField(max_length=20, required=False, allow_blank=True)

    def validate_status(self, value: str) -> set[str] | None:
        statuses = {s.strip() for s in value.split(",") if s.strip()}
        if not statuses:
            return None
        if not statuses <= {"open", "closed"}:
            raise serializers.ValidationError("status 只能是 open、closed 或二者以逗号分隔")
        return statuses

    def validate(self, attrs):
        start, end = attrs.get("start_date"), attrs.get("end_date")
        if start and end:
            if end < start:
                raise serializers.ValidationError({"end_date": ["end_date 早于 start_date"]})
            if end - start > selectors.OPEN311_WINDOW:
                raise serializers.ValidationError({"end_date": ["查询范围不能超过 90 天"]})
        elif start:
            end = start + selectors.OPEN311_WINDOW
        else:
            end = end or timezone.now()
            start = end - selectors.OPEN311_WINDOW
        attrs["start_date"], attrs["end_date"] = start, end
        return attrs


def _codes(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _status_notes(case: Case) -> str:
    if case.state == workflow.State.MERGED and case.merged_into is not None:
        return f"已合并至案件 {case.merged_into.number}"
    return case.get_state_display()


def _media_url(case: Case) -> str | None:
    try:
        receipt = case.api_receipt
    except CaseReceipt.DoesNotExist:
        return None
    return receipt.media_url or None


def _request(case: Case) -> dict[str, Any]:
    return {
        "service_request_id": case.number,
        "status": "open" if workflow.is_open(case.state) else "closed",
        "status_notes": _status_notes(case),
        "service_name": case.category.minor_name,
        "service_code": case.category.code,
        "description": case.description,
        "agency_responsible": case.current_department.name if case.current_department else None,
        "service_notice": None,
        "requested_datetime": w3_time(case.reported_at),
        "updated_datetime": w3_time(getattr(case, "updated_at", None) or case.reported_at),
        "expected_datetime": w3_time(case.due_at),
        "address": case.address or None,
        "lat": round(case.location.y, 6),
        "long": round(case.location.x, 6),
        "media_url": _media_url(case),
    }


def _service_notice(category: Category) -> str:
    return f"已受理，将由网格员在 {category.verify_hours.normalize():f} 个工作小时内现场核实；可凭编号查询办理进度。"


def _form(request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise Open311Error(400, "请求体应为表单（application/x-www-form-urlencoded）")
    return request.data


def _api_key(request: Request) -> ApiKey:
    raw_key = _form(request).get("api_key") or request.query_params.get("api_key") or ""
    api_key = selectors.api_key_active(raw_key=raw_key if isinstance(raw_key, str) else "")
    if api_key is None:
        raise Open311Error(403, "Missing or invalid api_key / 接入密钥缺失、无效或已吊销")
    return api_key


def _service_category(request: Request) -> Category:
    code = _form(request).get("service_code")
    if not code or not isinstance(code, str):
        raise Open311Error(400, "service_code was not provided / 缺少 service_code")
    category = selectors.category_by_code(code=code.strip())
    if category is None:
        raise Open311Error(404, f"service_code {code} not found / 服务类别不存在")
    return category


def _attributes_of(request: Request) -> dict[str, Any]:
    """attribute[CODE]=value and attribute[CODE][]=v1&attribute[CODE][]=v2 (multivaluelist)."""
    found: dict[str, Any] = {}
    data = _form(request)
    nested = data.get("attribute")
    if isinstance(nested, dict):  # a JSON body
        found.update({str(k)[:32]: v for k, v in nested.items() if isinstance(v, (str, int, float, list))})
    for key in data:
        match = _ATTRIBUTE_KEY.match(str(key))
        if match is None:
            continue
        values = data.getlist(key) if hasattr(data, "getlist") else [data[key]]
        found[match.group(1)] = [str(v)[:500] for v in values] if match.group(2) else str(values[-1])[:500]
    return found


def _facility_of(category: Category, attributes: dict[str, Any]) -> Facility | None:
    code = attributes.get(FACILITY_ATTRIBUTE)
    if category.kind != Category.Kind.COMPONENT or not code or not isinstance(code, str):
        return None
    facility = Facility.objects.filter(code=code).first()
    if facility is None:
        raise Open311Error(400, f"attribute[{FACILITY_ATTRIBUTE}]: 部件编码 {code} 不存在")
    return facility


class RequestsApi(Open311Api):
    """GET requests: search public requests. POST requests: report a problem (API key required)."""

    xml_root = "service_requests"
    parser_classes = (parsers.FormParser, parsers.MultiPartParser, parsers.JSONParser)

    def get_throttles(self):
        if self.request.method == "POST":
            self.throttle_scope = "write"
            return super().get_throttles()
        return []

    @extend_schema(
        tags=["Open311"],
        parameters=[FORMAT_PARAMETER, JURISDICTION_PARAMETER, RequestSearchInput],
        responses={200: OpenApiTypes.OBJECT, 400: ERROR_ARRAY},
    )
    def get(self, request: Request, fmt: str) -> Response:
        form = RequestSearchInput(data=request.query_params)
        form.is_valid(raise_exception=True)
        wanted = form.validated_data
        cases = selectors.open311_requests_search(
            numbers=_codes(wanted.get("service_request_id")),
            service_codes=_codes(wanted.get("service_code")),
            start=wanted["start_date"],
            end=wanted["end_date"],
            statuses=wanted.get("status"),
        )
        return Response([_request(case) for case in cases])

    @extend_schema(
        tags=["Open311"],
        parameters=[FORMAT_PARAMETER],
        request={
            "application/x-www-form-urlencoded": inline_serializer(
                "Open311RequestCreate",
                {
                    "api_key": serializers.CharField(),
                    "service_code": serializers.CharField(),
                    "jurisdiction_id": serializers.CharField(required=False),
                    **RequestCreateInput().get_fields(),
                },
            )
        },
        responses={
            201: OpenApiTypes.OBJECT,
            400: ERROR_ARRAY,
            403: OpenApiResponse(ERROR_ARRAY, description="api_key 缺失、无效或已吊销"),
            404: OpenApiResponse(ERROR_ARRAY, description="service_code 不存在"),
        },
        description="表单字段按规范：attribute[CODE]=value（多值：attribute[CODE][]=v1&attribute[CODE][]=v2）。",
    )
    def post(self, request: Request, fmt: str) -> Response:
        api_key = _api_key(request)
        category = _service_category(request)
        form = RequestCreateInput(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        attributes = _attributes_of(request)
        receipt = services.open311_request_create(
            api_key=api_key,
            category=category,
            location=Point(data["long"], data["lat"], srid=4326),
            description=data["description"],
            address=data["address_string"],
            facility=_facility_of(category, attributes),
            reporter_name=f"{data['last_name']}{data['first_name']}".strip(),
            reporter_phone=data["phone"],
            media_url=data["media_url"],
            attributes=attributes,
        )
        answer: dict[str, Any] = (
            {"token": receipt.token} if api_key.returns_token else {"service_request_id": receipt.case.number}
        )
        answer.update(service_notice=_service_notice(category), account_id=None)
        return Response([answer], status=status.HTTP_201_CREATED)


@extend_schema(
    tags=["Open311"],
    parameters=[FORMAT_PARAMETER, JURISDICTION_PARAMETER],
    responses={200: OpenApiTypes.OBJECT, 404: ERROR_ARRAY},
)
class RequestApi(Open311Api):
    """GET a service request by its id (our case number)."""

    xml_root = "service_requests"

    def get(self, request: Request, service_request_id: str, fmt: str) -> Response:
        case = selectors.open311_request(number=service_request_id)
        if case is None:
            raise Open311Error(404, f"service_request_id {service_request_id} not found / 请求不存在")
        return Response([_request(case)])


@extend_schema(
    tags=["Open311"],
    parameters=[FORMAT_PARAMETER, JURISDICTION_PARAMETER],
    responses={200: OpenApiTypes.OBJECT, 404: ERROR_ARRAY},
)
class TokenApi(Open311Api):
    """GET the service_request_id of a token (for keys issued in batch mode)."""

    xml_root = "service_requests"

    def get(self, request: Request, token: str, fmt: str) -> Response:
        receipt = selectors.open311_receipt_by_token(token=token)
        if receipt is None:
            raise Open311Error(404, f"token {token} not found / token 不存在")
        return Response([{"service_request_id": receipt.case.number, "token": receipt.token}])
