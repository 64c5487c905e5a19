"""Cases through the API: report (exactly once), self-handle, list, detail, photos, my reports, my tasks."""

from __future__ import annotations

from typing import Any

from django.http import FileResponse, Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, permissions, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from events import selectors as case_selectors
from events import workflow
from events.models import Case
from geodata.models import Department
from patrol_api import selectors, serializers, services

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    serializers.IDEMPOTENCY_KEY_HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="客户端生成的幂等键（8–48 位字母、数字、- 或 _，建议 UUID）。同一用户用同一键重复提交，"
    "返回第一次创建的案件（200），不会再建案件。",
)
ERRORS = {
    400: OpenApiResponse(description="输入有误：按字段给出中文说明 {字段: [说明]}"),
    401: OpenApiResponse(description="未登录或令牌失效"),
    403: OpenApiResponse(description="角色或管辖范围不允许"),
    404: OpenApiResponse(description="案件不存在或不可见"),
    409: OpenApiResponse(description="案件当前状态不允许该操作"),
    429: OpenApiResponse(description="请求过于频繁"),
}


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    return {code: ERRORS[code] for code in codes}


class WriteThrottled:
    """Writes count against the "write" rate; reads of the same URL do not."""

    throttle_scope = "write"

    def get_throttles(self):
        if self.request.method in permissions.SAFE_METHODS:
            return []
        return super().get_throttles()


class CasePagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 200


def _case_out(case_id: int) -> Case:
    """The stored case (a replayed key), with what its representation needs."""
    return (
        case_selectors.with_timer_light(
            Case.objects.select_related("category", "grid", "current_department", "api_receipt")
        )
        .prefetch_related("photos")
        .get(pk=case_id)
    )


def _created_body(case: Case, *, photos_sent: bool) -> dict[str, Any]:
    """The 201 body from the case as written, in memory: no query unless photos were stored."""
    case.timer_light = case_selectors.timer_light_of(case=case)
    body = dict(serializers.CaseOut(case).data)
    photos = list(case.photos.all()) if photos_sent else []
    body["photos"] = serializers.PhotoOut(photos, many=True).data
    return body


def _replay_response(case_id: int) -> Response:
    response = Response(serializers.CaseCreatedOut(_case_out(case_id)).data, status=status.HTTP_200_OK)
    response["Idempotent-Replayed"] = "true"
    return response


def _report(request: Request, *, self_handled: bool) -> Response:
    """上报 and 自处理 alike: answer a replayed key first (even if its body no longer
    validates), else validate, report once, and answer from the case in memory."""
    key = serializers.idempotency_key_of(request)
    if key is not None:
        replayed = selectors.case_id_for_key(user=request.user, idempotency_key=key)
        if replayed is not None:
            return _replay_response(replayed)
    form = (serializers.SelfHandleInput if self_handled else serializers.CaseReportInput)(data=request.data)
    form.is_valid(raise_exception=True)
    data = form.validated_data
    if self_handled:
        fields = {"after_photos": data["after_photos"]}
    else:
        fields = {name: data[name] for name in ("source", "urgency", "reporter_name", "reporter_phone")}
    case, created = services.case_report_from_client(
        actor=request.user,
        idempotency_key=key,
        self_handled=self_handled,
        category=data["category"],
        location=data["point"],
        description=data["description"],
        address=data["address"],
        facility=data["facility"],
        photos=data["photos"],
        device_time=data.get("device_time"),
        accuracy_m=data.get("accuracy_m"),
        **fields,
    )
    if not created:  # a copy of the same upload won the race
        return _replay_response(case.pk)
    photos_sent = bool(data["photos"]) or bool(fields.get("after_photos"))
    return Response(_created_body(case, photos_sent=photos_sent), status=status.HTTP_201_CREATED)


class CaseListCreateApi(WriteThrottled, generics.ListAPIView):
    """GET: cases the signed-in user may see. POST: report a case (上报；热线/视频登记)."""

    serializer_class = serializers.CaseOut
    pagination_class = CasePagination

    def get_queryset(self):
        filters = serializers.CaseListFilterInput(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        wanted = filters.validated_data
        cases = selectors.cases_for_list(user=self.request.user)
        if wanted.get("state"):
            cases = cases.filter(state__in=wanted["state"])
        if wanted.get("category"):
            code = wanted["category"].upper()
            cases = cases.filter(
                category__kind=code[:1], category__major_code=code[1:3], category__minor_code=code[3:5]
            )
        if wanted.get("grid"):
            cases = cases.filter(grid__code=wanted["grid"])
        if wanted.get("light"):
            cases = cases.filter(timer_light=wanted["light"])
        if wanted.get("reported_after"):
            cases = cases.filter(reported_at__gte=wanted["reported_after"])
        if wanted.get("reported_before"):
            cases = cases.filter(reported_at__lt=wanted["reported_before"])
        return cases

    @extend_schema(parameters=[serializers.CaseListFilterInput], responses={200: serializers.CaseOut(many=True)})
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request={"application/json": serializers.CaseReportInput, "multipart/form-data": serializers.CaseReportInput},
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={
            201: serializers.CaseCreatedOut,
            200: OpenApiResponse(serializers.CaseCreatedOut, description="幂等键已用过：返回原案件，未新建"),
            **errors(400, 401, 403, 429),
        },
    )
    def post(self, request: Request) -> Response:
        return _report(request, self_handled=False)


