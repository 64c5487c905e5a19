"""Admin for the spatial register: Leaflet map widgets, search by code/name/address, and
personal data shown only in masked form."""

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from leaflet.admin import LeafletGeoAdmin

from geodata import models, services


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
    readonly_fields = ("id_number_masked", "phone_masked", "reveal_link")
    autocomplete_fields = ("household",)
    list_select_related = ("household__building",)

    @admin.display(description="查看明文")
    def reveal_link(self, obj):
        if obj.pk is None:
            return "-"
        url = reverse("admin:geodata_person_reveal", args=[obj.pk])
        return format_html('<a href="{}">查看身份证号/电话明文（需填写原因，留痕）</a>', url)

    def get_urls(self):
        reveal = self.admin_site.admin_view(self.reveal_view)
        return [path("<int:pk>/reveal/", reveal, name="geodata_person_reveal"), *super().get_urls()]

    def reveal_view(self, request, pk):
        """Show one field in clear after the user gives a reason; every reveal is logged."""
        person = get_object_or_404(models.Person, pk=pk)
        if not (self.has_view_permission(request, person) and request.user.has_perm("geodata.reveal_personal_data")):
            raise PermissionDenied("您的角色无权查看个人信息明文")
        form = PersonalDataRevealForm(request.POST or None)
        revealed = None
        if request.method == "POST" and form.is_valid():
            try:
                revealed = services.personal_data_reveal(
                    user=request.user,
                    person=person,
                    field=form.cleaned_data["field"],
                    reason=form.cleaned_data["reason"],
                )
            except services.PersonalDataRevealRefused as refused:
                form.add_error(None, str(refused))
        context = {
            **self.admin_site.each_context(request),
            "title": f"查看个人信息明文：{person.name}",
            "person": person,
            "form": form,
            "revealed": revealed,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/geodata/person/reveal.html", context)


class PersonalDataRevealForm(forms.Form):
    field = forms.ChoiceField(label="字段", choices=[("id_number", "身份证号"), ("phone", "手机")])
    reason = forms.CharField(
        label="查看原因", max_length=200, help_text="例如：入户核查、办理低保复核。查看记录将留存备查。"
    )


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
