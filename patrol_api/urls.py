from django.urls import path, register_converter
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from patrol_api import action_apis, apis, case_apis, patrol_apis
from patrol_api.converters import IdConverter

register_converter(IdConverter, "dbid")

app_name = "patrol_api"

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="patrol_api:schema"), name="docs"),
    # authentication and the signed-in user
    path("v1/auth/token", apis.TokenLoginApi.as_view(), name="token"),
    path("v1/auth/logout", apis.TokenLogoutApi.as_view(), name="logout"),
    path("v1/auth/logout-all", apis.TokenLogoutAllApi.as_view(), name="logout-all"),
    path("v1/me", apis.ProfileApi.as_view(), name="me"),
    path("v1/me/grids", apis.MyGridsApi.as_view(), name="my-grids"),
    path("v1/me/reports", case_apis.MyReportsApi.as_view(), name="my-reports"),
    path("v1/me/tasks", case_apis.MyTasksApi.as_view(), name="my-tasks"),
    # reference data
    path("v1/categories", case_apis.CategoryTreeApi.as_view(), name="categories"),
    path("v1/departments", case_apis.DepartmentListApi.as_view(), name="departments"),
    path("v1/workflow", case_apis.WorkflowApi.as_view(), name="workflow"),
    # cases
    path("v1/cases", case_apis.CaseListCreateApi.as_view(), name="cases"),
    path("v1/cases/self-handled", case_apis.CaseSelfHandleApi.as_view(), name="cases-self-handled"),
    path("v1/cases/<dbid:case_id>", case_apis.CaseDetailApi.as_view(), name="case"),
    path("v1/cases/<dbid:case_id>/photos/<dbid:photo_id>", case_apis.CasePhotoApi.as_view(), name="case-photo"),
    path("v1/cases/<dbid:case_id>/routing", case_apis.CaseRoutingApi.as_view(), name="case-routing"),
    path("v1/cases/<dbid:case_id>/duplicates", case_apis.CaseDuplicatesApi.as_view(), name="case-duplicates"),
    *(
        path(f"v1/cases/<dbid:case_id>/actions/{action}", view.as_view(), name=f"case-action-{action}")
        for action, view in action_apis.ACTION_VIEWS.items()
    ),
    # patrols
    path("v1/patrols", patrol_apis.PatrolStartApi.as_view(), name="patrols"),
    path("v1/patrols/<dbid:session_id>/points", patrol_apis.PatrolPointsApi.as_view(), name="patrol-points"),
    path("v1/patrols/<dbid:session_id>/stop", patrol_apis.PatrolStopApi.as_view(), name="patrol-stop"),
    path("v1/check-ins", patrol_apis.CheckInApi.as_view(), name="check-ins"),
]
