from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CouponsConfig(AppConfig):
    name = "memberhub.coupons"
    label = "coupons"
    verbose_name = _("Coupons and rewards")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from memberhub.core.demo import DEMO_LOADERS
        from memberhub.coupons import handlers, member_hooks, tasks  # noqa: F401  (events, periodic jobs)
        from memberhub.coupons.demo import coupons_demo_load
        from memberhub.members.hooks import ERASE_HOOKS, EXPORT_HOOKS, MERGE_HOOKS, UNFREEZE_HOOKS

        for hooks, fn in ((MERGE_HOOKS, member_hooks.coupons_member_merge),
                          (ERASE_HOOKS, member_hooks.coupons_member_erase),
                          (EXPORT_HOOKS, member_hooks.coupons_member_export),
                          (UNFREEZE_HOOKS, member_hooks.coupons_member_unfreeze),
                          (DEMO_LOADERS, coupons_demo_load)):
            if fn not in hooks:
                hooks.append(fn)  # type: ignore[arg-type]
