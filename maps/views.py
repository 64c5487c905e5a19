"""The command-center map dashboard (/maps/): one page and the small JSON/tile endpoints it polls.

Thin views: validate the query string with a form, call one selector, return JSON, a
vector tile or a photo. Every endpoint is scoped: cases through cases_visible_to, places
through the user's scope (maps.access).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from events.models import Category
from events.workflow import State
from geodata.models import Community, Street
from maps import selectors
from maps.access import PopulationHidden, can_monitor_workers, can_view_population, can_view_statistics, user_scope
from maps.forms import CaseFilterForm, ChangesForm, LayerForm, form_errors

# Tiles outside this zoom range are refused: below it a tile would hold a whole province.
MIN_TILE_ZOOM, MAX_TILE_ZOOM = 8, 22


def _bad_request(form) -> JsonResponse:
    return JsonResponse({"error": form_errors(form)}, status=400)


def _json(data) -> JsonResponse:
    return JsonResponse(data, json_dumps_params={"ensure_ascii": False})


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    scope = user_scope(request.user)
    streets = Street.objects.all()
    communities = Community.objects.select_related("street")
    if scope.street_id is not None:
        streets = streets.filter(pk=scope.street_id)
        communities = communities.filter(street_id=scope.street_id)
    if scope.community_id is not None:
        communities = communities.filter(pk=scope.community_id)
        streets = streets.filter(communities__pk=scope.community_id)
    # Without the right to population figures, the layers drawn from them are not offered.
    layers = {
        key: value
        for key, value in selectors.LAYERS.items()
        if key not in selectors.POPULATION_LAYERS or can_view_population(request.user)
    }
    config = {
        "urls": {
            "tiles": reverse("maps:grid_tiles", args=[0, 0, 0]).replace("/0/0/0.pbf", "/{z}/{x}/{y}.pbf"),
            "layer": reverse("maps:layer_values"),
            "cases": reverse("maps:case_markers"),
            "changes": reverse("maps:case_changes"),
            "overdue": reverse("maps:overdue_cases"),
            "extent": reverse("maps:extent"),
            "grid": reverse("maps:grid_panel", args=[0]).replace("/0/", "/{id}/"),
            "case": reverse("maps:case_detail", args=[0]).replace("/0/", "/{id}/"),
            "photo": reverse("maps:case_photo", args=[0]).replace("/0/", "/{id}/"),
            "workers": reverse("maps:workers") if can_monitor_workers(request.user) else None,
        },
        "layers": layers,
        "poll_seconds": 5,
        "base_map": settings.BASE_MAP,
        "tianditu_key": settings.TIANDITU_KEY if settings.BASE_MAP == "tianditu" else "",
    }
    today = timezone.localdate()
    form = CaseFilterForm({})
    form.is_valid()
    context = {
        "config": config,
        "layers": layers,
        "schemes": selectors.SCHEMES,
        "states": [*selectors.STATE_FILTERS.items(), *[(s, label) for s, label in State.choices if s != State.NEW]],
        "categories": Category.objects.filter(is_active=True),
        "streets": streets,
        "communities": communities,
        "first_day": form.cleaned_data["first_day"],
        "last_day": today,
        "can_monitor": can_monitor_workers(request.user),
        "can_statistics": can_view_statistics(request.user),
    }
    return render(request, "maps/dashboard.html", context)


@login_required
@require_GET
def grid_tiles(request: HttpRequest, z: int, x: int, y: int) -> HttpResponse:
    if not (MIN_TILE_ZOOM <= z <= MAX_TILE_ZOOM and 0 <= x < 2**z and 0 <= y < 2**z):
        raise Http404("瓦片超出范围")
    tile = selectors.grid_tile(scope=user_scope(request.user), z=z, x=x, y=y, day=timezone.localdate())
    response = HttpResponse(tile, content_type="application/vnd.mapbox-vector-tile")
    # Grids change only when redrawn; a short private cache spares panning back and forth.
    response["Cache-Control"] = "private, max-age=300"
    return response


@login_required
@require_GET
def extent(request: HttpRequest) -> JsonResponse:
    form = CaseFilterForm(request.GET)
    if not form.is_valid():
        return _bad_request(form)
    scope = selectors.filter_scope(user=request.user, case_filter=form.case_filter())
    return _json({"bbox": selectors.scope_extent(scope=scope, day=timezone.localdate())})


@login_required
@require_GET
def layer_values(request: HttpRequest) -> JsonResponse:
    form = LayerForm(request.GET)
    if not form.is_valid():
        return _bad_request(form)
    default = "population" if can_view_population(request.user) else "open_cases"
    try:
        data = selectors.grid_layer_values(
            user=request.user,
            layer=form.cleaned_data.get("layer") or default,
            case_filter=form.case_filter(),
            scheme=form.cleaned_data.get("scheme") or "quantiles",
        )
    except PopulationHidden as refused:
        return JsonResponse({"error": str(refused)}, status=403)
    return _json(data)


@login_required
@require_GET
def case_markers(request: HttpRequest) -> JsonResponse:
    form = CaseFilterForm(request.GET)
    if not form.is_valid():
        return _bad_request(form)
    return _json(selectors.case_markers(user=request.user, case_filter=form.case_filter()))


@login_required
@require_GET
def case_changes(request: HttpRequest) -> JsonResponse:
    form = ChangesForm(request.GET)
    if not form.is_valid():
        return _bad_request(form)
    data = selectors.case_changes(user=request.user, case_filter=form.case_filter(), since=form.cleaned_data["since"])
    return _json(data)


@login_required
@require_GET
def overdue_cases(request: HttpRequest) -> JsonResponse:
    form = CaseFilterForm(request.GET)
    if not form.is_valid():
        return _bad_request(form)
    return _json({"cases": selectors.overdue_cases(user=request.user, case_filter=form.case_filter())})


@login_required
@require_GET
def grid_panel(request: HttpRequest, grid_id: int) -> JsonResponse:
    panel = selectors.grid_panel(user=request.user, grid_id=grid_id)
    if panel is None:
        raise Http404("网格不存在或不在您的管辖范围内")
    return _json(panel)


@login_required
@require_GET
def case_detail(request: HttpRequest, case_id: int) -> JsonResponse:
    detail = selectors.case_detail(user=request.user, case_id=case_id)
    if detail is None:
        raise Http404("案件不存在或不在您的管辖范围内")
    return _json(detail)


@login_required
@require_GET
def case_photo(request: HttpRequest, photo_id: int) -> FileResponse:
    photo = selectors.case_photo_visible(user=request.user, photo_id=photo_id)
    if photo is None:
        raise Http404("照片不存在或不在您的管辖范围内")
    content_type = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}.get(
        photo.image_format, "application/octet-stream"
    )
    response = FileResponse(photo.image.open("rb"), content_type=content_type)
    response["Cache-Control"] = "private, max-age=86400"
    return response


@login_required
@require_GET
def workers(request: HttpRequest) -> JsonResponse:
    if not can_monitor_workers(request.user):
        return JsonResponse({"error": "无权查看人员监测"}, status=403)
    return _json(selectors.worker_monitor(user=request.user))
