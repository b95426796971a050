from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from memberhub.access.principal import staff_principal


def console(request: HttpRequest) -> dict[str, Any]:
    """The navigation and the signed-in person, for the console's base layout."""
    if not request.path.startswith("/console/") or not request.user.is_authenticated:
        return {}
    from memberhub.console.pages import nav_for

    principal = staff_principal(request.user)
    return {"console_principal": principal, "console_nav": nav_for(principal)}
