from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts.models import User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ("username", "first_name", "last_name", "role", "street", "community", "department", "is_active")
    list_filter = ("role", "is_active", "street")
    fieldsets = (
        *BaseUserAdmin.fieldsets,
        ("角色与范围", {"fields": ("role", "phone", "street", "community", "department")}),
    )
    autocomplete_fields = ("street", "community", "department")
