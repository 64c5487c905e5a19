from django.apps import AppConfig


class PatrolApiConfig(AppConfig):
    name = "patrol_api"
    verbose_name = "巡查接口"
