"""Input validation and output shapes of the API. No business rules: those live in the services."""

from __future__ import annotations

import base64
import binascii
import io
import math
import re
from decimal import Decimal
from typing import Any

from django.contrib.auth import authenticate
from django.contrib.gis.geos import Point
from django.core.exceptions import ObjectDoesNotExist
from django.core.files.uploadedfile import UploadedFile
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, serializers
from rest_framework.fields import empty
from rest_framework_gis.serializers import GeoFeatureModelSerializer

from accounts.models import User
from events import selectors as case_selectors
from events.models import Case, Category, LimitUnit, UrgeLevel, Urgency
from events.photos import max_photo_bytes
from events.workflow import ROLE_LABELS, Action, State, Step
from geodata import pii
from geodata.models import Department, Facility, Grid
from patrol.models import CheckIn
from patrol.services import CHINA_BOUNDS, MAX_POINTS_PER_BATCH
from patrol_api import selectors

MAX_PHOTOS_PER_REPORT = 6
COORDINATE_DECIMALS = 6  # ≈ 0.1 m
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
_IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9_-]{8,48}$")


# --- authentication (unchanged) ------------------------------------------------------------------


class LoginSerializer(serializers.Serializer):
    username = serializers.CharField(label="用户名", max_length=150)
    password = serializers.CharField(
        label="密码", trim_whitespace=False, style={"input_type": "password"}, max_length=200
    )

    def validate(self, attrs):
        request = self.context.get("request")
        user = authenticate(request=request, **attrs)
        if getattr(request, "axes_locked_out", False):
            raise exceptions.Throttled(detail="登录失败次数过多，该账号已暂时锁定，请15分钟后再试或联系管理员。")
        if user is None:
            raise serializers.ValidationError("用户名或密码错误", code="authorization")
        attrs["user"] = user
        return attrs


class ProfileSerializer(serializers.ModelSerializer):
    role_display = serializers.CharField(source="get_role_display", read_only=True)
    full_name = serializers.CharField(source="get_full_name", read_only=True)
    street = serializers.CharField(source="street.name", default=None, read_only=True)
    community = serializers.CharField(source="community.name", default=None, read_only=True)
    department = serializers.CharField(source="department.name", default=None, read_only=True)
    grid_codes = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "full_name",
            "role",
            "role_display",
            "street",
            "community",
            "department",
            "grid_codes",
        ]

    def get_grid_codes(self, user) -> list[str]:
        return sorted(assignment.grid.code for assignment in user.grid_assignments.all())


class GridFeatureSerializer(GeoFeatureModelSerializer):
    community = serializers.CharField(source="community.name", read_only=True)

    class Meta:
        model = Grid
        geo_field = "geom"
        fields = ["id", "code", "name", "community", "area_m2"]
        # 6 decimals of a degree ≈ 0.1 m: plenty for a phone, a third of the bytes of 15.
        precision = COORDINATE_DECIMALS


# --- input fields --------------------------------------------------------------------------------


class FiniteFloatField(serializers.FloatField):
    """A float that is a real number: NaN and infinity are refused like any other bad value."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not math.isfinite(value):
            self.fail("invalid")
        return value


class StrictBooleanField(serializers.BooleanField):
    """A boolean that must be sent: in a multipart form an absent box is not taken as false."""

    default_empty_html = empty


@extend_schema_field(OpenApiTypes.BINARY)
class PhotoField(serializers.Field):
    """A photo: an uploaded file (multipart) or a base64 string, optionally a data: URL (JSON).

    Only the transport is checked here; events.photos decides whether it is a usable photo.
    """

    default_error_messages = {
        "invalid": "照片应为上传的文件（multipart）或 base64 编码的字符串（JSON）",
        "base64": "照片的 base64 编码无效",
        "too_large": "照片不能超过 {mb} MB",
    }

    def to_internal_value(self, data):
        if isinstance(data, UploadedFile):
            return data
        if not isinstance(data, str):
            self.fail("invalid")
        if data.startswith("data:"):
            data = data.partition(",")[2]
        limit = max_photo_bytes()
        if len(data) > limit * 4 // 3 + 8:
            self.fail("too_large", mb=round(limit / 1024 / 1024))
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            self.fail("base64")
        return io.BytesIO(raw)

    def to_representation(self, value):
        return None


def photo_list(**kwargs: Any) -> serializers.ListField:
    return serializers.ListField(
        child=PhotoField(), max_length=MAX_PHOTOS_PER_REPORT, required=False, default=list, **kwargs
    )


def idempotency_key_of(request) -> str | None:
    """The client's Idempotency-Key header, checked; None when absent."""
    key = request.headers.get(IDEMPOTENCY_KEY_HEADER)
    if key is None or key == "":
        return None
    if not _IDEMPOTENCY_KEY.match(key):
        raise exceptions.ValidationError(
            {IDEMPOTENCY_KEY_HEADER: ["幂等键应为 8–48 位字母、数字、“-”或“_”（建议使用 UUID）"]}
        )
    return key


