"""The error envelope: {"code": ..., "message": ..., "detail": {...}}; built in one place."""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse
from django.utils.functional import Promise

from memberhub.core.errors import ApplicationError


def envelope(code: str, message: str | Promise, detail: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"code": code, "message": str(message), "detail": detail or {}}


def error_response(exc: ApplicationError) -> JsonResponse:
    response = JsonResponse(
        envelope(exc.code, exc.message, exc.detail), status=exc.status, json_dumps_params={"ensure_ascii": False}
    )
    return response
