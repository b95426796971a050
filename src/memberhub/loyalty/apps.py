from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LoyaltyConfig(AppConfig):
    name = "memberhub.loyalty"
    label = "loyalty"
    verbose_name = _("Loyalty")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from memberhub.core.demo import DEMO_LOADERS
        from memberhub.loyalty import checks, hooks, tasks  # noqa: F401  (registers the checks and periodic jobs)
        from memberhub.members.hooks import ERASE_HOOKS, EXPORT_HOOKS, MERGE_HOOKS, UNFREEZE_HOOKS

        for registry, hook in ((MERGE_HOOKS, hooks.on_merge), (ERASE_HOOKS, hooks.on_erase),
                               (EXPORT_HOOKS, hooks.on_export), (DEMO_LOADERS, hooks.demo_purchases),
                               (UNFREEZE_HOOKS, hooks.on_unfreeze)):
            if hook not in registry:
                registry.append(hook)  # type: ignore[arg-type]
