from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "memberhub.core"
    label = "core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from memberhub.core import checks, events, tasks  # noqa: F401  (registers checks and periodic jobs)
        from memberhub.core.durability import ensure_synchronous_commit
        from memberhub.core.metrics import earn_recorded

        # PostgreSQL: a commit is on disk before it returns (docs/operations.md, Durability)
        connection_created.connect(ensure_synchronous_commit, dispatch_uid="memberhub-synchronous-commit")

        @events.observe(events.PURCHASE_RECORDED)  # counts in this process, on commit; no outbox row
        def _count_earn(*, points: int | None = None, **_: object) -> None:
            earn_recorded(points or 0)
