"""Map report (地图报告) per street and period: a folium HTML page, and a PNG for printing.

The page carries the incident choropleth per grid, the hot spots (Getis–Ord Gi*) as
outlines, and the indicator table of the street and its communities (events.indicators).
It is self-contained: Leaflet's script and style are inlined from our own copy (the one
django-leaflet serves), folium's CDN links are removed, so the file opens on an intranet
or from a USB stick. The PNG is rendered from that HTML by the headless Chromium of the
machine (Playwright), from the `map_report` command.
"""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.staticfiles import finders
from django.db import connection

from accounts.models import User
from events import indicators
from geodata.models import Street
from maps.access import Scope
from maps.selectors import classify
from maps.statistics import HOT_SPOT_LABELS, hot_spots

if TYPE_CHECKING:
    import folium

CHROMIUM = "/usr/bin/chromium"
# ColorBrewer YlOrRd, 5 classes: the same ramp as the dashboard.
PALETTE = ["#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026"]
NO_DATA = "#d9d9d9"
HOT_SPOT_OUTLINE = {"hot": "#7f0000", "cold": "#08519c", "high_low": "#7f0000", "low_high": "#08519c"}
INDICATOR_COLUMNS = [
    ("name", "名称"),
    ("filed", "立案数"),
    ("due", "应结案数"),
    ("closed", "结案数"),
    ("close_rate", "结案率(%)"),
    ("on_time_close_rate", "按期结案率(%)"),
    ("overdue_open", "超期未结数"),
    ("on_time_handle_rate", "按时处置率(%)"),
    ("rework_rate", "返工率(%)"),
]


def _static_text(path: str) -> str:
    found = finders.find(path)
    if not found:
        raise FileNotFoundError(path)
    return Path(str(found)).read_text(encoding="utf-8")


def _grid_features(grid_ids: list[int]) -> list[dict[str, Any]]:
    """GeoJSON features (id, code, name) of the grids, built by PostGIS with 6 decimals."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT COALESCE(json_agg(json_build_object(
                'type', 'Feature', 'id', g.id,
                'geometry', ST_AsGeoJSON(g.geom, 6)::json,
                'properties', json_build_object('id', g.id, 'code', g.code, 'name', g.name)
            ) ORDER BY g.code), '[]'::json)
            FROM geodata_grid g WHERE g.id = ANY(%s)
            """,
            [grid_ids],
        )
        (features,) = cursor.fetchone()
    return features if isinstance(features, list) else []


def _colour(value: float | None, bins: list[float]) -> str:
    if value is None or not bins:
        return NO_DATA
    for index, upper in enumerate(bins):
        if value <= upper:
            return PALETTE[min(index + len(PALETTE) - len(bins), len(PALETTE) - 1)]
    return PALETTE[-1]


def _base_tiles(m: folium.Map) -> None:
    import folium

    if settings.BASE_MAP == "osm":
        folium.TileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png", attr="© OpenStreetMap").add_to(m)
    elif settings.BASE_MAP == "tianditu" and settings.TIANDITU_KEY:
        url = (
            "https://t0.tianditu.gov.cn/vec_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=vec&STYLE=default"
            "&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk=" + settings.TIANDITU_KEY
        )
        folium.TileLayer(url, attr="© 天地图").add_to(m)
    # "amap" tiles are in GCJ-02 and would be offset from our WGS84 grids; "none": no base map.


