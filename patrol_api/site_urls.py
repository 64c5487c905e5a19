"""Mounted at the site root by one line of gridmgmt/urls.py: the phone app and Open311."""

from django.urls import include, path

urlpatterns = [
    path("m/", include("patrol_api.app_urls")),
    path("open311/v2/", include("patrol_api.open311_urls")),
]
