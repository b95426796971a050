"""Failed logins through the admin count toward the same limit as the API login."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver


@receiver(user_login_failed)
def _on_login_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    from memberhub.access.services import login_failure_record

    if getattr(request, "_memberhub_login_counted", False):
        return
    ip = request.META.get("REMOTE_ADDR", "") if request is not None else ""
    login_failure_record(username=str(credentials.get("username", "")), ip=ip)
