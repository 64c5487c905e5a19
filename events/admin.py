"""Admin: the catalogue, routing rules, area classes and calendar overrides are edited here.

Cases, their history, photos, alerts and snapshots are read-only: they change only
through the workflow (events.services).
"""

from django.contrib import admin, messages
from django.utils import timezone
from leaflet.admin import LeafletGeoAdmin

from events import models
from events.calendar import calendar_coverage


class RoutingRuleInline(admin.TabularInline):
    model = models.RoutingRule
    extra = 0
    autocomplete_fields = ("department", "street", "community")


@admin.register(models.Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = (
        "code_display",
        "major_name",
        "minor_name",
        "filing_hours",
        "dispatch_hours",
        "handling_normal_a",
        "handling_unit_normal",
        "handling_urgent_a",
        "handling_unit_urgent",
        "default_department",
        "is_active",
    )
    list_filter = ("kind", "major_name", "is_active")
    search_fields = ("major_code", "minor_code", "major_name", "minor_name")
    autocomplete_fields = ("default_department", "facility_type")
    inlines = [RoutingRuleInline]
    fieldsets = (
        (None, {"fields": ("kind", ("major_code", "major_name"), ("minor_code", "minor_name"), "is_active")}),
        ("标准", {"fields": ("filing_condition", "closing_condition")}),
        ("环节时限", {"fields": ("verify_hours", "filing_hours", "dispatch_hours", "check_hours", "close_hours")}),
        (
            "处置时限",
            {
                "fields": (
                    ("handling_unit_normal", "handling_normal_a", "handling_normal_b", "handling_normal_c"),
                    ("handling_unit_urgent", "handling_urgent_a", "handling_urgent_b", "handling_urgent_c"),
                )
            },
        ),
        ("派遣", {"fields": ("default_department", "facility_type")}),
    )

    @admin.display(description="编码", ordering="major_code")
    def code_display(self, obj: models.Category) -> str:
        return obj.code


@admin.register(models.RoutingRule)
class RoutingRuleAdmin(admin.ModelAdmin):
    list_display = ("category", "department", "street", "community", "priority", "is_active")
    list_filter = ("is_active", "department")
    search_fields = ("category__minor_name", "department__name")
    autocomplete_fields = ("category", "department", "street", "community")


@admin.register(models.GridAreaClass)
class GridAreaClassAdmin(admin.ModelAdmin):
    list_display = ("grid", "area_class")
    list_filter = ("area_class",)
    search_fields = ("grid__code", "grid__name")
    autocomplete_fields = ("grid",)


@admin.register(models.WorkingDayOverride)
class WorkingDayOverrideAdmin(admin.ModelAdmin):
    list_display = ("day", "is_working_day", "note")
    list_filter = ("is_working_day",)
    date_hierarchy = "day"

    def changelist_view(self, request, extra_context=None):
        year = timezone.localdate().year
        for coverage in calendar_coverage(years=[year, year + 1]):
            if coverage.needs_attention:
                messages.warning(request, coverage.message)
        return super().changelist_view(request, extra_context)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class CaseHistoryInline(admin.TabularInline):
    model = models.CaseHistory
    extra = 0
    fields = ("created_at", "action", "from_state", "to_state", "actor", "actor_role", "department", "comment")
    readonly_fields = fields
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(models.Case)
class CaseAdmin(ReadOnlyAdmin, LeafletGeoAdmin):
    list_display = ("number", "category", "source", "state", "street", "community", "current_department", "deadline")
    list_filter = ("state", "source", "urgency", "street", "category__kind")
    search_fields = ("number", "description", "address")
    date_hierarchy = "reported_at"
    inlines = [CaseHistoryInline]


@admin.register(models.CaseHistory)
class CaseHistoryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "case", "action", "from_state", "to_state", "actor", "actor_role", "department")
    list_filter = ("action", "actor_role")
    search_fields = ("case__number",)
    date_hierarchy = "created_at"


@admin.register(models.CasePhoto)
class CasePhotoAdmin(ReadOnlyAdmin):
    list_display = ("case", "stage", "image_format", "width", "height", "taken_at", "uploaded_at")
    list_filter = ("stage",)
    search_fields = ("case__number",)


@admin.register(models.CaseAlert)
class CaseAlertAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "case", "level", "step", "deadline", "department")
    list_filter = ("level", "step")
    search_fields = ("case__number",)


@admin.register(models.IndicatorSnapshot)
class IndicatorSnapshotAdmin(ReadOnlyAdmin):
    list_display = ("day", "kind", "created_at")
    list_filter = ("kind",)
    date_hierarchy = "day"
