"""Refuse logins (admin and API alike) for a (username, address) inside its delay, or an
address over its ceiling."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend

from memberhub.access.signals import client_ip
from memberhub.core.errors import RateLimited


class RateLimitedModelBackend(ModelBackend):
    def authenticate(self, request: Any, username: str | None = None, password: str | None = None, **kwargs: Any) -> Any:
        from memberhub.access.services import login_check_allowed

        try:
            login_check_allowed(username=username or "", ip=client_ip(request))
        except RateLimited:
            if request is not None:
                request._memberhub_login_limited = True
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
