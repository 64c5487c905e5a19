from django.contrib import admin
from leaflet.admin import LeafletGeoAdmin

from patrol.models import CheckIn, PatrolSession


@admin.register(PatrolSession)
class PatrolSessionAdmin(LeafletGeoAdmin):
    list_display = ("worker", "started_at", "ended_at", "length_m")
    list_filter = ("started_at",)
    search_fields = ("worker__username", "worker__first_name")
    readonly_fields = ("length_m",)


@admin.register(CheckIn)
class CheckInAdmin(LeafletGeoAdmin):
    list_display = ("worker", "kind", "at", "grid")
    list_filter = ("kind",)
