"""Every request gets an id, one JSON log line, and the id in its answer.

The id is the caller's `X-Request-ID` when it is a sane token (a proxy or a till that made
one), else a new one; it is returned in the `X-Request-ID` header and in every error
envelope (`request_id`), and every log line written while the request runs carries it, so a
cashier's screenshot of an error finds its log lines.

The access line holds the method, the route pattern and the path, never the query string:
a lookup such as `?phone=13800138000` must not put a phone number into the logs.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # settings import this module for `logging_config`: nothing of Django's at import
    from django.http import HttpRequest, HttpResponseBase

_request_id: ContextVar[str] = ContextVar("memberhub_request_id", default="")
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
access_log = logging.getLogger("memberhub.access")


def current_request_id() -> str:
    """The id of the request being answered in this thread ("" outside a request)."""
    return _request_id.get()


def _accepted(value: str | None) -> str | None:
    return value if value and _SANE_ID.fullmatch(value) else None


def _actor(request: HttpRequest) -> str | None:
    """Who called, as kind:id (a staff member, an API key), never a name or a phone."""
    principal = getattr(request, "auth", None)
    kind = getattr(principal, "kind", None)
    if kind:
        return f"{kind}:{getattr(principal, 'id', None)}"
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        return f"staff-user:{user.pk}"
    return None


class RequestIdMiddleware:
    """First in the chain, so that even an answer given by a later middleware carries the id."""

    def __init__(self, get_response: Any) -> None:
        from memberhub.core.metrics import observe_request  # in the worker, after the metrics folder is named

        self.get_response = get_response
        self.observe = observe_request

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        rid = _accepted(request.META.get("HTTP_X_REQUEST_ID")) or uuid.uuid4().hex
        token = _request_id.set(rid)
        started = time.perf_counter()
        try:
            response: HttpResponseBase = self.get_response(request)
            response["X-Request-ID"] = rid
            seconds = time.perf_counter() - started
            match = getattr(request, "resolver_match", None)
            # the route's pattern, not the path: ids in paths would make a series per member
            route = match.route if match is not None else "unmatched"
            self.observe(request.method or "", route, response.status_code, seconds)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info("request", extra={"request_id": rid, "http": {
                    "method": request.method,
                    "route": route,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round(seconds * 1000, 2),
                    "actor": _actor(request),
                    "client": request.META.get("REMOTE_ADDR"),
                }})
            return response
        finally:
            _request_id.reset(token)


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on every record (an empty string outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = _request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, request id, and any
    structured `http` fields and the exception's trace."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", "")
        if rid:
            line["request_id"] = rid
        http = getattr(record, "http", None)
        if http:
            line.update(http)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The plain format, with the request id and the access fields when there are any."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        http = getattr(record, "http", None)
        if http:
            text += " " + " ".join(f"{k}={v}" for k, v in http.items())
        rid = getattr(record, "request_id", "")
        return f"{text} request_id={rid}" if rid else text


def logging_config(*, level: str, fmt: str) -> dict[str, Any]:
    formatter = (
        {"()": "memberhub.core.request_log.JsonFormatter"} if fmt == "json"
        else {"()": "memberhub.core.request_log.TextFormatter",
              "format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "memberhub.core.request_log.RequestIdFilter"}},
        "formatters": {"main": formatter},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "main", "filters": ["request_id"]}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {"django.request": {"level": "ERROR"}, "django.server": {"level": "WARNING"}},
    }
