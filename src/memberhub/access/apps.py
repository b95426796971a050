from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccessConfig(AppConfig):
    name = "memberhub.access"
    label = "access"
    verbose_name = _("Staff access")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from memberhub.access import signals  # noqa: F401