def _point_in_china(attrs: dict[str, Any]) -> Point:
    lon, lat = attrs["longitude"], attrs["latitude"]
    west, south, east, north = CHINA_BOUNDS
    if not (west <= lon <= east and south <= lat <= north):
        raise serializers.ValidationError({"location": [f"坐标 ({lon}, {lat}) 不在中国境内，请检查经纬度是否填反"]})
    return Point(lon, lat, srid=4326)


class LocationInput(serializers.Serializer):
    longitude = FiniteFloatField(label="经度（WGS84）", min_value=-180, max_value=180)
    latitude = FiniteFloatField(label="纬度（WGS84）", min_value=-90, max_value=90)

    def validate(self, attrs):
        attrs["point"] = _point_in_china(attrs)
        return attrs


# --- case reports ----------------------------------------------------------------------------------


class CaseReportInput(LocationInput):
    category = serializers.CharField(label="类别代码（如 E0102）", max_length=5)
    description = serializers.CharField(label="问题描述", max_length=4000)
    address = serializers.CharField(label="地址", max_length=200, required=False, allow_blank=True, default="")
    urgency = serializers.ChoiceField(choices=Urgency.choices, required=False, default=Urgency.NORMAL)
    source = serializers.ChoiceField(
        label="来源",
        choices=[(s.value, s.label) for s in (Case.Source.GRID_WORKER, Case.Source.HOTLINE, Case.Source.VIDEO)],
        required=False,
        default=Case.Source.GRID_WORKER,
    )
    facility = serializers.CharField(label="部件编码", max_length=16, required=False, allow_blank=True, default="")
    reporter_name = serializers.CharField(label="反映人", max_length=50, required=False, allow_blank=True, default="")
    reporter_phone = serializers.CharField(
        label="反映人电话", max_length=20, required=False, allow_blank=True, default=""
    )
    accuracy_m = FiniteFloatField(label="定位精度（米）", min_value=0, max_value=100_000, required=False)
    device_time = serializers.DateTimeField(label="设备时间", required=False)
    photos = photo_list(label="现场照片")

    def validate_category(self, code: str) -> Category:
        category = selectors.category_by_code(code=code.strip().upper())
        if category is None:
            raise serializers.ValidationError(f"类别代码 {code} 不存在或已停用")
        return category

    def validate_facility(self, code: str) -> Facility | None:
        if not code:
            return None
        facility = Facility.objects.filter(code=code).first()
        if facility is None:
            raise serializers.ValidationError(f"部件编码 {code} 不存在")
        return facility

    def validate_reporter_phone(self, phone: str) -> str:
        if not phone:
            return ""
        try:
            return pii.normalize_phone(phone)
        except pii.InvalidPhone as error:
            raise serializers.ValidationError(str(error)) from None


class SelfHandleInput(CaseReportInput):
    source = None
    urgency = None
    reporter_name = None
    reporter_phone = None
    photos = serializers.ListField(
        label="处置前照片", child=PhotoField(), min_length=1, max_length=MAX_PHOTOS_PER_REPORT
    )
    after_photos = photo_list(label="处置后照片")


