"""Admin for the spatial register: Leaflet map widgets, search by code/name/address, and
personal data shown only in masked form."""

from django.contrib import admin
from leaflet.admin import LeafletGeoAdmin

from geodata import models


@admin.register(models.Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "kind", "phone")
    list_filter = ("kind",)
    search_fields = ("code", "name")


@admin.register(models.District)
class DistrictAdmin(LeafletGeoAdmin):
    list_display = ("code", "name", "is_demo")
    search_fields = ("code", "name")


@admin.register(models.Street)
class StreetAdmin(LeafletGeoAdmin):
    list_display = ("code", "name", "district", "is_demo")
    list_filter = ("district",)
    search_fields = ("code", "name")


@admin.register(models.Community)
class CommunityAdmin(LeafletGeoAdmin):
    list_display = ("code", "name", "street", "is_demo")
    list_filter = ("street",)
    search_fields = ("code", "name")


class GridAssignmentInline(admin.TabularInline):
    model = models.GridAssignment
    extra = 0
    autocomplete_fields = ("worker",)


@admin.register(models.Grid)
class GridAdmin(LeafletGeoAdmin):
    list_display = ("code", "name", "community", "responsible_unit", "area_m2", "valid_from", "valid_to")
    list_filter = ("community__street", "valid_to")
    search_fields = ("code", "name", "community__name")
    readonly_fields = ("area_m2",)
    autocomplete_fields = ("community", "responsible_unit")
    inlines = [GridAssignmentInline]


@admin.register(models.Building)
class BuildingAdmin(LeafletGeoAdmin):
    list_display = ("code", "address", "floors", "use", "grid")
    list_filter = ("use", "grid__community__street")
    search_fields = ("code", "address")
    autocomplete_fields = ("grid",)


@admin.register(models.Household)
class HouseholdAdmin(admin.ModelAdmin):
    list_display = ("code", "building", "unit", "room", "household_type", "head_name", "phone_masked", "grid")
    list_filter = ("household_type",)
    search_fields = ("code", "building__address", "head_name")
    readonly_fields = ("phone_masked",)
    autocomplete_fields = ("building", "grid")
    list_select_related = ("building", "grid")


@admin.register(models.Person)
class PersonAdmin(admin.ModelAdmin):
    list_display = ("name", "sex", "birth_date", "id_number_masked", "phone_masked", "household")
    list_filter = ("sex",)
    search_fields = ("name", "household__code", "household__building__address")
    readonly_fields = ("id_number_masked", "phone_masked")
    autocomplete_fields = ("household",)
    list_select_related = ("household__building",)


@admin.register(models.FacilityType)
class FacilityTypeAdmin(admin.ModelAdmin):
    list_display = ("major_code", "major_name", "minor_code", "minor_name")
    search_fields = ("major_name", "minor_name", "minor_code")


@admin.register(models.Facility)
class FacilityAdmin(LeafletGeoAdmin):
    list_display = ("code", "facility_type", "name", "status", "grid", "maintainer_department")
    list_filter = ("status", "facility_type__major_name")
    search_fields = ("code", "name", "address")
    autocomplete_fields = ("facility_type", "grid", "owner_department", "manager_department", "maintainer_department")


@admin.register(models.PersonalDataReveal)
class PersonalDataRevealAdmin(admin.ModelAdmin):
    """Read-only: the reveal log is append-only evidence."""

    list_display = ("revealed_at", "user", "field", "person", "household", "reason")
    list_filter = ("field",)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
