"""Idempotency-Key for every effectful POST under /api/.

- first request: claims the key (committed at once, so a twin in flight sees it), runs,
  and stores a 2xx response in the same transaction as the effect;
- replay with the same body: the stored response, with `Idempotent-Replayed: true`;
- same key, different body: 422 `idempotency_key_reused`;
- same key while the first is still running: 409 `idempotency_in_flight`;
- a non-2xx outcome stores nothing (the effect was rolled back), so the client may retry;
- a claim whose process is gone (killed, crashed, or the server restarted since: the claim
  records its owner, core/owner.py) is taken over at once by the next request with that key;
  one that cannot be checked (made on another host) once it is older than `STALE_CLAIM`, or
  when the database failed as the claim was let go. Should the first request still be running,
  it finds its claim taken when it comes to store its answer: its effect is rolled back and it
  answers 409 `idempotency_in_flight`, so a key never takes effect twice.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import timedelta

from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from memberhub.core import owner
from memberhub.core.errors import Conflict, PayloadTooLarge, ValidationFailed
from memberhub.core.http import error_response
from memberhub.core.models import IdempotencyRecord

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 200
# Longer than any request runs: the database gives up on a lock after 30 s (SQLite's busy
# timeout) and the server stops a worker 20 s after SIGTERM.
STALE_CLAIM = timedelta(minutes=2)

log = logging.getLogger(__name__)


class _DiscardEffect(Exception):
    def __init__(self, response: HttpResponse) -> None:
        self.response = response


def _scope(request: HttpRequest) -> str:
    auth = request.headers.get("Authorization")
    if auth:
        return "h:" + hashlib.sha256(auth.encode()).hexdigest()[:64]
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"u:{user.pk}"
    return "anon"


def _fingerprint(request: HttpRequest, body: bytes) -> str:
    h = hashlib.sha256()
    h.update(request.method.encode() if request.method else b"")
    h.update(b"\0" + request.get_full_path().encode() + b"\0")
    h.update(body)
    return h.hexdigest()


def _replay(record: IdempotencyRecord) -> HttpResponse:
    response = HttpResponse(
        bytes(record.response_body or b""),
        status=record.response_status or 200,
        content_type=record.response_content_type or "application/json",
    )
    response["Idempotent-Replayed"] = "true"
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
        scope, fingerprint = _scope(request), _fingerprint(request, body)

        # Look before claiming: a plain read does not wait for a writer, whereas the claim's
        # INSERT would queue on SQLite's write lock behind the twin in flight (IMMEDIATE mode)
        # and then replay or time out instead of answering 409.
        existing = IdempotencyRecord.objects.filter(scope=scope, key=key).first()
        record = None
        if existing is not None and _abandoned(existing):
            record = _take_over(existing, fingerprint)
            if record is None:  # another request took it over first: it is in flight
                existing = IdempotencyRecord.objects.filter(scope=scope, key=key).first()
        elif existing is None:
            try:
                with transaction.atomic():
                    record = IdempotencyRecord.objects.create(scope=scope, key=key, fingerprint=fingerprint,
                                                              owner=owner.identity())
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
            return _replay(existing)

        try:
            with transaction.atomic():
                response = self.get_response(request)
                if not 200 <= response.status_code < 300 or getattr(response, "streaming", False):
                    raise _DiscardEffect(response)
                stored = IdempotencyRecord.objects.filter(pk=record.pk, state=IdempotencyRecord.State.IN_FLIGHT,
                                                          owner=record.owner).update(
                    state=IdempotencyRecord.State.DONE, response_status=response.status_code,
                    response_body=response.content,
                    response_content_type=response.get("Content-Type", "application/json"))
                if not stored:  # taken over as stale while this ran: the other request has the key
                    raise _DiscardEffect(_in_flight())
            return response
        except _DiscardEffect as discard:
            _release(record)
            return discard.response
        except BaseException:
            _release(record)
            raise


def _abandoned(record: IdempotencyRecord) -> bool:
    """An in-flight claim nobody will finish: its process is gone (killed, or the server
    restarted since: core/owner.py), or, when that cannot be told (another host), it is older
    than STALE_CLAIM."""
    if record.state != IdempotencyRecord.State.IN_FLIGHT:
        return False
    return owner.gone(record.owner) or record.created_at < timezone.now() - STALE_CLAIM


def _take_over(record: IdempotencyRecord, fingerprint: str) -> IdempotencyRecord | None:
    """Claim an abandoned key with a conditional UPDATE (of two requests taking it over at
    once, one wins; the other answers 409). The claim is void: the request it held stored
    nothing, so the new one may carry another body. None if another request won."""
    me, now = owner.identity(), timezone.now()
    won = IdempotencyRecord.objects.filter(pk=record.pk, state=IdempotencyRecord.State.IN_FLIGHT,
                                           owner=record.owner, created_at=record.created_at).update(
        owner=me, created_at=now, fingerprint=fingerprint)
    if not won:
        return None
    record.owner, record.created_at, record.fingerprint = me, now, fingerprint
    return record


def _in_flight() -> HttpResponse:
    return error_response(
        Conflict(_("A request with this Idempotency-Key is still being processed."), code="idempotency_in_flight"))


def _release(record: IdempotencyRecord) -> None:
    """Let go of a claim whose request stored nothing, so the client may retry. If the
    database fails here too, the request's own answer still goes out; the claim is taken over
    once it is stale (`STALE_CLAIM`)."""
    try:
        IdempotencyRecord.objects.filter(pk=record.pk, owner=record.owner).delete()  # unless taken over
    except DatabaseError:
        log.warning("could not release Idempotency-Key claim %s; it is taken over after %s", record.pk, STALE_CLAIM,
                    exc_info=True)
