from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from patrol_api import apis

app_name = "patrol_api"

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="patrol_api:schema"), name="docs"),
    path("v1/auth/token", apis.TokenLoginApi.as_view(), name="token"),
    path("v1/auth/logout", apis.TokenLogoutApi.as_view(), name="logout"),
    path("v1/auth/logout-all", apis.TokenLogoutAllApi.as_view(), name="logout-all"),
    path("v1/me", apis.ProfileApi.as_view(), name="me"),
    path("v1/me/grids", apis.MyGridsApi.as_view(), name="my-grids"),
]
