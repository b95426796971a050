from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "memberhub.core"
    label = "core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from memberhub.core import checks, tasks  # noqa: F401  (registers checks and periodic jobs)
