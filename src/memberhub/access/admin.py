from django.contrib import admin

from memberhub.access.models import ApiKey, StaffProfile


@admin.register(StaffProfile)
class StaffProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "role", "all_stores")
    list_filter = ("role",)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "created_at", "revoked_at", "last_used_at")
    readonly_fields = ("prefix", "hashed", "created_at", "last_used_at")
