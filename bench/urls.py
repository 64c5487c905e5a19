"""The one URL of bench.wsgi's Django ping: the middleware stack and a view, no database."""

from django.http import HttpRequest, HttpResponse
from django.urls import path


def ping(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"pong", content_type="text/plain")


urlpatterns = [path("bench/django-ping", ping)]
