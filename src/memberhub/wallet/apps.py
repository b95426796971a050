from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WalletConfig(AppConfig):
    name = "memberhub.wallet"
    label = "wallet"
    verbose_name = _("Stored value and gift cards")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from memberhub.core.demo import DEMO_LOADERS
        from memberhub.members.hooks import ERASE_HOOKS, EXPORT_HOOKS, MERGE_HOOKS
        from memberhub.wallet import member_hooks, tasks  # noqa: F401  (registers the expiry job)
        from memberhub.wallet.demo import wallet_demo_load

        for hooks, fn in ((MERGE_HOOKS, member_hooks.wallet_member_merge),
                          (ERASE_HOOKS, member_hooks.wallet_member_erase),
                          (EXPORT_HOOKS, member_hooks.wallet_member_export),
                          (DEMO_LOADERS, wallet_demo_load)):
            if fn not in hooks:
                hooks.append(fn)  # type: ignore[arg-type]
