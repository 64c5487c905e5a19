"""The folium map report: self-contained HTML (no CDN), choropleth, hot spots, indicator table; PNG for printing."""

import datetime as dt
import re
import shutil

import pytest
from django.core.management import call_command
from django.urls import reverse

from geodata.models import Street
from maps.report import map_report_html
from tests.browser.conftest import ARTIFACTS
from tests.events.factories import local
from tests.maps.helpers import cases

pytestmark = pytest.mark.django_db


@pytest.fixture
def reported(world):
    cases(world.grids[0], 3, reported_at=local(2026, 11, 10, 9, 0))
    cases(world.grid_sw, 1, reported_at=local(2026, 11, 11, 9, 0))
    return world


def external_references(html: str) -> list[str]:
    """Every src= or href= of a script, stylesheet or image that points off the page."""
    return [
        url
        for url in re.findall(r"""<(?:script|link|img)[^>]+(?:src|href)=["']([^"']+)""", html)
        if not url.startswith("data:")
    ]


def test_the_report_is_self_contained_with_choropleth_and_indicator_table(reported):
    html = map_report_html(
        user=reported.planner, street=reported.street, first_day=dt.date(2026, 11, 1), last_day=dt.date(2026, 11, 30)
    )
    assert external_references(html) == []
    assert "cdn.jsdelivr" not in html and "code.jquery" not in html and "bootstrapcdn" not in html
    assert "L.map(" in html or "L.map (" in html  # Leaflet runs from the inlined copy
    assert "测试街道 案件分布与热点分析（2026-11-01 至 2026-11-30）" in html
    assert "案件 4 件" in html
    assert "500104001001001" in html  # the grids are on the map
    assert "<th>结案率(%)</th>" in html and "<td>测试社区</td>" in html  # the indicator table
    assert "居民" not in html


def test_the_report_download_is_for_a_street_in_scope(reported, client):
    client.force_login(reported.leader)  # street scope
    url = reverse("maps:map_report")
    response = client.get(url, {"street": reported.street.pk, "first_day": "2026-11-01", "last_day": "2026-11-30"})
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="map-report-500104001-20261101-20261130.html"'
    assert client.get(url, {"street": reported.other_street.pk}).status_code == 403
    assert client.get(url).status_code == 400


@pytest.mark.browser
def test_the_command_writes_html_and_a_png_rendered_by_chromium(reported, tmp_path):
    call_command(
        "map_report",
        street="500104001",
        first_day=dt.date(2026, 11, 1),
        last_day=dt.date(2026, 11, 30),
        out=str(tmp_path),
        png=True,
    )
    html = tmp_path / "map-report-500104001-20261101-20261130.html"
    png = tmp_path / "map-report-500104001-20261101-20261130.png"
    assert html.exists() and external_references(html.read_text(encoding="utf-8")) == []
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width = int.from_bytes(data[16:20], "big")
    height = int.from_bytes(data[20:24], "big")
    assert width == 1400 and height > 700
    assert Street.objects.count() == 2
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(png, ARTIFACTS / "map-report.png")  # for a person to look at
