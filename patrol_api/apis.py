"""Thin API views: validate with a serializer, call one service or selector, render."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from knox.views import LoginView as KnoxLoginView
from knox.views import LogoutAllView as KnoxLogoutAllView
from knox.views import LogoutView as KnoxLogoutView
from rest_framework import serializers
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from geodata.selectors import grids_valid_on
from patrol_api.serializers import GridFeatureSerializer, LoginSerializer, ProfileSerializer


class TokenLoginApi(KnoxLoginView):
    """Exchange a username and password for an expiring, revocable API token."""

    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_scope = "login"

    @extend_schema(
        request=LoginSerializer,
        responses={
            200: inline_serializer(
                "TokenResponse",
                {"token": serializers.CharField(), "expiry": serializers.DateTimeField(), "user": ProfileSerializer()},
            ),
            400: inline_serializer("LoginError", {"non_field_errors": serializers.ListField()}),
            429: None,
        },
        auth=[],
    )
    def post(self, request: Request, format=None):
        serializer = LoginSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        request.user = serializer.validated_data["user"]
        return super().post(request, format=format)

    def get_post_response_data(self, request, token, instance):
        return {"token": token, "expiry": instance.expiry, "user": ProfileSerializer(request.user).data}


@extend_schema(request=None, responses={204: None, 401: None})
class TokenLogoutApi(KnoxLogoutView):
    """Revoke the token used for this request."""


@extend_schema(request=None, responses={204: None, 401: None})
class TokenLogoutAllApi(KnoxLogoutAllView):
    """Revoke every token of the signed-in user (a lost phone)."""


class ProfileApi(APIView):
    permission_classes = (IsAuthenticated,)

    @extend_schema(responses={200: ProfileSerializer})
    def get(self, request: Request) -> Response:
        return Response(ProfileSerializer(request.user).data)


class MyGridsApi(APIView):
    """The grids the signed-in grid worker patrols today, as GeoJSON."""

    permission_classes = (IsAuthenticated,)

    @extend_schema(responses={200: GridFeatureSerializer(many=True)})
    def get(self, request: Request) -> Response:
        grids = (
            grids_valid_on(timezone.localdate())
            .filter(assignments__worker=request.user)
            .select_related("community")
            .order_by("code")
        )
        return Response(GridFeatureSerializer(grids, many=True).data)