# --- case output -----------------------------------------------------------------------------------


def _rounded(value: float) -> float:
    return round(value, COORDINATE_DECIMALS)


def point_geojson(point: Point | None) -> dict[str, Any] | None:
    if point is None:
        return None
    return {"type": "Point", "coordinates": [_rounded(point.x), _rounded(point.y)]}


def _receipt(case: Case):
    try:
        return case.api_receipt
    except ObjectDoesNotExist:
        return None


class ReceiptOut(serializers.Serializer):
    channel = serializers.CharField()
    idempotency_key = serializers.CharField()
    device_time = serializers.DateTimeField(allow_null=True)
    accuracy_m = serializers.FloatField(allow_null=True)
    received_at = serializers.DateTimeField()


class CaseOut(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField(help_text="案件编号")
    category = serializers.CharField(source="category.code")
    category_name = serializers.SerializerMethodField()
    source = serializers.CharField()
    source_display = serializers.CharField(source="get_source_display")
    state = serializers.ChoiceField(choices=State.choices)
    state_display = serializers.CharField(source="get_state_display")
    step = serializers.CharField()
    step_display = serializers.CharField(source="get_step_display")
    timer_light = serializers.CharField(default="", help_text="green / yellow / red；无计时为空")
    deadline = serializers.DateTimeField(allow_null=True, help_text="当前环节时限")
    due_at = serializers.DateTimeField(allow_null=True, help_text="应结案时间")
    reported_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)
    urgency = serializers.CharField()
    description = serializers.CharField()
    address = serializers.CharField()
    grid = serializers.CharField(source="grid.code")
    department = serializers.CharField(source="current_department.name", default=None)
    location = serializers.SerializerMethodField()
    receipt = serializers.SerializerMethodField()

    def get_category_name(self, case: Case) -> str:
        return f"{case.category.major_name}/{case.category.minor_name}"

    @extend_schema_field({"type": "object", "properties": {"type": {"type": "string"}, "coordinates": {}}})
    def get_location(self, case: Case) -> dict[str, Any] | None:
        return point_geojson(case.location)

    @extend_schema_field(ReceiptOut(allow_null=True))
    def get_receipt(self, case: Case) -> dict[str, Any] | None:
        receipt = _receipt(case)
        return ReceiptOut(receipt).data if receipt is not None else None


class PhotoOut(serializers.Serializer):
    id = serializers.IntegerField()
    stage = serializers.CharField()
    stage_display = serializers.CharField(source="get_stage_display")
    url = serializers.SerializerMethodField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    size_bytes = serializers.IntegerField()
    taken_at = serializers.DateTimeField(allow_null=True)
    uploaded_at = serializers.DateTimeField()

    def get_url(self, photo) -> str:
        return reverse("patrol_api:case-photo", kwargs={"case_id": photo.case_id, "photo_id": photo.pk})


class TimelineEntryOut(serializers.Serializer):
    id = serializers.IntegerField()
    action = serializers.CharField()
    action_display = serializers.CharField(source="get_action_display")
    from_state = serializers.CharField()
    from_state_display = serializers.CharField(source="get_from_state_display")
    to_state = serializers.CharField()
    to_state_display = serializers.CharField(source="get_to_state_display")
    actor = serializers.SerializerMethodField()
    actor_role = serializers.CharField()
    actor_role_display = serializers.SerializerMethodField()
    department = serializers.CharField(source="department.name", default=None)
    comment = serializers.CharField()
    payload = serializers.DictField()
    step_deadline = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    photo_ids = serializers.SerializerMethodField()

    def get_actor(self, entry) -> str | None:
        if entry.actor is None:
            return None
        return entry.actor.get_full_name() or entry.actor.username

    def get_actor_role_display(self, entry) -> str:
        return ROLE_LABELS.get(entry.actor_role, entry.actor_role)

    def get_photo_ids(self, entry) -> list[int]:
        return [photo.pk for photo in entry.attachments.all()]


class ActionOut(serializers.Serializer):
    action = serializers.CharField()
    label = serializers.CharField()
    url = serializers.CharField()


