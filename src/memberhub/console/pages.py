"""How every console page starts: a logged-in staff member, as the Principal the services check.

The services enforce roles and store scopes; a refusal they raise is answered here with the
refusal page (its status kept), never by hiding a link alone.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from memberhub.access.principal import Principal, staff_principal
from memberhub.core.errors import ApplicationError

Page = Callable[..., HttpResponse]


def staff_page(view: Callable[..., HttpResponse]) -> Page:
    """The view gets `(request, principal, ...)`; anonymous visitors go to the login page."""

    @wraps(view)
    def page(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect(f"{reverse('console:login')}?{urlencode({'next': request.get_full_path()})}")
        principal = staff_principal(request.user)
        try:
            response = view(request, principal, *args, **kwargs)
        except ApplicationError as exc:
            response = refusal(request, exc)
        response["Cache-Control"] = "no-store"  # pages carry members' data
        return response

    return page


def refusal(request: HttpRequest, exc: ApplicationError) -> HttpResponse:
    return render(request, "console/refusal.html", {"error": exc}, status=exc.status)


def nav_for(principal: Principal) -> list[dict[str, str]]:
    """The sections this person may open (the services still check each page)."""
    from django.utils.translation import gettext as _

    items = []
    if principal.can("members:read"):
        items.append({"url": reverse("console:members"), "label": _("Members"), "key": "members"})
    return items
