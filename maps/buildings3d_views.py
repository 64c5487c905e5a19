"""The 3-D view (三维楼栋, /maps/3d/): one page, building and facility tiles, legend classes, a building's panel.

Thin views: validate the query string with a form, call one selector of maps.buildings3d,
return HTML, a vector tile or JSON. docs/3d.md describes the endpoints.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from geodata.models import Facility
from maps import buildings3d
from maps.access import SUPPRESS_BELOW, PopulationHidden, sees_small_counts
from maps.forms import form_errors
from maps.selectors import SCHEMES

MAX_TILE_ZOOM = 22
DAY_CHOICES = (7, 30, 90, 365)


class BuildingViewForm(forms.Form):
    storey = forms.FloatField(
        label="层高(米)",
        required=False,
        min_value=buildings3d.MIN_STOREY_HEIGHT_M,
        max_value=buildings3d.MAX_STOREY_HEIGHT_M,
    )
    days = forms.IntegerField(label="近N天", required=False, min_value=1, max_value=buildings3d.MAX_RECENT_DAYS)

    def view(self) -> buildings3d.BuildingView:
        data = self.cleaned_data
        return buildings3d.BuildingView(
            storey_m=data.get("storey") or buildings3d.STOREY_HEIGHT_M,
            days=data.get("days") or buildings3d.RECENT_DAYS,
        )


class ClassesForm(BuildingViewForm):
    colour_by = forms.ChoiceField(label="着色依据", choices=[(k, v["label"]) for k, v in buildings3d.COLOUR_BY.items()])
    scheme = forms.ChoiceField(label="分级方法", choices=list(SCHEMES.items()), required=False)
    bbox = forms.CharField(label="范围")

    def clean_bbox(self) -> tuple[float, float, float, float]:
        try:
            west, south, east, north = (float(part) for part in self.cleaned_data["bbox"].split(","))
        except ValueError:
            raise forms.ValidationError("范围应为“西,南,东,北”四个经纬度") from None
        if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
            raise forms.ValidationError("范围无效")
        if east - west > buildings3d.MAX_CLASS_BOX_DEGREES or north - south > buildings3d.MAX_CLASS_BOX_DEGREES:
            raise forms.ValidationError("范围过大，请放大地图")
        return west, south, east, north


class PageForm(BuildingViewForm):
    """The view the page opens on (from the dashboard's 三维 link); anything invalid is ignored."""

    lon = forms.FloatField(required=False, min_value=-180, max_value=180)
    lat = forms.FloatField(required=False, min_value=-85, max_value=85)
    zoom = forms.FloatField(required=False, min_value=0, max_value=MAX_TILE_ZOOM)
    pitch = forms.FloatField(required=False, min_value=0, max_value=85)
    bearing = forms.FloatField(required=False, min_value=-360, max_value=360)


def _json(data, status: int = 200) -> JsonResponse:
    return JsonResponse(data, status=status, json_dumps_params={"ensure_ascii": False})


def _tile_url(name: str) -> str:
    return reverse(name, args=[0, 0, 0]).replace("/0/0/0.pbf", "/{z}/{x}/{y}.pbf")


def _tile_response(tile: bytes) -> HttpResponse:
    response = HttpResponse(tile, content_type="application/vnd.mapbox-vector-tile")
    # Counts of cases move; a minute of private caching still spares panning back and forth.
    response["Cache-Control"] = "private, max-age=60"
    return response


def _check_tile(z: int, x: int, y: int) -> None:
    if not (0 <= z <= MAX_TILE_ZOOM and 0 <= x < 2**z and 0 <= y < 2**z):
        raise Http404("瓦片超出范围")


@login_required
@require_GET
def page(request: HttpRequest) -> HttpResponse:
    form = PageForm(request.GET)
    form.is_valid()
    data = {key: value for key, value in form.cleaned_data.items() if value is not None}
    view = buildings3d.BuildingView(
        storey_m=data.get("storey") or buildings3d.STOREY_HEIGHT_M, days=data.get("days") or buildings3d.RECENT_DAYS
    )
    colours = buildings3d.colours_for(request.user)  # colours by residents: with the right only
    start = None
    if {"lon", "lat", "zoom"} <= data.keys():
        start = {
            "lon": data["lon"],
            "lat": data["lat"],
            "zoom": data["zoom"],
            "pitch": data.get("pitch", 60),
            "bearing": data.get("bearing", -20),
        }
    config = {
        "urls": {
            "buildings": _tile_url("maps:building_tiles"),
            "facilities": _tile_url("maps:facility_tiles"),
            "grids": _tile_url("maps:grid_tiles"),
            "classes": reverse("maps:building_classes"),
            "building": reverse("maps:building_panel", args=[0]).replace("/0/", "/{id}/"),
            "extent": reverse("maps:extent"),
        },
        "colour_by": colours,
        "suppressed_below": None if sees_small_counts(request.user) else SUPPRESS_BELOW,
        "storey_m": view.storey_m,
        "days": view.days,
        "min_building_zoom": buildings3d.MIN_BUILDING_ZOOM,
        "min_facility_zoom": buildings3d.MIN_FACILITY_ZOOM,
        "max_class_box_degrees": buildings3d.MAX_CLASS_BOX_DEGREES,
        "facility_status": dict(Facility.Status.choices),
        "start": start,
        "base_map": settings.BASE_MAP,
        "tianditu_key": settings.TIANDITU_KEY if settings.BASE_MAP == "tianditu" else "",
    }
    context = {
        "config": config,
        "colour_by": colours,
        "schemes": SCHEMES,
        "day_choices": sorted({*DAY_CHOICES, view.days}),
        "days": view.days,
    }
    return render(request, "maps/buildings3d.html", context)


@login_required
@require_GET
def building_tiles(request: HttpRequest, z: int, x: int, y: int) -> HttpResponse:
    _check_tile(z, x, y)
    form = BuildingViewForm(request.GET)
    if not form.is_valid():
        return _json({"error": form_errors(form)}, status=400)
    return _tile_response(buildings3d.building_tile(user=request.user, z=z, x=x, y=y, view=form.view()))


@login_required
@require_GET
def facility_tiles(request: HttpRequest, z: int, x: int, y: int) -> HttpResponse:
    _check_tile(z, x, y)
    return _tile_response(buildings3d.facility_tile(user=request.user, z=z, x=x, y=y))


@login_required
@require_GET
def building_classes(request: HttpRequest) -> JsonResponse:
    form = ClassesForm(request.GET)
    if not form.is_valid():
        return _json({"error": form_errors(form)}, status=400)
    try:
        data = buildings3d.building_classes(
            user=request.user,
            bbox=form.cleaned_data["bbox"],
            colour_by=form.cleaned_data["colour_by"],
            scheme=form.cleaned_data.get("scheme") or "quantiles",
            view=form.view(),
        )
    except PopulationHidden as refused:
        return _json({"error": str(refused)}, status=403)
    return _json(data)


@login_required
@require_GET
def building_panel(request: HttpRequest, building_id: int) -> JsonResponse:
    form = BuildingViewForm(request.GET)
    if not form.is_valid():
        return _json({"error": form_errors(form)}, status=400)
    panel = buildings3d.building_panel(user=request.user, building_id=building_id, view=form.view())
    if panel is None:
        raise Http404("楼栋不存在或不在您的管辖范围内")
    return _json(panel)
