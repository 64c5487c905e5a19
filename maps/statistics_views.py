"""Planners' statistics page (/maps/statistics/), its JSON API, exports and the map report.

Aggregates only. Population figures (residents, households, groups of residents) under
five are suppressed in everything this module sends out: JSON, CSV, GeoJSON, GeoPackage.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from events.models import Category
from geodata.models import Community, FacilityType, Grid, Street
from maps import exports, report, statistics
from maps.access import Scope, can_view_statistics, user_scope
from maps.forms import DistanceForm, StatisticsForm, form_errors

Row = dict[str, Any]


@dataclasses.dataclass
class Dataset:
    """A table ready to send: columns (field, Chinese header), rows, the region level of `region_id`."""

    name: str
    title: str
    level: str
    columns: list[tuple[str, str]]
    rows: list[Row]
    suppressed: set[str] = dataclasses.field(default_factory=set)


def statistics_required(view: Callable) -> Callable:
    @wraps(view)
    @login_required
    def wrapped(request: HttpRequest, *args, **kwargs):
        if not can_view_statistics(request.user):
            return JsonResponse({"error": "无权查看统计分析"}, status=403)
        return view(request, *args, **kwargs)

    return wrapped


def _scope(request: HttpRequest, data: dict) -> Scope:
    street, community = data.get("street"), data.get("community")
    return user_scope(request.user).narrowed(
        street_id=street.pk if street else None, community_id=community.pk if community else None
    )


def _grid_names(ids) -> dict[int, tuple[str, str]]:
    return {
        pk: (code, name) for pk, code, name in Grid.objects.filter(pk__in=list(ids)).values_list("id", "code", "name")
    }


class InvalidQuery(ValueError):
    pass


def _valid(form) -> dict:
    if not form.is_valid():
        raise InvalidQuery(form_errors(form))
    return form.cleaned_data


def counts_dataset(request: HttpRequest) -> Dataset:
    form = StatisticsForm(request.GET)
    data = _valid(form)
    level = form.value("level", "grid")
    by_month = request.GET.get("by_month", "1") != "0"
    by_category = request.GET.get("by_category", "1") != "0"
    rows = statistics.case_counts(
        user=request.user,
        scope=_scope(request, data),
        first_day=data["first_day"],
        last_day=data["last_day"],
        level=level,
        by_category=by_category,
        by_month=by_month,
        category_id=data["category"].pk if data.get("category") else None,
    )
    columns = [("code", f"{statistics.LEVEL_LABELS[level]}编码"), ("name", "名称")]
    if by_category:
        columns += [("category_code", "类别编码"), ("category", "类别")]
    if by_month:
        columns.append(("month", "月份"))
    columns.append(("count", "案件数"))
    return Dataset("counts", "案件统计", level, columns, rows)


def hotspots_dataset(request: HttpRequest) -> Dataset:
    form = StatisticsForm(request.GET)
    data = _valid(form)
    normalise = form.value("normalise", "area")
    spots = statistics.hot_spots(
        user=request.user,
        scope=_scope(request, data),
        first_day=data["first_day"],
        last_day=data["last_day"],
        normalise=normalise,
        method=form.value("method", "gi_star"),
        category_id=data["category"].pk if data.get("category") else None,
    )
    rows = [{**spot.as_row(), "region_id": spot.grid_id} for spot in spots]
    unit = "件/千人" if normalise == "population" else "件/km²"
    columns = [
        ("code", "网格编码"),
        ("name", "网格名称"),
        ("incidents", "案件数"),
        ("value", f"案件密度({unit})"),
        ("statistic", "统计量"),
        ("p_value", "p值"),
        ("kind_label", "结果"),
    ]
    return Dataset("hotspots", "热点分析", "grid", columns, rows)


def profile_dataset(request: HttpRequest) -> Dataset:
    data = _valid(StatisticsForm(request.GET))
    rows = statistics.grid_profile(scope=_scope(request, data), day=data["last_day"])
    rows = statistics.suppress(rows, fields=statistics.PROFILE_POPULATION_FIELDS)
    for row in rows:
        row["region_id"] = row["grid_id"]
    return Dataset(
        "profile",
        "网格人口概况",
        "grid",
        statistics.PROFILE_COLUMNS,
        rows,
        suppressed=set(statistics.PROFILE_POPULATION_FIELDS),
    )


def distance_dataset(request: HttpRequest) -> Dataset:
    data = _valid(DistanceForm(request.GET))
    period = _valid(StatisticsForm(request.GET))
    scope = _scope(request, data)
    day = period["last_day"]
    facility_type = data["facility_type"]
    if data["question"] == "elderly_alone_far":
        metres = data.get("metres") or 500
        min_age = data.get("min_age") or 80
        counted = statistics.elderly_alone_far_from(
            scope=scope, facility_type_id=facility_type.pk, metres=metres, min_age=min_age, day=day
        )
        names = _grid_names(counted)
        rows = [
            {"region_id": gid, "code": names[gid][0], "name": names[gid][1], "persons": n}
            for gid, n in sorted(counted.items(), key=lambda item: names[item[0]][0])
        ]
        rows = statistics.suppress(rows, fields={"persons": []})
        title = f"{min_age}岁及以上独居老人（距{facility_type.minor_name}超过{metres:g}米）"
        columns = [("code", "网格编码"), ("name", "网格名称"), ("persons", "人数")]
        return Dataset("distance", title, "grid", columns, rows, suppressed={"persons"})
    metres = data.get("metres") or 300
    near = statistics.households_near(scope=scope, facility_type_id=facility_type.pk, metres=metres, day=day)
    names = _grid_names(near)
    rows = [
        {
            "region_id": gid,
            "code": names[gid][0],
            "name": names[gid][1],
            "households": value["households"],
            "within": value["within"],
            "share": round(value["within"] * 100 / value["households"], 1) if value["households"] else None,
        }
        for gid, value in sorted(near.items(), key=lambda item: names[item[0]][0])
    ]
    rows = statistics.suppress(rows, fields={"households": [], "within": [], "share": ["within", "households"]})
    title = f"{facility_type.minor_name}{metres:g}米范围内的户数"
    columns = [
        ("code", "网格编码"),
        ("name", "网格名称"),
        ("households", "总户数"),
        ("within", "范围内户数"),
        ("share", "占比(%)"),
    ]
    return Dataset("distance", title, "grid", columns, rows, suppressed={"households", "within", "share"})


def coverage_dataset(request: HttpRequest) -> Dataset:
    form = StatisticsForm(request.GET)
    data = _valid(form)
    period = form.value("period", "day")
    if (data["last_day"] - data["first_day"]).days > (92 if period == "day" else 366):
        raise InvalidQuery("巡查覆盖统计：按日最多 92 天，按周最多一年")
    rows = statistics.patrol_coverage_table(
        user=request.user,
        scope=_scope(request, data),
        first_day=data["first_day"],
        last_day=data["last_day"],
        period=period,
    )
    names = _grid_names({row["grid_id"] for row in rows})
    for row in rows:
        row["region_id"] = row["grid_id"]
        row["name"] = names[row["grid_id"]][1]
        row["covered_percent"] = round(row["covered_share"] * 100, 1)
    columns = [
        ("period", "日期" if period == "day" else "周（起始日）"),
        ("code", "网格编码"),
        ("name", "网格名称"),
        ("covered_percent", "巡查覆盖率(%)"),
        ("cases_found", "网格员发现案件数"),
    ]
    return Dataset("coverage", "巡查覆盖", "grid", columns, rows)


DATASETS: dict[str, Callable[[HttpRequest], Dataset]] = {
    "counts": counts_dataset,
    "hotspots": hotspots_dataset,
    "profile": profile_dataset,
    "distance": distance_dataset,
    "coverage": coverage_dataset,
}


def _answer(request: HttpRequest, dataset: str) -> JsonResponse:
    try:
        table = DATASETS[dataset](request)
    except InvalidQuery as error:
        return JsonResponse({"error": str(error)}, status=400)
    rows = [
        {field: row.get(field) for field, _ in table.columns} | {"region_id": row.get("region_id")}
        for row in table.rows
    ]
    if dataset == "hotspots":
        for row, full in zip(rows, table.rows, strict=True):
            row["kind"] = full["kind"]
    return JsonResponse(
        {
            "title": table.title,
            "level": table.level,
            "columns": table.columns,
            "rows": rows,
            "suppressed": sorted(table.suppressed),
        },
        json_dumps_params={"ensure_ascii": False},
    )


@statistics_required
@require_GET
def statistics_page(request: HttpRequest) -> HttpResponse:
    scope = user_scope(request.user)
    streets = scope.grids(Grid.objects.all()).values("community__street_id")
    communities = scope.grids(Grid.objects.all()).values("community_id")
    form = StatisticsForm({})
    form.is_valid()
    return render(
        request,
        "maps/statistics.html",
        {
            "categories": Category.objects.filter(is_active=True),
            "streets": Street.objects.filter(pk__in=streets),
            "communities": Community.objects.filter(pk__in=communities).select_related("street"),
            "facility_types": FacilityType.objects.all(),
            "first_day": form.cleaned_data["first_day"],
            "last_day": form.cleaned_data["last_day"],
            "config": {
                "urls": {
                    "tiles": reverse("maps:grid_tiles", args=[0, 0, 0]).replace("/0/0/0.pbf", "/{z}/{x}/{y}.pbf"),
                    "extent": reverse("maps:extent"),
                    "counts": reverse("maps:stats_counts"),
                    "series": reverse("maps:stats_series"),
                    "hotspots": reverse("maps:stats_hotspots"),
                    "distance": reverse("maps:stats_distance"),
                    "coverage": reverse("maps:stats_coverage"),
                    "profile": reverse("maps:stats_profile"),
                    "export": reverse("maps:stats_export", args=["DATASET", "FMT"]),
                    "report": reverse("maps:map_report"),
                },
                "base_map": settings.BASE_MAP,
            },
        },
    )


@statistics_required
@require_GET
def counts(request: HttpRequest) -> JsonResponse:
    return _answer(request, "counts")


@statistics_required
@require_GET
def hotspots(request: HttpRequest) -> JsonResponse:
    return _answer(request, "hotspots")


@statistics_required
@require_GET
def distance(request: HttpRequest) -> JsonResponse:
    return _answer(request, "distance")


@statistics_required
@require_GET
def profile(request: HttpRequest) -> JsonResponse:
    return _answer(request, "profile")


@statistics_required
@require_GET
def coverage(request: HttpRequest) -> JsonResponse:
    return _answer(request, "coverage")


@statistics_required
@require_GET
def series(request: HttpRequest) -> JsonResponse:
    form = StatisticsForm(request.GET)
    if not form.is_valid():
        return JsonResponse({"error": form_errors(form)}, status=400)
    data = form.cleaned_data
    rows = statistics.case_series(
        user=request.user,
        scope=_scope(request, data),
        first_day=data["first_day"],
        last_day=data["last_day"],
        interval=form.value("interval", "month"),
        category_id=data["category"].pk if data.get("category") else None,
    )
    return JsonResponse({"series": rows})


_FORMATS = {
    "csv": ("text/csv; charset=utf-8", "csv"),
    "geojson": ("application/geo+json", "geojson"),
    "gpkg": ("application/geopackage+sqlite3", "gpkg"),
}


@statistics_required
@require_GET
def export(request: HttpRequest, dataset: str, fmt: str) -> HttpResponse:
    if dataset not in DATASETS or fmt not in _FORMATS:
        return JsonResponse({"error": "不支持的导出内容或格式"}, status=404)
    try:
        table = DATASETS[dataset](request)
    except InvalidQuery as error:
        return JsonResponse({"error": str(error)}, status=400)
    if fmt == "csv":
        body = exports.export_csv(columns=table.columns, rows=table.rows, suppressed=table.suppressed)
    elif fmt == "geojson":
        body = exports.export_geojson(level=table.level, columns=table.columns, rows=table.rows, note=table.title)
    else:
        body = exports.export_geopackage(level=table.level, columns=table.columns, rows=table.rows, layer=dataset)
    content_type, extension = _FORMATS[fmt]
    response = HttpResponse(body, content_type=content_type)
    stamp = timezone.localdate().strftime("%Y%m%d")
    response["Content-Disposition"] = f'attachment; filename="{dataset}-{stamp}.{extension}"'
    return response


@statistics_required
@require_GET
def map_report(request: HttpRequest) -> HttpResponse:
    form = StatisticsForm(request.GET)
    if not form.is_valid():
        return JsonResponse({"error": form_errors(form)}, status=400)
    data = form.cleaned_data
    street = data.get("street")
    if street is None:
        return JsonResponse({"error": "请选择街道"}, status=400)
    if user_scope(request.user).narrowed(street_id=street.pk).grids(Grid.objects.all()).count() == 0:
        return JsonResponse({"error": "该街道不在您的管辖范围内"}, status=403)
    html = report.map_report_html(
        user=request.user,
        street=street,
        first_day=data["first_day"],
        last_day=data["last_day"],
        normalise=form.value("normalise", "area"),
    )
    response = HttpResponse(html, content_type="text/html; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="map-report-{street.code}-{data["first_day"]:%Y%m%d}-{data["last_day"]:%Y%m%d}.html"'
    )
    return response
