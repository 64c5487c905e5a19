"""A lost database connection answers a clean 503 with Retry-After, never a 500 or a stack trace.

When PostgreSQL goes away in the middle of a request (a restart, a fail-over, a network
cut, pg_terminate_backend), psycopg raises OperationalError or InterfaceError. The
request's transaction is then gone with its connection, so nothing of it was written;
the right answer tells the client to try again later. The phone app does exactly that,
with the same Idempotency-Key, so a report is neither lost nor duplicated
(docs/security.md, "Resilience").

Two ways in, because Django turns an exception into a response at every middleware layer:
`process_exception` sees what the view raised; a receiver of `got_request_exception`
marks the request when the error came from elsewhere (another middleware saving the
session, for instance), and the 500 built for it is replaced on the way out. This
middleware is first in settings.MIDDLEWARE so that it sees every response.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from xml.sax.saxutils import escape

from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

from events.photos import photo_files_discard_uncommitted

logger = logging.getLogger(__name__)

MESSAGE = "服务暂时不可用，请稍后重试"
RETRY_AFTER_SECONDS = 10
_LOST = (OperationalError, InterfaceError)
_MARK = "_gridmgmt_database_lost"
# Paths whose clients read JSON (the REST API, Open311, the map and statistics endpoints).
_JSON_PREFIXES = ("/api/", "/open311/", "/maps/api/")


def database_lost(exception: BaseException | None) -> bool:
    return isinstance(exception, _LOST)


def unavailable_response(request: HttpRequest) -> HttpResponse:
    """The 503 for `request`: JSON ({"detail": ...}, as the API's other errors), Open311 XML, or a page."""
    path = request.path
    accept = request.headers.get("Accept", "")
    if path.startswith("/open311/") and path.endswith(".xml"):
        body = (
            "<?xml version='1.0' encoding='utf-8'?>\n"
            f"<errors><error><code>503</code><description>{escape(MESSAGE)}</description></error></errors>"
        )
        response: HttpResponse = HttpResponse(body, status=503, content_type="application/xml; charset=utf-8")
    elif path.startswith(_JSON_PREFIXES) or ("application/json" in accept and "text/html" not in accept):
        response = JsonResponse({"detail": MESSAGE}, status=503, json_dumps_params={"ensure_ascii": False})
    else:
        # A page without templates, static files or the database: none of them may be reachable.
        body = (
            '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
            f"<title>{MESSAGE}</title></head><body><h1>{MESSAGE}</h1>"
            f"<p>系统正在恢复，请 {RETRY_AFTER_SECONDS} 秒后刷新页面。已提交但未成功的操作不会被记录，请重新提交。</p>"
            "</body></html>"
        )
        response = HttpResponse(body, status=503, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


def _mark_request(sender, request: HttpRequest | None = None, **kwargs) -> None:
    if request is not None and database_lost(sys.exc_info()[1]):
        setattr(request, _MARK, True)


got_request_exception.connect(_mark_request, dispatch_uid="gridmgmt.middleware.database_lost")


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code == 500 and getattr(request, _MARK, False):
            return self._unavailable(request)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not database_lost(exception):
            return None
        return self._unavailable(request, exception)

    def _unavailable(self, request: HttpRequest, exception: BaseException | None = None) -> HttpResponse:
        logger.warning("database unavailable during %s %s: %s", request.method, request.path, exception or "(marked)")
        return unavailable_response(request)


class UncommittedPhotoFilesMiddleware:
    """After every request, delete the photo files its failed transactions wrote.

    A view's transaction may be the caller's own (the API's report, with its receipt)
    and may fail at COMMIT, after every service call has returned: only here is it certainly
    over. `events.photos.photo_files_discard_uncommitted` deletes a file only when no row names
    it (docs/security.md, "Photos and uploads").
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            return self.get_response(request)
        finally:
            photo_files_discard_uncommitted()
