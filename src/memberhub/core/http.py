"""The error envelope: {"code": ..., "message": ..., "detail": {...}}; built in one place."""

from __future__ import annotations

import sys
from typing import Any

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.functional import Promise
from django.utils.html import escape
from django.views.decorators.csrf import csrf_exempt

from memberhub.core.errors import ApplicationError, DatabaseUnavailable, InternalError, NotFound


def envelope(code: str, message: str | Promise, detail: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"code": code, "message": str(message), "detail": detail or {}}


def error_response(exc: ApplicationError) -> JsonResponse:
    response = JsonResponse(
        envelope(exc.code, exc.message, exc.detail), status=exc.status, json_dumps_params={"ensure_ascii": False}
    )
    if exc.status == 503:
        response["Retry-After"] = "1"  # the database is down or busy: worth trying again soon
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's handler500: an exception no view answered (one raised in a middleware, say,
    such as the Idempotency-Key claim). Under /api/ the envelope; a database that is down or
    busy is a 503 the client may retry, not a 500."""
    exc = sys.exc_info()[1]
    error = DatabaseUnavailable() if isinstance(exc, OperationalError | InterfaceError) else InternalError()
    if request.path.startswith("/api/"):
        return error_response(error)
    response = HttpResponse(f"<!doctype html><title>{error.status}</title><h1>{error.status}</h1>"
                            f"<p>{escape(str(error.message))}</p>", status=error.status)
    if error.status == 503:
        response["Retry-After"] = "1"
    return response


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
