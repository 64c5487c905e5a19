"""Every workflow action as an endpoint: POST /api/v1/cases/{id}/actions/{action}.

One small view per action: validate its input, call its one service in events.services,
answer with the case as it is now. Roles, scope, states, compulsory reasons and photos
are checked by the services (events.workflow), and their refusals become 403 / 409 / 400
in patrol_api.errors.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers as drf_serializers
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from events import services as case_services
from events.models import Case
from events.workflow import Action
from patrol_api import selectors, serializers
from patrol_api.case_apis import ERRORS, WriteThrottled


class CaseActionApi(WriteThrottled, APIView, ABC):
    action: ClassVar[Action]
    input_serializer: ClassVar[type[drf_serializers.Serializer]] = serializers.CommentInput

    def post(self, request: Request, case_id: int) -> Response:
        case = selectors.case_visible(user=request.user, case_id=case_id)
        form = self.input_serializer(data=request.data)
        form.is_valid(raise_exception=True)
        self.perform(case=case, actor=request.user, data=form.validated_data, request=request)
        updated = selectors.case_visible_or_none(user=request.user, case_id=case_id)
        if updated is None:  # the action took the case out of the actor's sight
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(serializers.CaseDetailOut(updated, context={"request": request}).data)

    @abstractmethod
    def perform(self, *, case: Case, actor: User, data: dict[str, Any], request: Request) -> None:
        """Carry out the action through events.services (each endpoint says which)."""


def action_endpoint(action: Action, input_serializer: type[drf_serializers.Serializer], description: str):
    """Declare the endpoint of one action, documented with its own input and its errors."""

    def decorate(cls):
        def post(self, request: Request, case_id: int) -> Response:
            return CaseActionApi.post(self, request, case_id)

        cls.action = action
        cls.input_serializer = input_serializer
        cls.post = extend_schema(
            operation_id=f"case_action_{action.value}",
            summary=f"{action.label}（{action.value}）",
            description=description,
            request={"application/json": input_serializer, "multipart/form-data": input_serializer},
            responses={
                200: serializers.CaseDetailOut,
                204: OpenApiResponse(description="操作已完成，但案件已不在您的可见范围内"),
                **ERRORS,
            },
            tags=["案件流转"],
        )(post)
        return cls

    return decorate


@action_endpoint(Action.REQUEST_VERIFICATION, serializers.CommentInput, "受理员/值班长：派发网格员核实。")
class RequestVerificationApi(CaseActionApi):
    def perform(self, *, case, actor, data, request):
        case_services.case_request_verification(case=case, actor=actor, comment=data["comment"])


@action_endpoint(Action.VERIFY, serializers.VerifyInput, "网格员：现场核实（confirmed 是否属实），可附照片。")
class VerifyApi(CaseActionApi):
    def perform(self, *, case, actor, data, request):
        case_services.case_verify(
            case=case, actor=actor, confirmed=data["confirmed"], comment=data["comment"], photos=data["photos"]
        )


@action_endpoint(Action.FILE, serializers.FileInput, "受理员/值班长：立案；能唯一确定部门时自动派遣。")
class FileApi(CaseActionApi):
    def perform(self, *, case, actor, data, request):
        case_services.case_file(case=case, actor=actor, comment=data["comment"], auto_dispatch=data["auto_dispatch"])


@action_endpoint(Action.VOID, serializers.CommentInput, "受理员/值班长：作废（须填写理由）。")
class VoidApi(CaseActionApi):
    def perform(self, *, case, actor, data, request):
        case_services.case_void(case=case, actor=actor, reason=data["comment"])


@action_endpoint(Action.MERGE, serializers.MergeInput, "受理员/值班长：把本案件合并到另一个案件（into）。")
class MergeApi(CaseActionApi):
    def perform(self, *, case, actor, data, request):
        into = selectors.case_visible_or_none(user=actor, case_id=data["into"])
        if into is None:
            raise drf_serializers.ValidationError({"into": [f"案件 {data['into']} 不存在或不可见"]})
        case_services.case_merge(duplicate=case, into=into, actor=actor, comment=data["comment"])


@action_endpoint(Action.DISPATCH, serializers.DispatchInput, "派遣员/值班长：派遣到部门（部门编码）。")
class DispatchApi(CaseActionApi):
    def perform(self, *, case, actor, data, request):
        case_services.case_dispatch(case=case, actor=actor, department=data["department"], comment=data["comment"])


@action_endpoint(Action.RETURN, serializers.CommentInput, "部门处置人员：回退（非本部门职责，须填写理由）。")
class ReturnApi(CaseActionApi):
    def perform(self, *, case, actor, data, request):
        case_services.case_return(case=case, actor=actor, reason=data["comment"])


@action_endpoint(Action.REQUEST_EXTENSION, serializers.ExtensionRequestInput, "部门处置人员：申请延时（须填写理由）。")
class RequestExtensionApi(CaseActionApi):
    def perform(self, *, case, actor, data, request):
        case_services.case_extension_request(
            case=case, actor=actor, amount=data["amount"], unit=data["unit"], reason=data["comment"]
        )


@action_endpoint(Action.APPROVE_EXTENSION, serializers.ExtensionApproveInput, "派遣员/值班长：批准延时。")
class ApproveExtensionApi(CaseActionApi):
    def perform(self, *, case, actor, data, request):
        case_services.case_extension_approve(
            case=case, actor=actor, comment=data["comment"], amount=data.get("amount"), unit=data.get("unit")
        )


@action_endpoint(Action.REFUSE_EXTENSION, serializers.CommentInput, "派遣员/值班长：驳回延时（须填写理由）。")
class RefuseExtensionApi(CaseActionApi):
    def perform(self, *, case, actor, data, request):
        case_services.case_extension_refuse(case=case, actor=actor, reason=data["comment"])


@action_endpoint(Action.HANDLE, serializers.PhotoCommentInput, "部门处置人员：处置反馈（须附处置后照片）。")
class HandleApi(CaseActionApi):
    def perform(self, *, case, actor, data, request):
        case_services.case_handle(case=case, actor=actor, comment=data["comment"], photos=data["photos"])


@action_endpoint(Action.CHECK_PASS, serializers.PhotoCommentInput, "网格员：核查通过（须附核查照片）。")
class CheckPassApi(CaseActionApi):
    def perform(self, *, case, actor, data, request):
        case_services.case_check(case=case, actor=actor, passed=True, comment=data["comment"], photos=data["photos"])


@action_endpoint(
    Action.CHECK_FAIL, serializers.PhotoCommentInput, "网格员：核查不通过，返工（须填写理由并附核查照片）。"
)
class CheckFailApi(CaseActionApi):
    def perform(self, *, case, actor, data, request):
        case_services.case_check(case=case, actor=actor, passed=False, comment=data["comment"], photos=data["photos"])


@action_endpoint(Action.CLOSE, serializers.CommentInput, "值班长：结案。")
class CloseApi(CaseActionApi):
    def perform(self, *, case, actor, data, request):
        case_services.case_close(case=case, actor=actor, comment=data["comment"])


@action_endpoint(Action.DEFER, serializers.CommentInput, "领导：挂账（须填写理由）。")
class DeferApi(CaseActionApi):
    def perform(self, *, case, actor, data, request):
        case_services.case_defer(case=case, actor=actor, reason=data["comment"])


@action_endpoint(Action.RESUME, serializers.CommentInput, "领导：恢复处置。")
class ResumeApi(CaseActionApi):
    def perform(self, *, case, actor, data, request):
        case_services.case_resume(case=case, actor=actor, comment=data["comment"])


@action_endpoint(Action.URGE, serializers.UrgeInput, "领导/值班长：督办（普通/黄牌/红牌，须填写意见）。")
class UrgeApi(CaseActionApi):
    def perform(self, *, case, actor, data, request):
        case_services.case_urge(case=case, actor=actor, level=data["level"], comment=data["comment"])


ACTION_VIEWS: dict[str, type[CaseActionApi]] = {
    view.action.value: view
    for view in (
        RequestVerificationApi,
        VerifyApi,
        FileApi,
        VoidApi,
        MergeApi,
        DispatchApi,
        ReturnApi,
        RequestExtensionApi,
        ApproveExtensionApi,
        RefuseExtensionApi,
        HandleApi,
        CheckPassApi,
        CheckFailApi,
        CloseApi,
        DeferApi,
        ResumeApi,
        UrgeApi,
    )
}
assert set(ACTION_VIEWS) == set(serializers.ACTION_ENDPOINTS)
