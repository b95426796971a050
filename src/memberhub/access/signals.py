"""Logins through the admin and the API count toward the same limits: a failure is recorded
for its (username, address), a success forgives that pair's failures."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver


def client_ip(request: Any) -> str:
    return str(request.META.get("REMOTE_ADDR", "")) if request is not None else ""


@receiver(user_login_failed)
def _on_login_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    from memberhub.access.services import login_failure_record

    if getattr(request, "_memberhub_login_limited", False):
        return  # refused before the password was looked at: not a guess, so not counted again
    login_failure_record(username=str(credentials.get("username", "")), ip=client_ip(request))


@receiver(user_logged_in)
def _on_logged_in(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    from memberhub.access.services import login_success_record

    if request is not None and user is not None:
        login_success_record(username=user.get_username(), ip=client_ip(request))
