from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The staff console (会员管理后台, 门店收银台): pages over the same services as the API."""

    name = "memberhub.console"
    label = "console"
    default_auto_field = "django.db.models.BigAutoField"
