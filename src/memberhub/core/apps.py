from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "memberhub.core"
    label = "core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from memberhub.core import checks, events, tasks  # noqa: F401  (registers checks and periodic jobs)
        from memberhub.core.metrics import earn_recorded

        @events.subscribe(events.PURCHASE_RECORDED)
        def _count_earn(*, points: int | None = None, **_: object) -> None:
            earn_recorded(points or 0)