def _table(rows: list[dict[str, Any]]) -> str:
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label in INDICATOR_COLUMNS)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{'' if row.get(f) is None else html.escape(str(row.get(f)))}</td>" for f, _ in INDICATOR_COLUMNS
        )
        + "</tr>"
        for row in rows
    )
    return f"<table class='indicators'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def map_report_html(
    *, user: User, street: Street, first_day: dt.date, last_day: dt.date, normalise: str = "area"
) -> str:
    """The report of `street` over [first_day, last_day] as one self-contained HTML page."""
    import folium  # imported here, not by every web worker that loads the URLconf (docs/performance.md §8)

    scope = Scope(street_id=street.pk)
    spots = hot_spots(user=user, scope=scope, first_day=first_day, last_day=last_day, normalise=normalise)
    values = {spot.grid_id: spot.value for spot in spots}
    bins = classify(values, scheme="natural_breaks")["bins"]
    by_id = {spot.grid_id: spot for spot in spots}
    features = _grid_features(list(by_id))
    unit = "件/千人" if normalise == "population" else "件/km²"
    for feature in features:
        spot = by_id[feature["properties"]["id"]]
        feature["properties"].update(
            {
                "incidents": spot.incidents,
                "value": spot.value,
                "kind": spot.kind,
                "kind_label": HOT_SPOT_LABELS[spot.kind],
                "fill": _colour(spot.value, bins),
            }
        )

    m = folium.Map(tiles=None, control_scale=True, zoom_control=False, prefer_canvas=False)
    m.default_js = []
    m.default_css = []
    root = m.get_root()
    leaflet = (
        f"<style>{_static_text('leaflet/leaflet.css')}</style><script>{_static_text('leaflet/leaflet.js')}</script>"
    )
    root.header.add_child(folium.Element(leaflet), name="leaflet_inline")  # type: ignore[attr-defined]
    _base_tiles(m)
    if features:
        layer = folium.GeoJson(
            {"type": "FeatureCollection", "features": features},
            name="grids",
            style_function=lambda f: {
                "fillColor": f["properties"]["fill"],
                "fillOpacity": 0.8,
                "color": HOT_SPOT_OUTLINE.get(f["properties"]["kind"], "#555555"),
                "weight": 4 if f["properties"]["kind"] in HOT_SPOT_OUTLINE else 0.6,
            },
            tooltip=folium.GeoJsonTooltip(
                fields=["code", "name", "incidents", "value", "kind_label"],
                aliases=["编码", "网格", "案件数", f"密度({unit})", "热点分析"],
            ),
        )
        layer.add_to(m)
        m.fit_bounds(layer.get_bounds())  # type: ignore[arg-type]

    legend_rows = []
    lower = min((v for v in values.values() if v is not None), default=0)
    for upper in bins:
        colour = _colour(upper, bins)
        label = f"{upper:g}" if lower == upper else f"{lower:g} – {upper:g}"
        legend_rows.append(f"<div><i style='background:{colour}'></i>{label}</div>")
        lower = upper
    legend_rows.append(f"<div><i style='background:{NO_DATA}'></i>无数据</div>")
    legend_rows.append("<div><i style='border:3px solid #7f0000;background:none'></i>热点（显著）</div>")
    legend_rows.append("<div><i style='border:3px solid #08519c;background:none'></i>冷点（显著）</div>")
    title = f"{street.name} 案件分布与热点分析（{first_day:%Y-%m-%d} 至 {last_day:%Y-%m-%d}）"
    start, end = indicators.period_bounds(first_day=first_day, last_day=last_day)
    # The viewer's indicators only (L3); for a district-wide viewer those of this street,
    # which are the same rows as the district's, counted alone.
    evaluated = indicators.indicator_scope_for(user=user)
    if evaluated == indicators.DISTRICT:
        evaluated = indicators.IndicatorScope(street_id=street.pk)
    period: dict[str, Any] = {"start": start, "end": end, "scope": evaluated}
    # Every community of the street has a row, with blanks where the period recorded nothing.
    street_row = {r["key"]: r for r in indicators.region_indicators(level="street", **period)}.get(
        street.pk, {"name": street.name}
    )
    by_community = {r["key"]: r for r in indicators.region_indicators(level="community", **period)}
    community_rows = [by_community.get(c.pk, {"name": c.name}) for c in street.communities.order_by("code")]
    street_rows = [street_row]
    counted = sum(spot.incidents for spot in spots)
    hot = sum(1 for spot in spots if spot.kind == "hot")
    page = f"""
    <style>
      body {{ font-family: "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; margin: 0; }}
      .report-title {{ font-size: 22px; font-weight: bold; padding: 12px 16px 4px; }}
      .report-summary {{ padding: 0 16px 8px; color: #333; }}
      .folium-map {{ height: 640px !important; position: relative !important; }}
      .legend {{ position: absolute; right: 16px; top: 110px; z-index: 1000; background: #fff; padding: 8px 12px;
                 border-radius: 4px; box-shadow: 0 1px 4px rgba(0,0,0,.3); font-size: 13px; }}
      .legend i {{ display: inline-block; width: 18px; height: 12px; margin-right: 6px; vertical-align: middle; }}
      table.indicators {{ border-collapse: collapse; margin: 12px 16px 24px; font-size: 13px; }}
      table.indicators th, table.indicators td {{ border: 1px solid #999; padding: 4px 8px; text-align: right; }}
      table.indicators th:first-child, table.indicators td:first-child {{ text-align: left; }}
      @media print {{ .legend {{ box-shadow: none; border: 1px solid #999; }} }}
    </style>
    <div class="report-title">{html.escape(title)}</div>
    <div class="report-summary">案件 {counted} 件；按{html.escape(unit)}计的显著热点网格 {hot} 个
      （Getis–Ord Gi*，置换检验，错误发现率 5%）。</div>
    <div class="legend"><b>案件密度（{html.escape(unit)}）</b>{"".join(legend_rows)}</div>
    """
    root.html.add_child(folium.Element(page), name="report_head", index=0)  # type: ignore[attr-defined]
    tables = "<h3 style='margin:8px 16px 0'>综合评价指标</h3>" + _table(street_rows + community_rows)
    root.title = title  # type: ignore[attr-defined]
    # folium writes the map's own <div> while rendering, after every element added here:
    # the table goes in after rendering, so that it prints below the map.
    page_html = root.render()
    return page_html.replace("</body>", tables + "\n</body>", 1)


def map_report_png(*, html_text: str, path: Path, width: int = 1400) -> Path:
    """Render the report page to a PNG with the machine's headless Chromium (no network needed)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.set_content(html_text, wait_until="load")
            page.wait_for_selector(".leaflet-container")
            page.screenshot(path=str(path), full_page=True)
        finally:
            browser.close()
    return path