class CaseWithTimelineOut(CaseOut):
    photos = PhotoOut(many=True)
    timeline = TimelineEntryOut(many=True, source="history.all")


class CaseDetailOut(CaseWithTimelineOut):
    reporter_name = serializers.CharField()
    reporter_phone_masked = serializers.CharField()
    suggested_department = serializers.CharField(source="suggested_department.name", default=None)
    actions = serializers.SerializerMethodField()

    @extend_schema_field(ActionOut(many=True))
    def get_actions(self, case: Case) -> list[dict[str, str]]:
        user = self.context["request"].user
        return [
            {
                "action": action.value,
                "label": action.label,
                "url": reverse(f"patrol_api:case-action-{action.value}", kwargs={"case_id": case.pk}),
            }
            for action in case_selectors.case_actions_for(case=case, user=user)
            if action.value in ACTION_ENDPOINTS
        ]


class TaskOut(CaseOut):
    task = serializers.SerializerMethodField(help_text="verify（核实）或 check（核查）")
    task_display = serializers.SerializerMethodField()
    photos = PhotoOut(many=True)

    def get_task(self, case: Case) -> str:
        return case.step

    def get_task_display(self, case: Case) -> str:
        return Step(case.step).label if case.step in Step.values else ""


class CaseCreatedOut(CaseOut):
    photos = PhotoOut(many=True)


class CaseListFilterInput(serializers.Serializer):
    state = serializers.MultipleChoiceField(choices=State.choices, required=False)
    category = serializers.CharField(max_length=5, required=False)
    grid = serializers.CharField(max_length=15, required=False)
    light = serializers.ChoiceField(choices=["green", "yellow", "red"], required=False)
    reported_after = serializers.DateTimeField(required=False)
    reported_before = serializers.DateTimeField(required=False)


# --- workflow actions ----------------------------------------------------------------------------------


class CommentInput(serializers.Serializer):
    comment = serializers.CharField(label="意见/理由", max_length=2000, required=False, allow_blank=True, default="")


class PhotoCommentInput(CommentInput):
    photos = photo_list(label="照片")


class VerifyInput(PhotoCommentInput):
    confirmed = StrictBooleanField(label="是否属实")


class FileInput(CommentInput):
    auto_dispatch = serializers.BooleanField(label="能唯一确定部门时自动派遣", required=False, default=True)


class MergeInput(CommentInput):
    into = serializers.IntegerField(label="并入的案件 id", min_value=1, max_value=2**62)


class DispatchInput(CommentInput):
    department = serializers.CharField(label="部门编码", max_length=32)

    def validate_department(self, code: str) -> Department:
        department = Department.objects.filter(code=code).first()
        if department is None:
            raise serializers.ValidationError(f"部门编码 {code} 不存在")
        return department


class ExtensionRequestInput(CommentInput):
    amount = serializers.DecimalField(label="延时时长", max_digits=5, decimal_places=1, min_value=Decimal("0.1"))
    unit = serializers.ChoiceField(label="单位", choices=LimitUnit.choices)


class ExtensionApproveInput(CommentInput):
    amount = serializers.DecimalField(
        label="批准时长（不填则按申请）", max_digits=5, decimal_places=1, min_value=Decimal("0.1"), required=False
    )
    unit = serializers.ChoiceField(label="单位", choices=LimitUnit.choices, required=False)


class UrgeInput(CommentInput):
    level = serializers.ChoiceField(label="督办级别", choices=UrgeLevel.choices)


# Every workflow action a client may take through /api/v1/cases/{id}/actions/{action}. The
# other actions happen elsewhere: 上报/登记 and 自处理 create cases (POST /cases,
# /cases/self-handled), 并入 is the other half of 合并, 超时预警 is raised by the system.
ACTION_ENDPOINTS: tuple[str, ...] = (
    Action.REQUEST_VERIFICATION,
    Action.VERIFY,
    Action.FILE,
    Action.VOID,
    Action.MERGE,
    Action.DISPATCH,
    Action.RETURN,
    Action.REQUEST_EXTENSION,
    Action.APPROVE_EXTENSION,
    Action.REFUSE_EXTENSION,
    Action.HANDLE,
    Action.CHECK_PASS,
    Action.CHECK_FAIL,
    Action.CLOSE,
    Action.DEFER,
    Action.RESUME,
    Action.URGE,
)


