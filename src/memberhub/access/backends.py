"""Refuse logins (admin and API alike) for a username or address over the failure limit."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend

from memberhub.core.errors import RateLimited


class RateLimitedModelBackend(ModelBackend):
    def authenticate(self, request: Any, username: str | None = None, password: str | None = None, **kwargs: Any) -> Any:
        from memberhub.access.services import login_check_allowed

        ip = request.META.get("REMOTE_ADDR", "") if request is not None else ""
        try:
            login_check_allowed(username=username or "", ip=ip)
        except RateLimited:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
