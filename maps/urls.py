from importlib import import_module

from django.urls import path

from maps import buildings3d_views, statistics_views, views

app_name = "maps"


def _lazy(module: str, name: str):
    """A view imported on its first call: the grid-design views need geodata.grid_design
    (scipy) and grid_redraw (geopandas), which every web worker would otherwise load with
    the URLconf (docs/performance.md §8)."""

    def view(request, *args, **kwargs):
        return getattr(import_module(module), name)(request, *args, **kwargs)

    view.__name__ = view.__qualname__ = name
    return view


_DESIGN = "maps.grid_design_views"

urlpatterns: list = [
    # Grid design (网格划分) for planners: docs/grid_design.md
    path("design/", _lazy(_DESIGN, "design_page"), name="grid_design"),
    path("design/propose/", _lazy(_DESIGN, "propose"), name="grid_design_propose"),
    path("design/<int:proposal_id>/merge/", _lazy(_DESIGN, "merge"), name="grid_design_merge"),
    path("design/<int:proposal_id>/split/", _lazy(_DESIGN, "split"), name="grid_design_split"),
    path("design/<int:proposal_id>/adopt/", _lazy(_DESIGN, "adopt"), name="grid_design_adopt"),
    # Command-center map dashboard (指挥地图): docs/dashboard.md
    path("", views.dashboard, name="dashboard"),
    path("tiles/grids/<int:z>/<int:x>/<int:y>.pbf", views.grid_tiles, name="grid_tiles"),
    path("api/extent/", views.extent, name="extent"),
    path("api/layer/", views.layer_values, name="layer_values"),
    path("api/cases/", views.case_markers, name="case_markers"),
    path("api/cases/changes/", views.case_changes, name="case_changes"),
    path("api/cases/overdue/", views.overdue_cases, name="overdue_cases"),
    path("api/cases/<int:case_id>/", views.case_detail, name="case_detail"),
    path("api/grids/<int:grid_id>/", views.grid_panel, name="grid_panel"),
    path("api/workers/", views.workers, name="workers"),
    path("photos/<int:photo_id>/", views.case_photo, name="case_photo"),
    # Planners' statistics (统计分析): docs/statistics.md
    path("statistics/", statistics_views.statistics_page, name="statistics"),
    path("api/stats/counts/", statistics_views.counts, name="stats_counts"),
    path("api/stats/series/", statistics_views.series, name="stats_series"),
    path("api/stats/hotspots/", statistics_views.hotspots, name="stats_hotspots"),
    path("api/stats/distance/", statistics_views.distance, name="stats_distance"),
    path("api/stats/coverage/", statistics_views.coverage, name="stats_coverage"),
    path("api/stats/profile/", statistics_views.profile, name="stats_profile"),
    path("statistics/export/<str:dataset>.<str:fmt>", statistics_views.export, name="stats_export"),
    path("statistics/report/", statistics_views.map_report, name="map_report"),
    # 3-D view of buildings (三维楼栋): docs/3d.md
    path("3d/", buildings3d_views.page, name="buildings3d"),
    path("tiles/buildings/<int:z>/<int:x>/<int:y>.pbf", buildings3d_views.building_tiles, name="building_tiles"),
    path("tiles/facilities/<int:z>/<int:x>/<int:y>.pbf", buildings3d_views.facility_tiles, name="facility_tiles"),
    path("api/buildings/classes/", buildings3d_views.building_classes, name="building_classes"),
    path("api/buildings/<int:building_id>/", buildings3d_views.building_panel, name="building_panel"),
]