# --- categories ------------------------------------------------------------------------------------


class CategoryOut(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField(source="minor_name")
    major_name = serializers.CharField()
    filing_condition = serializers.CharField(help_text="立案条件")
    closing_condition = serializers.CharField(help_text="结案条件")
    handling_limits = serializers.SerializerMethodField(help_text="处置时限（一般/紧急 × A/B/C 区域）")
    default_department = serializers.CharField(source="default_department.name", default=None)

    def get_handling_limits(self, category: Category) -> dict[str, Any]:
        return {
            level: {
                "unit": getattr(category, f"handling_unit_{level}"),
                **{area: str(getattr(category, f"handling_{level}_{area}")) for area in ("a", "b", "c")},
            }
            for level in ("normal", "urgent")
        }


class MajorCategoryOut(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    categories = CategoryOut(many=True)


class CategoryKindOut(serializers.Serializer):
    kind = serializers.CharField(help_text="C 部件 / E 事件")
    name = serializers.CharField()
    majors = MajorCategoryOut(many=True)


class DepartmentOut(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.CharField()


class RoutingSuggestionOut(serializers.Serializer):
    department = DepartmentOut()
    reason = serializers.CharField()
    matches = serializers.BooleanField()


# --- patrols -----------------------------------------------------------------------------------------


class PatrolSessionOut(serializers.Serializer):
    id = serializers.IntegerField()
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)
    length_m = serializers.FloatField(allow_null=True)
    track = serializers.SerializerMethodField()

    @extend_schema_field({"type": "object", "nullable": True})
    def get_track(self, session) -> dict[str, Any] | None:
        if session.track is None:
            return None
        return {"type": "LineString", "coordinates": [[_rounded(x), _rounded(y)] for x, y in session.track.coords]}


class PatrolPointsInput(serializers.Serializer):
    points = serializers.ListField(
        child=serializers.DictField(),
        max_length=MAX_POINTS_PER_BATCH,
        help_text='[{"lon": 106.4, "lat": 29.4, "recorded_at": "2026-11-22T09:30:00+08:00", "accuracy_m": 8}]',
    )

    def validate_points(self, points: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [_point_for_service(raw) for raw in points]


_OLDEST_POINT_YEAR = 2000


def _point_for_service(raw: dict[str, Any]) -> dict[str, Any]:
    """Blank out values patrol.services cannot parse safely, so it rejects that point with its own message.

    patrol.services._parse_point lets ValueError (a well-formed but impossible date) and
    OverflowError (an integer too large for a float) escape; the point, not the request, is bad.
    """
    point = dict(raw)
    for key in ("lon", "lat", "accuracy_m"):
        value = point.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                float(value)
            except OverflowError:
                point[key] = "overflow"
    recorded = point.get("recorded_at")
    if isinstance(recorded, str):
        try:
            parsed = parse_datetime(recorded)
        except ValueError:
            parsed = None
        if parsed is None or parsed.year < _OLDEST_POINT_YEAR:
            point["recorded_at"] = None
    return point


class RejectedPointOut(serializers.Serializer):
    index = serializers.IntegerField()
    message = serializers.CharField()


class PatrolPointsOut(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = RejectedPointOut(many=True)


class CheckInInput(LocationInput):
    kind = serializers.ChoiceField(label="类型", choices=CheckIn.Kind.choices)


class CheckInOut(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    kind_display = serializers.CharField(source="get_kind_display")
    at = serializers.DateTimeField()
    grid = serializers.CharField(source="grid.code", default=None)
    location = serializers.SerializerMethodField()

    @extend_schema_field({"type": "object"})
    def get_location(self, check_in) -> dict[str, Any] | None:
        return point_geojson(check_in.point)
