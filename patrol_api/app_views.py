"""The phone app's shell, service worker and manifest.

The shell is public and static: everything personal comes from the API with the worker's
token, so the service worker can cache the shell and open it with no network at all. The
service worker's cache name carries a digest of the shell's files, so a new release
replaces the old shell on the phone the next time it is online.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

# Static files of the shell, cached by the service worker (map tiles are not part of it).
SHELL_STATIC = (
    "patrol_api/app.css",
    "patrol_api/queue.js",
    "patrol_api/app.js",
    "patrol_api/icon.svg",
    "leaflet/leaflet.css",
    "leaflet/leaflet.js",
    "leaflet/images/marker-icon.png",
    "leaflet/images/marker-icon-2x.png",
    "leaflet/images/marker-shadow.png",
)

BASE_MAPS = {
    "osm": {
        "name": "OpenStreetMap",
        "crs": "wgs84",
        "layers": [
            {
                "url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                "options": {"maxZoom": 19, "attribution": "© OpenStreetMap"},
            }
        ],
    },
    "tianditu": {
        "name": "天地图",
        "crs": "wgs84",  # CGCS2000, the same as WGS84 within centimetres
        "layers": [
            {
                "url": "https://t{s}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
                "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}"
                "&tk={key}",
                "options": {"subdomains": "01234567", "maxZoom": 18, "attribution": "© 天地图", "layer": layer},
            }
            for layer in ("vec", "cva")
        ],
    },
    "amap": {
        "name": "高德地图",
        "crs": "gcj02",  # tiles are offset: our WGS84 layers are shifted for display only
        "layers": [
            {
                "url": "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}",
                "options": {"subdomains": "1234", "maxZoom": 18, "attribution": "© 高德地图"},
            }
        ],
    },
    "none": {"name": "无底图（内网）", "crs": "wgs84", "layers": []},
}


def base_map_config() -> dict:
    """The configured base map (settings.BASE_MAP) as the app needs it; 天地图 gets its key."""
    base_map = json.loads(json.dumps(BASE_MAPS[settings.BASE_MAP]))
    for layer in base_map["layers"]:
        layer["options"]["key"] = settings.TIANDITU_KEY
    center = settings.LEAFLET_CONFIG.get("DEFAULT_CENTER", (29.42, 106.46))
    return {
        "kind": settings.BASE_MAP,
        **base_map,
        "center": list(center),
        "zoom": settings.LEAFLET_CONFIG.get("DEFAULT_ZOOM", 12),
    }


_TEMPLATES = Path(__file__).parent / "templates" / "patrol_api"


@functools.cache
def _shell_digest() -> str:
    """A digest of everything the shell is made of: changes whenever a release or the base map changes."""
    digest = hashlib.sha256(json.dumps(base_map_config(), sort_keys=True).encode())
    for path in (*(finders.find(name) for name in SHELL_STATIC), _TEMPLATES / "app.html", _TEMPLATES / "sw.js"):
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:16]


def _app_context(request: HttpRequest) -> dict:
    return {
        "config": {
            "api": "/api/v1",
            "baseMap": base_map_config(),
            "version": _shell_digest(),
            "serviceWorker": reverse("phone:service-worker"),
        },
    }


@require_GET
def shell(request: HttpRequest) -> HttpResponse:
    response = render(request, "patrol_api/app.html", _app_context(request))
    response["Cache-Control"] = "no-cache"
    return response


@require_GET
@never_cache
def service_worker(request: HttpRequest) -> HttpResponse:
    assets = [reverse("phone:shell"), reverse("phone:manifest"), *(static(name) for name in SHELL_STATIC)]
    body = render(
        request,
        "patrol_api/sw.js",
        {"version": _shell_digest(), "assets_json": json.dumps(assets), "queue_js": static("patrol_api/queue.js")},
    ).content
    response = HttpResponse(body, content_type="application/javascript; charset=utf-8")
    response["Service-Worker-Allowed"] = reverse("phone:shell")
    return response


@require_GET
def manifest(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {
            "name": "网格员巡查上报",
            "short_name": "网格巡查",
            "lang": "zh-CN",
            "start_url": reverse("phone:shell"),
            "scope": reverse("phone:shell"),
            "display": "standalone",
            "orientation": "portrait",
            "background_color": "#f5f7fa",
            "theme_color": "#0b3d91",
            "icons": [
                {"src": static("patrol_api/icon-192.png"), "sizes": "192x192", "type": "image/png"},
                {"src": static("patrol_api/icon-512.png"), "sizes": "512x512", "type": "image/png"},
                {"src": static("patrol_api/icon.svg"), "sizes": "any", "type": "image/svg+xml"},
            ],
        },
        content_type="application/manifest+json",
        json_dumps_params={"ensure_ascii": False},
    )
