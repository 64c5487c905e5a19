"""The phone app's shell, service worker and manifest; its size budget; the configurable base maps."""

import gzip
import json
import re

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.test import Client

from patrol_api import app_views

SHELL_BUDGET_BYTES = 300 * 1024


def app_config(client: Client) -> dict:
    html = client.get("/m/").content.decode()
    match = re.search(r'<script id="app-config" type="application/json">(.*?)</script>', html, re.S)
    return json.loads(match.group(1))


def shell_assets(client: Client) -> list[str]:
    script = client.get("/m/sw.js").content.decode()
    return json.loads(re.search(r"var SHELL_ASSETS = (\[.*?\]);", script).group(1))


def asset_bytes(client: Client, url: str) -> bytes:
    if url.startswith(settings.STATIC_URL):
        with open(finders.find(url.removeprefix(settings.STATIC_URL)), "rb") as handle:
            return handle.read()
    response = client.get(url)
    assert response.status_code == 200, url
    return response.content


def test_the_shell_is_public_static_and_cached_by_its_service_worker(db):
    client = Client()
    shell = client.get("/m/")
    assert shell.status_code == 200
    html = shell.content.decode()
    assert '<html lang="zh-Hans">' in html and "网格员登录" in html
    assert "http://" not in html and "https://" not in html  # nothing from a CDN
    worker = client.get("/m/sw.js")
    assert worker["Content-Type"] == "application/javascript; charset=utf-8"
    assert worker["Service-Worker-Allowed"] == "/m/"
    assert "no-cache" in worker["Cache-Control"]
    assets = shell_assets(client)
    assert assets[:2] == ["/m/", "/m/manifest.webmanifest"]
    assert "/static/leaflet/leaflet.js" in assets and "/static/patrol_api/queue.js" in assets
    manifest = client.get("/m/manifest.webmanifest")
    assert manifest["Content-Type"] == "application/manifest+json"
    assert manifest.json()["start_url"] == "/m/"
    assert manifest.json()["display"] == "standalone"


def test_the_app_shell_stays_under_300_kb(db, capsys):
    client = Client()
    sizes = {url: asset_bytes(client, url) for url in shell_assets(client)}
    sizes["/m/sw.js"] = client.get("/m/sw.js").content
    raw = sum(len(body) for body in sizes.values())
    compressed = sum(len(gzip.compress(body)) for body in sizes.values())
    with capsys.disabled():
        print(f"\napp shell: {raw / 1024:.0f} KB raw, {compressed / 1024:.0f} KB gzipped, {len(sizes)} files")
    assert raw < SHELL_BUDGET_BYTES  # even without compression


def test_tests_use_the_no_network_base_map(db):
    config = app_config(Client())
    assert config["baseMap"]["kind"] == "none"
    assert config["baseMap"]["layers"] == []
    assert config["api"] == "/api/v1"


@pytest.mark.parametrize(
    ("kind", "crs", "host"),
    [
        ("osm", "wgs84", "tile.openstreetmap.org"),
        ("tianditu", "wgs84", "tianditu.gov.cn"),
        ("amap", "gcj02", "autonavi.com"),
    ],
)
def test_base_maps_are_configurable(db, settings, kind, crs, host):
    settings.BASE_MAP = kind
    settings.TIANDITU_KEY = "tdt-key-123"
    config = app_views.base_map_config()
    assert (config["kind"], config["crs"]) == (kind, crs)
    assert all(host in layer["url"] for layer in config["layers"])
    if kind == "tianditu":
        assert [layer["options"]["layer"] for layer in config["layers"]] == ["vec", "cva"]
        assert all(layer["options"]["key"] == "tdt-key-123" for layer in config["layers"])
        assert all("tk={key}" in layer["url"] for layer in config["layers"])
