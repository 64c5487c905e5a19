"""The production WSGI app with two no-database endpoints in front of it, for `make bench` only.

    /bench/ping         a trivial response that never reaches Django: the server's ceiling
    /bench/django-ping  a view behind Django's full middleware stack that touches no database
    /bench/warm         imports the product's URLconf in this worker and answers its pid, so that
                        no measured request pays for the first import (≈ 3 s of CPU per worker)
    anything else       the product (gridmgmt.wsgi), unchanged

Run it like the product: gunicorn bench.wsgi:application. No URL is added to the product:
the Django ping is resolved with a per-request urlconf (bench.urls).
"""

import os

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.urls import get_resolver

from gridmgmt.wsgi import application as product

_PONG = b"pong"


class _BenchHandler(WSGIHandler):
    def get_response(self, request):
        request.urlconf = "bench.urls"
        return super().get_response(request)


_django_ping = _BenchHandler()


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/bench/ping":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(_PONG)))])
        return [_PONG]
    if path == "/bench/django-ping":
        return _django_ping(environ, start_response)
    if path == "/bench/warm":
        get_resolver(settings.ROOT_URLCONF).url_patterns  # noqa: B018 (imports every view module)
        pid = str(os.getpid()).encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(pid)))])
        return [pid]
    return product(environ, start_response)
