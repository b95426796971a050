"""Headers every answer carries beyond Django's SecurityMiddleware: a Content-Security-Policy,
and `Cache-Control: no-store` wherever personal data may be in the answer.

Every /api/ answer is `no-store` (members' names, masked or whole phones, balances, keys shown
once): not one of them may sit in a browser's or a proxy's cache. Pages for a signed-in staff
member (the admin) are too. Static files and anonymous pages keep their own caching.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from memberhub.core.middleware import API_PREFIX


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response
        self.csp = settings.CONTENT_SECURITY_POLICY

    def __call__(self, request: HttpRequest) -> Any:
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = self.csp
        if request.path_info.startswith(API_PREFIX) or _signed_in(request):
            response["Cache-Control"] = "no-store"
        return response


def _signed_in(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)  # absent: answered before authentication (static files)
    return bool(user is not None and user.is_authenticated)
