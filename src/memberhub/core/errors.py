"""The one error hierarchy. Services raise these; the API maps them to the envelope once.

`message` is a lazy translation so it is rendered in the request's language
(zh-Hans by default, en via Accept-Language) only when the response is built.
"""

from __future__ import annotations

from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


class ApplicationError(Exception):
    status: int = 400
    code: str = "bad_request"
    default_message: str | Promise = _("The request could not be processed.")

    def __init__(
        self,
        message: str | Promise | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        self.message = message if message is not None else self.default_message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.detail = detail or {}
        super().__init__(str(self.message))


class ValidationFailed(ApplicationError):
    status = 422
    code = "validation_error"
    default_message = _("The request is not valid.")


class NotFound(ApplicationError):
    status = 404
    code = "not_found"
    default_message = _("Not found.")


class Conflict(ApplicationError):
    status = 409
    code = "conflict"
    default_message = _("The request conflicts with the current state.")


class PermissionDenied(ApplicationError):
    status = 403
    code = "permission_denied"
    default_message = _("You do not have permission to do this.")


class NotAuthenticated(ApplicationError):
    status = 401
    code = "not_authenticated"
    default_message = _("Authentication is required.")


class RateLimited(ApplicationError):
    status = 429
    code = "rate_limited"
    default_message = _("Too many attempts; try again later.")


class DatabaseUnavailable(ApplicationError):
    """The database refused or dropped the work for a reason of its own (down, restarting, a
    lock held past its wait, a deadlock): nothing was written, and the same request can be sent
    again (an order's number makes a repeated earn one earn)."""

    status = 503
    code = "database_unavailable"
    default_message = _("The database is busy or unavailable; try again shortly.")


class ValueOutOfRange(ApplicationError):
    """A value passed validation but the database cannot store it: a number beyond its 64-bit
    integers, text longer than its column. Nothing was written."""

    status = 422
    code = "value_out_of_range"
    default_message = _("A value is too large or too long to be stored.")


class InternalError(ApplicationError):
    status = 500
    code = "internal_error"
    default_message = _("An internal error occurred; it has been logged.")


class PayloadTooLarge(ApplicationError):
    status = 413
    code = "payload_too_large"
    default_message = _("The request body is too large.")
