from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AnalyticsConfig(AppConfig):
    name = "memberhub.analytics"
    label = "analytics"
    verbose_name = _("Analytics")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from memberhub.analytics import hooks, tasks  # noqa: F401  (registers the periodic job)
        from memberhub.members.hooks import ERASE_HOOKS

        if hooks.on_erase not in ERASE_HOOKS:
            ERASE_HOOKS.append(hooks.on_erase)
