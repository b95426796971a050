"""The HTTP API: one NinjaAPI, its routers, authentication and the one error mapping."""

from __future__ import annotations

import json
import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import DatabaseError, DataError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.utils.translation import gettext_lazy as _
from ninja import NinjaAPI, Swagger
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.parser import Parser
from ninja.renderers import JSONRenderer
from ninja.security import HttpBearer, SessionAuth

from memberhub.access.principal import Principal, staff_principal
from memberhub.access.services import apikey_authenticate
from memberhub.core.errors import (
    ApplicationError,
    DatabaseUnavailable,
    InternalError,
    NotAuthenticated,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    ValidationFailed,
    ValueOutOfRange,
)
from memberhub.core.http import error_response, holds_nul, nul_refused
from memberhub.core.messages import domain_message
from memberhub.core.metrics import database_error
from memberhub.core.middleware import keyed_api_request
from memberhub.core.outlive import hand_on, run_outliving
from memberhub.core.validation import validation_errors
from memberhub.domain.errors import DomainError

log = logging.getLogger("memberhub.api")


class StrictJsonParser(Parser):
    def parse_body(self, request: HttpRequest) -> Any:
        try:
            body = request.body
        except RequestDataTooBig:
            raise PayloadTooLarge() from None
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise ValidationFailed(_("The request body is not valid JSON."), code="malformed_json", status=400) from None
        # U+0000 can only be there as an escape in UTF-8 JSON (a raw NUL byte: UTF-16 or -32)
        if (b"\\u0000" in body or b"\x00" in body) and holds_nul(data):
            raise nul_refused()
        return data


class Utf8JSONRenderer(JSONRenderer):
    """Chinese text as UTF-8, not \\u escapes: half the size and readable in logs."""

    json_dumps_params = {"ensure_ascii": False}


class ApiKeyAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Principal | None:
        return apikey_authenticate(token)


class StaffSessionAuth(SessionAuth):
    """A staff member logged in through the browser; CSRF is checked on unsafe methods."""

    def _get_key(self, request: HttpRequest) -> str | None:
        # No session cookie: not a browser session, so answer 401 rather than a CSRF 403. A
        # request with an Authorization header is judged by it alone (core/middleware.py).
        if not request.COOKIES.get(self.param_name) or keyed_api_request(request):
            return None
        return super()._get_key(request)

    def authenticate(self, request: HttpRequest, key: str | None) -> Principal | None:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return staff_principal(user)
        return None


api = NinjaAPI(
    title="memberhub API",
    version="1",
    description="Membership and loyalty management. Errors: {code, message, detail}.",
    urls_namespace="api",
    auth=[ApiKeyAuth(), StaffSessionAuth()],
    parser=StrictJsonParser(),
    renderer=Utf8JSONRenderer(),
    docs_url="/docs",
    # No online validator: it would send the spec's address to validator.swagger.io
    docs=Swagger(settings={"validatorUrl": None}),
)


@api.exception_handler(ApplicationError)
def _application_error(request: HttpRequest, exc: ApplicationError) -> HttpResponse:
    response = error_response(exc)
    hand_on(exc, response)  # what a refusal must record despite the rollback (core/outlive.py)
    run_outliving(response)  # now, unless the Idempotency-Key middleware still holds a transaction
    return response


@api.exception_handler(DomainError)
def _domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
    """A business rule refused the operation; its code and numbers pass through unchanged."""
    return error_response(ApplicationError(domain_message(exc), code=exc.code, status=422, detail=exc.params))


@api.exception_handler(NinjaValidationError)
def _validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    return error_response(ValidationFailed(detail={"errors": validation_errors(exc.errors)}))


@api.exception_handler(AuthenticationError)
def _auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return error_response(NotAuthenticated())


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if isinstance(exc.__cause__, ApplicationError):  # raised by our parser, wrapped by ninja
        return error_response(exc.__cause__)
    if exc.status_code == 403 and "CSRF" in exc.message:
        return error_response(PermissionDenied(_("CSRF check failed: send the X-CSRFToken header."), code="csrf_failed"))
    code = {400: "bad_request", 403: "permission_denied", 404: "not_found", 405: "method_not_allowed",
            429: "rate_limited"}.get(exc.status_code, "http_error")
    return error_response(ApplicationError(exc.message, code=code, status=exc.status_code))


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return error_response(NotFound())


