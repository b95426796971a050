"""The error envelope: {"code": ..., "message": ..., "detail": {...}}; built in one place."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.utils.functional import Promise
from django.views.decorators.csrf import csrf_exempt

from memberhub.core.errors import ApplicationError, NotFound


def envelope(code: str, message: str | Promise, detail: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"code": code, "message": str(message), "detail": detail or {}}


def error_response(exc: ApplicationError) -> JsonResponse:
    response = JsonResponse(
        envelope(exc.code, exc.message, exc.detail), status=exc.status, json_dumps_params={"ensure_ascii": False}
    )
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
