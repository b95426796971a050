from django.contrib import admin

from memberhub.stores.models import Store


@admin.register(Store)
class StoreAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "city", "kind", "is_active")
