from django.urls import path

from command import views

app_name = "command"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("register/", views.register, name="register"),
    path("department/", views.department, name="department"),
    path("indicators/", views.indicators_page, name="indicators"),
    path("cases/<int:case_id>/", views.case_detail, name="case_detail"),
    path("cases/<int:case_id>/<str:action>/", views.case_act, name="case_act"),
    path("photos/<int:photo_id>/", views.case_photo, name="case_photo"),
]
