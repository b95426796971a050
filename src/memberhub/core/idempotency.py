"""Idempotency-Key for every effectful POST under /api/.

- first request: claims the key (committed at once, so a twin in flight sees it), runs,
  and stores a 2xx response in the same transaction as the effect;
- replay with the same body: the stored response, with `Idempotent-Replayed: true`;
- same key, different body: 422 `idempotency_key_reused`;
- same key while the first is still running: 409 `idempotency_in_flight`;
- a non-2xx outcome stores nothing (the effect was rolled back), so the client may retry;
- a claim older than `STALE_CLAIM` that never finished is taken to be abandoned (its worker
  died, or the database failed as the claim was let go) and is taken over by the next request
  with that key, instead of answering 409 for ever. Should the first request still be running,
  it finds its claim gone when it comes to store its answer: its effect is rolled back and it
  answers 409 `idempotency_in_flight`, so a key never takes effect twice.

What is kept holds no secret and no personal data in the clear:
- the caller is authenticated first (an API key that is unknown or revoked, a session that has
  ended or fails its CSRF check: the request goes on without the key and is refused as usual),
  and keys are per principal (`k:<api key id>`, `u:<user id>`), so a replay reaches only the
  principal that made the entry, and only while it may still call the API;
- the answer is sealed with the encryption keys (Fernet, core/crypto.py); one-time secrets a
  view marks with `withhold()` (a gift card's PIN, a new API key) are set to null before it is
  sealed, and a replay names them in `Idempotent-Replay-Withheld`;
- the fingerprint is an HMAC under the blind-index key (a body may hold a phone);
- `member_id` names the member whose personal data the answer shows (`shows_member()`, called
  where a member is presented), so erasing the member deletes it (`forget_member()`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from memberhub.core.crypto import decrypt_bytes, encrypt_bytes, keyed_digest
from memberhub.core.errors import Conflict, PayloadTooLarge, PermissionDenied, ValidationFailed
from memberhub.core.http import error_response
from memberhub.core.models import IdempotencyRecord
from memberhub.core.outlive import run_outliving

HEADER = "Idempotency-Key"
WITHHELD_HEADER = "Idempotent-Replay-Withheld"
MAX_KEY_LENGTH = 200
# Longer than any request runs: the database gives up on a lock after 30 s (SQLite's busy
# timeout) and the server stops a worker 20 s after SIGTERM.
STALE_CLAIM = timedelta(minutes=2)

log = logging.getLogger(__name__)


class _DiscardEffect(Exception):
    def __init__(self, response: HttpResponse) -> None:
        self.response = response


@dataclass
class _Capture:
    """What the view said about its answer while it ran (see `withhold`, `shows_member`)."""

    withheld: set[str] = field(default_factory=set)
    member_ids: set[int] = field(default_factory=set)
    unmasked: bool = False


@dataclass(frozen=True)
class _Caller:
    scope: str  # the principal: k:<api key id>, u:<user id>
    may_see_pii: Callable[[], bool]  # holds pii:read now (asked only to replay an unmasked answer)


_capture: ContextVar[_Capture | None] = ContextVar("idempotency_capture", default=None)


def withhold(*fields: str) -> None:
    """The answer being built holds one-time secrets in these JSON fields (at any depth): a
    replay answers them as null. No effect outside a request with an Idempotency-Key."""
    if (capture := _capture.get()) is not None:
        capture.withheld.update(fields)


def shows_member(member_id: int | None, *, unmasked: bool = False) -> None:
    """The answer being built shows this member's personal data (`unmasked`: in the clear):
    erasing them deletes it, and an unmasked one is replayed only to a caller still holding
    pii:read."""
    if member_id is not None and (capture := _capture.get()) is not None:
        capture.member_ids.add(member_id)
        capture.unmasked = capture.unmasked or unmasked


def forget_member(member_id: int) -> int:
    """Delete every kept answer that shows this member (erasure); returns how many. The keys
    stay spent until they expire: a retry answers 409 `idempotency_replay_erased` rather than
    running again (registering the erased person anew, say)."""
    return IdempotencyRecord.objects.filter(member_id=member_id, response_body__isnull=False).update(
        response_body=None, withheld="")


@contextmanager
def _capturing() -> Iterator[_Capture]:
    capture = _Capture()
    token = _capture.set(capture)
    try:
        yield capture
    finally:
        _capture.reset(token)


def _caller(request: HttpRequest) -> _Caller | None:
    """The principal sending the request, as the API will authenticate it (api.py): the bearer
    key alone when there is an Authorization header, else the logged-in staff user, who must
    pass the CSRF check as the view would make them. None: the API will refuse the request."""
    from memberhub.access.roles import Cap

    header = request.headers.get("Authorization")
    if header is not None:
        parts = header.split(" ")
        if parts[0].lower() != "bearer":
            return None
        from memberhub.access.services import apikey_authenticate

        principal = apikey_authenticate(" ".join(parts[1:]))
        if principal is None:
            return None
        return _Caller(f"k:{principal.id}", lambda: principal.can(Cap.PII_READ))
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not request.COOKIES.get(settings.SESSION_COOKIE_NAME):
        return None
    from ninja.utils import check_csrf

    if check_csrf(request):
        return None
    from memberhub.access.principal import staff_principal

    return _Caller(f"u:{user.pk}", lambda: staff_principal(user).can(Cap.PII_READ))


def _fingerprint(request: HttpRequest, body: bytes) -> str:
    return keyed_digest((request.method or "").encode(), request.get_full_path().encode(), body,
                        purpose="idempotency")


def _without(value: Any, fields: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: None if k in fields else _without(v, fields) for k, v in value.items()}
    if isinstance(value, list):
        return [_without(v, fields) for v in value]
    return value


def _sealed(response: HttpResponse, capture: _Capture) -> dict[str, Any]:
    """The columns that keep `response`: its body with the one-time secrets nulled, sealed."""
    content = response.content
    withheld = sorted(capture.withheld)
    if withheld:
        try:
            content = json.dumps(_without(json.loads(content), set(withheld)), ensure_ascii=False).encode()
        except ValueError:  # not JSON: nothing of it can be kept
            content = b""
    # an answer about several members (a merge) is kept for the one it shows; the others'
    # personal data is not in it
    member_id = min(capture.member_ids) if capture.member_ids else None
    return {"response_status": response.status_code, "response_body": encrypt_bytes(content),
            "response_content_type": response.get("Content-Type", "application/json"),
            "withheld": ",".join(withheld)[:100], "member_id": member_id, "pii_unmasked": capture.unmasked}


def _replay(record: IdempotencyRecord) -> HttpResponse:
    if record.response_body is None:
        return error_response(Conflict(
            _("The answer kept for this Idempotency-Key was deleted when its member was erased."),
            code="idempotency_replay_erased"))
    body = decrypt_bytes(bytes(record.response_body))
    if body is None:  # its key was taken out of MEMBERHUB_ENCRYPTION_KEYS: as good as expired
        return error_response(Conflict(_("The answer kept for this Idempotency-Key can no longer be read."),
                                       code="idempotency_replay_unavailable"))
    response = HttpResponse(body, status=record.response_status or 200,
                            content_type=record.response_content_type or "application/json")
    response["Idempotent-Replayed"] = "true"
    if record.withheld:
        response[WITHHELD_HEADER] = record.withheld
    return response


class IdempotencyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        key = request.headers.get(HEADER)
        if request.method != "POST" or key is None or not request.path.startswith("/api/"):
            return self.get_response(request)
        if not key or len(key) > MAX_KEY_LENGTH:
            return error_response(
                ValidationFailed(
                    _("The Idempotency-Key header must be 1 to %(max)d characters.") % {"max": MAX_KEY_LENGTH},
                    code="invalid_idempotency_key",
                )
            )
        try:
            body = request.body
        except RequestDataTooBig:
            return error_response(PayloadTooLarge())
        caller = _caller(request)
        if caller is None:  # authentication comes first: the API refuses this request itself
            return self.get_response(request)
        scope = caller.scope
        fingerprint = _fingerprint(request, body)

        # Look before claiming: a plain read does not wait for a writer, whereas the claim's
        # INSERT would queue on SQLite's write lock behind the twin in flight (IMMEDIATE mode)
        # and then replay or time out instead of answering 409.
        existing = IdempotencyRecord.objects.filter(scope=scope, key=key).first()
        if (existing is not None and existing.state == IdempotencyRecord.State.IN_FLIGHT
                and existing.created_at < timezone.now() - STALE_CLAIM):
            # abandoned: of two requests taking it over at once, one claims, the other gets 409
            IdempotencyRecord.objects.filter(pk=existing.pk, state=IdempotencyRecord.State.IN_FLIGHT).delete()
            existing = None
        record = None
        if existing is None:
            try:
                with transaction.atomic():
                    record = IdempotencyRecord.objects.create(scope=scope, key=key, fingerprint=fingerprint)
            except IntegrityError:
                existing = IdempotencyRecord.objects.filter(scope=scope, key=key).first()
        if record is None:
            if existing is not None and existing.fingerprint != fingerprint:
                return error_response(
                    ValidationFailed(
                        _("This Idempotency-Key was already used with a different request."),
                        code="idempotency_key_reused",
                    )
                )
            if existing is None or existing.state == IdempotencyRecord.State.IN_FLIGHT:
                return _in_flight()
            if existing.pii_unmasked and not caller.may_see_pii():  # lost pii:read since
                return error_response(PermissionDenied(detail={"required": ["pii:read"]}))
            return _replay(existing)

        try:
            with transaction.atomic(), _capturing() as capture:
                response = self.get_response(request)
                if not 200 <= response.status_code < 300 or getattr(response, "streaming", False):
                    raise _DiscardEffect(response)
                stored = IdempotencyRecord.objects.filter(pk=record.pk, state=IdempotencyRecord.State.IN_FLIGHT).update(
                    state=IdempotencyRecord.State.DONE, **_sealed(response, capture))
                if not stored:  # taken over as stale while this ran: the other request has the key
                    raise _DiscardEffect(_in_flight())
            return response
        except _DiscardEffect as discard:
            _release(record)
            run_outliving(discard.response)  # a refusal's record, rolled back with the effect
            return discard.response
        except BaseException:
            _release(record)
            raise


def _in_flight() -> HttpResponse:
    return error_response(
        Conflict(_("A request with this Idempotency-Key is still being processed."), code="idempotency_in_flight"))


def _release(record: IdempotencyRecord) -> None:
    """Let go of a claim whose request stored nothing, so the client may retry. If the
    database fails here too, the request's own answer still goes out; the claim is taken over
    once it is stale (`STALE_CLAIM`)."""
    try:
        IdempotencyRecord.objects.filter(pk=record.pk).delete()
    except DatabaseError:
        log.warning("could not release Idempotency-Key claim %s; it is taken over after %s", record.pk, STALE_CLAIM,
                    exc_info=True)
