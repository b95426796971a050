"""Django's middleware, less what a request signed with an API key never uses.

A till calling the API names its key in the `Authorization` header: it has no session, no
CSRF token, no login and no flash messages, yet Django's session, CSRF, authentication and
message middleware each still run for it (reading cookies, building a session store, a lazy
user, two message stores). Those four are the subclasses below, which step aside for
such a request and behave as Django's for everything else (the admin, a staff browser on the
API with its session cookie: CSRF is still checked there). They keep Django's class names
and are subclasses of Django's, so the admin's checks (`admin.E408`…) still find them.

A request under /api/ with an `Authorization` header is authenticated by that header alone:
`StaffSessionAuth` finds no `request.user` and answers 401, so a wrong key beside a valid
session cookie is refused, never let in by the cookie.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.conf.urls.i18n import is_language_prefix_patterns_used
from django.contrib.auth.middleware import AuthenticationMiddleware as DjangoAuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware as DjangoMessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.http import HttpRequest, HttpResponseBase, HttpResponseForbidden
from django.middleware.csrf import CsrfViewMiddleware as DjangoCsrfViewMiddleware
from django.middleware.locale import LocaleMiddleware as DjangoLocaleMiddleware
from django.utils import translation
from django.utils.cache import patch_vary_headers

API_PREFIX = "/api/"


def carries_api_key(environ: Mapping[str, Any]) -> bool:
    """Whether a request (its WSGI environ, or `request.META`) is for the API and carries its
    own credentials in the `Authorization` header."""
    return str(environ.get("PATH_INFO", "")).startswith(API_PREFIX) and "HTTP_AUTHORIZATION" in environ


def keyed_api_request(request: HttpRequest) -> bool:
    """`carries_api_key` for a request, decided once."""
    try:
        return request._keyed_api  # type: ignore[attr-defined]
    except AttributeError:
        keyed = request._keyed_api = carries_api_key(request.META)  # type: ignore[attr-defined]
        return keyed


class _BrowserOnly:
    """Mixed in before a Django middleware (MiddlewareMixin): a keyed API request goes straight
    on to the next layer."""

    get_response: Any
    async_mode: bool

    def __call__(self, request: HttpRequest) -> Any:
        if not self.async_mode and keyed_api_request(request):
            return self.get_response(request)
        return super().__call__(request)  # type: ignore[misc]


LAST_SEEN = "_memberhub_last_seen"


class SessionMiddleware(_BrowserOnly, DjangoSessionMiddleware):
    """Django's, with a sliding idle timeout: a signed-in session's expiry (SESSION_COOKIE_AGE,
    MEMBERHUB_SESSION_IDLE_SECONDS) moves forward as it is used. Saving it on every request
    would be a write per click, so it is renewed at most once a minute (a thirtieth of a short
    timeout), which may end a session up to that much early."""

    def process_response(self, request: HttpRequest, response: Any) -> Any:
        session = getattr(request, "session", None)
        if session is not None and session.accessed and "_auth_user_id" in session:
            now = int(time.time())
            if now - int(session.get(LAST_SEEN, 0)) >= min(60, max(1, settings.SESSION_COOKIE_AGE // 30)):
                session[LAST_SEEN] = now  # modified: Django saves it with a new expiry and cookie
        return super().process_response(request, response)


class CsrfViewMiddleware(_BrowserOnly, DjangoCsrfViewMiddleware):
    def process_view(self, request: HttpRequest, callback: Any, callback_args: Any,
                     callback_kwargs: Any) -> HttpResponseForbidden | None:
        # the handler calls this for every request; process_request did not run for a keyed one
        if keyed_api_request(request):
            return None
        return super().process_view(request, callback, callback_args, callback_kwargs)


class AuthenticationMiddleware(_BrowserOnly, DjangoAuthenticationMiddleware):
    pass


class MessageMiddleware(_BrowserOnly, DjangoMessageMiddleware):
    pass


class LocaleMiddleware(DjangoLocaleMiddleware):
    """Django's, without looking for a language prefix in the path when no URL pattern has
    one (no `i18n_patterns` here). Django looks anyway, twice a request: for `/api/…` it takes
    `api` for a language code and only finds out it is not one after checking every variant
    (a miss is not cached; Django's `process_request` took ~38 µs here, the language from the
    request and its activation ~6 µs of it). With this and the four above an earn took 6–7%
    less CPU (same-process A/B against Django's classes). The language still comes from the
    `django_language` cookie or `Accept-Language`, else `LANGUAGE_CODE`."""

    def process_request(self, request: HttpRequest) -> None:
        if is_language_prefix_patterns_used(getattr(request, "urlconf", settings.ROOT_URLCONF))[0]:
            super().process_request(request)
            return
        translation.activate(translation.get_language_from_request(request, check_path=False))
        request.LANGUAGE_CODE = translation.get_language()

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if is_language_prefix_patterns_used(getattr(request, "urlconf", settings.ROOT_URLCONF))[0]:
            return super().process_response(request, response)
        patch_vary_headers(response, ("Accept-Language",))
        response.headers.setdefault("Content-Language", translation.get_language())
        return response
