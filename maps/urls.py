from django.urls import path

from maps import grid_design_views

app_name = "maps"

urlpatterns: list = [
    # Grid design (网格划分) for planners: docs/grid_design.md
    path("design/", grid_design_views.design_page, name="grid_design"),
    path("design/propose/", grid_design_views.propose, name="grid_design_propose"),
    path("design/<int:proposal_id>/merge/", grid_design_views.merge, name="grid_design_merge"),
    path("design/<int:proposal_id>/split/", grid_design_views.split, name="grid_design_split"),
    path("design/<int:proposal_id>/adopt/", grid_design_views.adopt, name="grid_design_adopt"),
]
