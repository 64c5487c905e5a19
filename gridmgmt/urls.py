from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from gridmgmt import views

admin.site.site_header = "网格化管理平台 · 数据管理"
admin.site.site_title = "网格化管理平台"
admin.site.index_title = "基础数据与系统设置"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/geodata/import/", include("geodata.admin_import")),
    path("admin/", admin.site.urls),
    path("maps/", include("maps.urls")),
    path("command/", include("command.urls")),
    path("api/", include("patrol_api.urls")),
    path("", include("patrol_api.site_urls")),  # /m/ phone app, /open311/v2/
]
