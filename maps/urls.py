from django.urls import path  # noqa: F401  (patterns are added by the features in this app)

app_name = "maps"

urlpatterns: list = []
