"""Patrols (巡查) and check-ins (签到/签退) of grid workers, over patrol.services."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from patrol import services as patrol_services
from patrol_api import selectors, serializers
from patrol_api.case_apis import errors
from patrol_api.permissions import IsGridWorker


class PatrolApi(APIView):
    permission_classes = (permissions.IsAuthenticated, IsGridWorker)
    throttle_scope = "write"


class PatrolStartApi(PatrolApi):
    """Start a patrol; while one is open, starting again returns it (200) and creates nothing."""

    @extend_schema(
        request=None,
        responses={
            201: serializers.PatrolSessionOut,
            200: OpenApiResponse(serializers.PatrolSessionOut, description="已有进行中的巡查：返回它"),
            **errors(401, 403, 429),
        },
    )
    def post(self, request: Request) -> Response:
        session, created = patrol_services.patrol_start(worker=request.user)
        return Response(
            serializers.PatrolSessionOut(session).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class PatrolStopApi(PatrolApi):
    """End a patrol: its track is built from its points; stopping again changes nothing."""

    @extend_schema(request=None, responses={200: serializers.PatrolSessionOut, **errors(401, 403, 404, 429)})
    def post(self, request: Request, session_id: int) -> Response:
        selectors.patrol_session_of(worker=request.user, session_id=session_id)
        session = patrol_services.patrol_stop(worker=request.user, session_id=session_id)
        return Response(serializers.PatrolSessionOut(session).data)


class PatrolPointsApi(PatrolApi):
    """Upload GPS points of a patrol in batches, exactly once (a resent batch adds nothing).

    Invalid points are skipped and reported by their index; the valid ones are kept.
    """

    @extend_schema(
        request=serializers.PatrolPointsInput,
        responses={200: serializers.PatrolPointsOut, **errors(400, 401, 403, 404, 429)},
    )
    def post(self, request: Request, session_id: int) -> Response:
        selectors.patrol_session_of(worker=request.user, session_id=session_id)
        form = serializers.PatrolPointsInput(data=request.data)
        form.is_valid(raise_exception=True)
        report = patrol_services.patrol_points_record(
            worker=request.user, session_id=session_id, points=form.validated_data["points"]
        )
        return Response(serializers.PatrolPointsOut(report).data)


class CheckInApi(PatrolApi):
    """签到 / 签退 where the worker stands (the grid is recorded when inside the jurisdiction)."""

    @extend_schema(
        request=serializers.CheckInInput, responses={201: serializers.CheckInOut, **errors(400, 401, 403, 429)}
    )
    def post(self, request: Request) -> Response:
        form = serializers.CheckInInput(data=request.data)
        form.is_valid(raise_exception=True)
        check_in = patrol_services.check_in_record(
            worker=request.user, kind=form.validated_data["kind"], point=form.validated_data["point"]
        )
        return Response(serializers.CheckInOut(check_in).data, status=status.HTTP_201_CREATED)
