"""Admin: Open311 keys are issued (shown once) and revoked here; report receipts are read-only."""

from django.contrib import admin, messages

from patrol_api import services
from patrol_api.models import ApiKey, CaseReceipt


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "contact", "returns_token", "created_at", "revoked_at")
    list_filter = ("returns_token",)
    search_fields = ("name", "prefix", "contact")
    fields = ("name", "contact", "returns_token", "prefix", "created_by", "created_at", "revoked_at")
    readonly_fields = ("prefix", "created_by", "created_at", "revoked_at")
    actions = ["revoke"]

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        issued, raw_key = services.api_key_issue(
            name=obj.name, contact=obj.contact, returns_token=obj.returns_token, created_by=request.user
        )
        obj.pk, obj.prefix, obj.digest, obj.created_by, obj.created_at = (
            issued.pk,
            issued.prefix,
            issued.digest,
            issued.created_by,
            issued.created_at,
        )
        obj._state.adding = False
        messages.warning(request, f"新密钥（只显示这一次，请立即交给接入方）：{raw_key}")

    @admin.action(description="吊销所选密钥")
    def revoke(self, request, queryset):
        for api_key in queryset:
            services.api_key_revoke(api_key=api_key)
        messages.success(request, f"已吊销 {queryset.count()} 个密钥")

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revoke instead: receipts keep pointing at the key that brought them


@admin.register(CaseReceipt)
class CaseReceiptAdmin(admin.ModelAdmin):
    list_display = ("case", "channel", "submitted_by", "device_time", "accuracy_m", "received_at", "api_key")
    list_filter = ("channel",)
    search_fields = ("case__number", "idempotency_key", "token")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
