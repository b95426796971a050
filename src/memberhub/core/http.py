"""The error envelope: {"code": ..., "message": ..., "detail": {...}}; built in one place."""

from __future__ import annotations

import sys
from typing import Any

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.functional import Promise
from django.utils.html import escape
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt

from memberhub.core.errors import (
    ApplicationError,
    DatabaseUnavailable,
    InternalError,
    NotFound,
    ValidationFailed,
)
from memberhub.core.request_log import current_request_id


def envelope(code: str, message: str | Promise, detail: dict[str, Any] | None = None) -> dict[str, Any]:
    body = {"code": code, "message": str(message), "detail": detail or {}}
    rid = current_request_id()
    if rid:  # the same id as the X-Request-ID header and the request's log lines
        body["request_id"] = rid
    return body


def error_response(exc: ApplicationError) -> JsonResponse:
    response = JsonResponse(
        envelope(exc.code, exc.message, exc.detail), status=exc.status, json_dumps_params={"ensure_ascii": False}
    )
    _retry_after(response, exc)
    return response


def _retry_after(response: HttpResponse, exc: ApplicationError) -> None:
    if exc.status == 503:
        response["Retry-After"] = "1"  # the database is down or busy: worth trying again soon
    elif exc.status == 429 and isinstance(seconds := exc.detail.get("retry_after_seconds"), int):
        response["Retry-After"] = str(max(seconds, 1))


def error_answer(request: HttpRequest, exc: ApplicationError) -> HttpResponse:
    """For an answer given before any view: the envelope under /api/, a short page elsewhere."""
    if request.path_info.startswith("/api/"):
        return error_response(exc)
    page = f"<!doctype html><title>{exc.status}</title><h1>{exc.status}</h1><p>{escape(str(exc.message))}</p>"
    response = HttpResponse(page, status=exc.status)
    _retry_after(response, exc)
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's handler500: an exception no view answered (one raised in a middleware, say,
    such as the Idempotency-Key claim). A database that is down or busy is a 503 the client
    may retry, not a 500."""
    exc = sys.exc_info()[1]
    if isinstance(exc, OperationalError | InterfaceError):
        from memberhub.core.metrics import database_error

        database_error(exc)
    return error_answer(request, DatabaseUnavailable() if isinstance(exc, OperationalError | InterfaceError)
                        else InternalError())


@csrf_exempt  # a POST to a wrong path is a 404 whatever its cookies; CSRF would answer an HTML 403
def api_not_found(request: HttpRequest, rest: str = "") -> JsonResponse:
    """Any path under /api/ that no route matches: the envelope, not Django's HTML page."""
    return error_response(NotFound())


_STATUS_CODES = {400: "bad_request", 403: "permission_denied", 404: "not_found", 405: "method_not_allowed",
                 413: "payload_too_large", 429: "rate_limited"}


class ApiErrorEnvelopeMiddleware:
    """Under /api/, an error answered by the framework itself (405 from the router, a bare 404)
    still reaches the client in the one envelope, never as HTML or plain text."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> Any:
        response = self.get_response(request)
        if (
            request.path.startswith("/api/")
            and response.status_code >= 400
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            status = response.status_code
            wrapped = error_response(
                ApplicationError(code=_STATUS_CODES.get(status, "http_error"), status=status)
                if status != 404 else NotFound()
            )
            if "Allow" in response:
                wrapped["Allow"] = response["Allow"]
            return wrapped
        return response


def nul_refused() -> ValidationFailed:
    return ValidationFailed(_("The request contains a NUL character (U+0000), which is not accepted."),
                            code="invalid_characters", status=400)


def holds_nul(data: Any) -> bool:
    """Whether parsed JSON holds U+0000 in any string, key or value."""
    if isinstance(data, str):
        return "\x00" in data
    if isinstance(data, dict):
        return any(holds_nul(k) or holds_nul(v) for k, v in data.items())
    if isinstance(data, list):
        return any(holds_nul(v) for v in data)
    return False


class NulCharacterMiddleware:
    """PostgreSQL's text cannot hold U+0000, and a lookup or a write with one failed there with a
    500 (a coupon code, a filter, an order number). So a NUL in the path or the query string
    (`%00`) is refused at the door, 400 `invalid_characters`, on every database alike; in a
    JSON body the API's parser refuses it (`holds_nul`). Forms already refuse it (Django's
    `ProhibitNullCharactersValidator`)."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> Any:
        query = request.META.get("QUERY_STRING", "")
        if "\x00" in request.path_info or "%00" in query or "\x00" in query:
            return error_answer(request, nul_refused())
        return self.get_response(request)
