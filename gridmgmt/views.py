from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse

from accounts.models import Role

_COMMAND_CENTER = {Role.OPERATOR, Role.SHIFT_LEADER, Role.DISPATCHER, Role.LEADER, Role.ADMIN}

_EVALUATORS = {Role.SHIFT_LEADER, Role.LEADER, Role.PLANNER, Role.ADMIN}

# The entry points of the application: (title, what it is for, URL name, roles that use it).
# None as roles means everybody; an entry whose URL is not installed is left out.
PORTAL = [
    (
        "指挥中心",
        "受理、立案、派遣、结案、督办与超期案件",
        "command:queue",
        {Role.OPERATOR, Role.SHIFT_LEADER, Role.DISPATCHER, Role.LEADER, Role.ADMIN},
    ),
    ("部门处置", "本部门待处置案件：处置反馈、回退、申请延时", "command:department", {Role.DEPARTMENT_HANDLER}),
    ("综合评价", "结案率、按期结案率、超期未结：按区域、部门、岗位，导出 Excel", "command:indicators", _EVALUATORS),
    ("指挥地图", "网格专题图、案件分布、人员监测", "maps:dashboard", None),
    ("统计分析", "网格统计、热点分析、距离查询与导出", "maps:statistics", {Role.PLANNER, Role.LEADER, Role.ADMIN}),
    ("网格划分", "按户数或面积划分网格、调整与启用", "maps:grid_design", {Role.PLANNER, Role.ADMIN}),
    ("手机巡查", "网格员上报、任务、巡查轨迹（手机使用）", "phone:shell", {Role.GRID_WORKER, Role.ADMIN}),
    ("数据管理", "区划、网格、楼栋、人口、部件、案件类别与用户", "admin:index", {Role.ADMIN}),
    ("接口文档", "REST 接口与 Open311（供其他客户端开发）", "patrol_api:docs", {Role.ADMIN}),
]


def _portal_for(user) -> list[dict[str, str]]:
    entries = []
    for title, description, url_name, roles in PORTAL:
        if roles is not None and user.role not in roles and not user.is_superuser:
            continue
        try:
            url = reverse(url_name)
        except NoReverseMatch:
            continue
        entries.append({"title": title, "description": description, "url": url})
    return entries


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html", {"entries": _portal_for(request.user)})


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and database check for load balancers and docker-compose."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("select postgis_lib_version()")
            postgis = cursor.fetchone()[0]
    except Exception:  # any database failure means "not ready"
        return JsonResponse({"status": "unavailable"}, status=503)
    return JsonResponse({"status": "ok", "postgis": postgis})
