"""The grid worker's phone app (PWA) at /m/: the shell, its service worker and its manifest."""

from django.urls import path

from patrol_api import app_views

app_name = "phone"

urlpatterns = [
    path("", app_views.shell, name="shell"),
    path("sw.js", app_views.service_worker, name="service-worker"),
    path("manifest.webmanifest", app_views.manifest, name="manifest"),
]