class CaseSelfHandleApi(WriteThrottled, APIView):
    """自处理: the grid worker fixed the problem on the spot; recorded as finished, with before/after photos."""

    @extend_schema(
        request={"application/json": serializers.SelfHandleInput, "multipart/form-data": serializers.SelfHandleInput},
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: serializers.CaseCreatedOut, 200: serializers.CaseCreatedOut, **errors(400, 401, 403, 429)},
    )
    def post(self, request: Request) -> Response:
        return _report(request, self_handled=True)


class CaseDetailApi(APIView):
    @extend_schema(responses={200: serializers.CaseDetailOut, **errors(401, 404)})
    def get(self, request: Request, case_id: int) -> Response:
        case = selectors.case_visible(user=request.user, case_id=case_id)
        return Response(serializers.CaseDetailOut(case, context={"request": request}).data)


class CasePhotoApi(APIView):
    """The photo file, for users who may see the case (photos are never public files)."""

    @extend_schema(responses={(200, "image/*"): OpenApiTypes.BINARY, **errors(401, 404)})
    def get(self, request: Request, case_id: int, photo_id: int) -> FileResponse:
        photo = selectors.case_photo_visible(user=request.user, case_id=case_id, photo_id=photo_id)
        content_type = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}.get(
            photo.image_format, "application/octet-stream"
        )
        try:
            handle = photo.image.open("rb")
        except FileNotFoundError:
            raise Http404 from None
        response = FileResponse(handle, content_type=content_type)
        response["Cache-Control"] = "private, max-age=86400"
        return response


class CaseRoutingApi(APIView):
    """Ranked department suggestions for dispatching the case (派遣建议)."""

    @extend_schema(responses={200: serializers.RoutingSuggestionOut(many=True), **errors(401, 404)})
    def get(self, request: Request, case_id: int) -> Response:
        case = selectors.case_visible(user=request.user, case_id=case_id)
        routing = case_selectors.case_department_routing(case=case)
        return Response(serializers.RoutingSuggestionOut(routing.suggestions, many=True).data)


class CaseDuplicatesApi(APIView):
    """Open cases of the same category nearby, reported shortly before (candidates for 合并)."""

    @extend_schema(responses={200: serializers.CaseOut(many=True), **errors(401, 404)})
    def get(self, request: Request, case_id: int) -> Response:
        case = selectors.case_visible(user=request.user, case_id=case_id)
        candidates = case_selectors.case_duplicate_candidates(case=case).filter(
            pk__in=case_selectors.cases_visible_to(user=request.user).values("pk")
        )
        candidates = case_selectors.with_timer_light(
            candidates.select_related("category", "grid", "current_department")
        )
        return Response(serializers.CaseOut(candidates[:50], many=True).data)


class MyReportsApi(generics.ListAPIView):
    """What I reported, newest first, with states, timer lights, photos and timelines."""

    serializer_class = serializers.CaseWithTimelineOut
    pagination_class = CasePagination

    def get_queryset(self):
        return selectors.reports_of(user=self.request.user)


class MyTasksApi(APIView):
    """Cases waiting for my 核实 or 核查, most urgent deadline first, with their timer light."""

    @extend_schema(responses={200: serializers.TaskOut(many=True), 401: ERRORS[401]})
    def get(self, request: Request) -> Response:
        return Response(serializers.TaskOut(selectors.tasks_of(user=request.user), many=True).data)


class CategoryTreeApi(APIView):
    """The category catalogue (部件/事件 → 大类 → 小类) with 立案条件, 结案条件 and time limits."""

    @extend_schema(responses={200: serializers.CategoryKindOut(many=True), 401: ERRORS[401]})
    def get(self, request: Request) -> Response:
        return Response(serializers.CategoryKindOut(selectors.category_tree(), many=True).data)


class DepartmentListApi(APIView):
    @extend_schema(responses={200: serializers.DepartmentOut(many=True), 401: ERRORS[401]})
    def get(self, request: Request) -> Response:
        return Response(serializers.DepartmentOut(Department.objects.order_by("code"), many=True).data)


class WorkflowApi(APIView):
    """The transition table of the workflow: which action leads where and who may take it."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT, 401: ERRORS[401]})
    def get(self, request: Request) -> Response:
        return Response(
            {
                "states": [{"value": s.value, "label": s.label} for s in workflow.State],
                "actions": [
                    {"value": a.value, "label": a.label, "endpoint": a.value in serializers.ACTION_ENDPOINTS}
                    for a in workflow.Action
                ],
                "transitions": [
                    {
                        "source": t.source.value,
                        "action": t.action.value,
                        "target": t.target.value,
                        "roles": sorted(t.roles),
                        "needs_comment": t.needs_comment,
                        "needs_photo": t.needs_photo,
                    }
                    for t in workflow.TRANSITIONS
                ],
            }
        )