@api.exception_handler(DjangoPermissionDenied)
def _forbidden(request: HttpRequest, exc: DjangoPermissionDenied) -> HttpResponse:
    return error_response(PermissionDenied())


@api.exception_handler(RequestDataTooBig)
def _too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return error_response(PayloadTooLarge())


@api.exception_handler(MultiPartParserError)
@api.exception_handler(SuspiciousOperation)
def _bad_request(request: HttpRequest, exc: Exception) -> HttpResponse:
    """A body Django will not read (a broken multipart upload, too many fields or files): 400,
    as Django itself answers them outside the API."""
    log.warning("bad request on %s %s: %s", request.method, request.path, exc)
    return error_response(ValidationFailed(_("The request body could not be read."), code="malformed_body",
                                           status=400))


@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
def _database_unavailable(request: HttpRequest, exc: DatabaseError) -> HttpResponse:
    """The database is down, restarting, or gave up waiting for a lock (SQLite's busy timeout,
    PostgreSQL's lock timeout or a deadlock): the transaction was rolled back, so the client
    may try again. Logged with the cause for the operator. SQLite's "integer overflow" (a sum
    past 64 bits) is no outage: trying again fails again, so it is no 503."""
    if "integer overflow" in str(exc):
        log.error("integer overflow in the database on %s %s: %s", request.method, request.path, exc)
        return error_response(ValueOutOfRange())
    log.warning("database unavailable on %s %s: %s", request.method, request.path, exc, exc_info=exc)
    database_error(exc)
    return error_response(DatabaseUnavailable())


@api.exception_handler(DataError)
def _out_of_range(request: HttpRequest, exc: DataError) -> HttpResponse:
    """PostgreSQL refused a value (a number out of its range, text longer than its column)."""
    log.warning("value refused by the database on %s %s: %s", request.method, request.path, exc)
    return error_response(ValueOutOfRange())


@api.exception_handler(OverflowError)
def _overflow(request: HttpRequest, exc: OverflowError) -> HttpResponse:
    """SQLite's driver cannot bind an integer beyond 64 bits (PostgreSQL answers DataError); a
    time at the edge of the calendar (year 1 or 9999 with an offset) has no UTC equivalent."""
    if "date value out of range" in str(exc):
        return error_response(ValidationFailed(
            _("A date or time is outside the range that can be stored (years 1 to 9999 in UTC)."),
            code="datetime_out_of_range"))
    if "SQLite INTEGER" not in str(exc):  # another overflow is a bug
        return _unexpected(request, exc)
    log.warning("value refused by the database on %s %s: %s", request.method, request.path, exc)
    return error_response(ValueOutOfRange())


@api.exception_handler(Exception)
def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(InternalError())


# Each app that serves HTTP exposes `router` in its api.py; mounted at the given prefix.
# Django tries the routes in this order on every request, so the till's calls come first
# (an earn tried 27 URL patterns to find its view, now 5); the prefixes do not overlap, so
# the order changes nothing else.
ROUTERS = {
    "/loyalty": "memberhub.loyalty.api.router",
    "/checkout": "memberhub.checkout.api.router",
    "/coupons": "memberhub.coupons.api.router",
    "/wallet": "memberhub.wallet.api.router",
    "/members": "memberhub.members.api.router",
    "/auth": "memberhub.access.api.router",
    "/stores": "memberhub.stores.api.router",
    "/audit": "memberhub.audit.api.router",
    "/rewards": "memberhub.coupons.rewards_api.router",
    "/analytics": "memberhub.analytics.api.router",
}


def _routers() -> None:
    from django.utils.module_loading import import_string

    for prefix, dotted in ROUTERS.items():
        api.add_router(prefix, import_string(dotted))


_routers()
