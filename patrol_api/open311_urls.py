"""Open311 GeoReport v2, mounted at /open311/v2/ (see patrol_api.site_urls)."""

from django.urls import re_path

from patrol_api import open311

FORMAT = r"\.(?P<fmt>json|xml)$"

app_name = "open311"

urlpatterns = [
    re_path(r"^discovery" + FORMAT, open311.DiscoveryApi.as_view(), name="discovery"),
    re_path(r"^services" + FORMAT, open311.ServiceListApi.as_view(), name="services"),
    re_path(
        r"^services/(?P<service_code>[A-Za-z0-9_-]{1,16})" + FORMAT,
        open311.ServiceDefinitionApi.as_view(),
        name="service",
    ),
    re_path(r"^requests" + FORMAT, open311.RequestsApi.as_view(), name="requests"),
    re_path(
        r"^requests/(?P<service_request_id>[A-Za-z0-9_-]{1,32})" + FORMAT, open311.RequestApi.as_view(), name="request"
    ),
    re_path(r"^tokens/(?P<token>[A-Za-z0-9_-]{1,64})" + FORMAT, open311.TokenApi.as_view(), name="token"),
]
