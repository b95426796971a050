"""Delivering the event outbox: claim, run in one transaction with the done mark, retry, give up.

A claim is a conditional UPDATE (pending and due → running, with this attempt's own token),
the way healthchecks claims its alerts: of two workers racing for a row one updates it and the
other updates nothing and moves on. The done mark is conditional on the same token, so a worker
whose claim was taken back (it was too slow, see `sweep`) rolls its handler's effects back
instead of committing them a second time.
"""

from __future__ import annotations

import logging
import os
import socket
import traceback
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from memberhub.core import events
from memberhub.core.models import EventDelivery

log = logging.getLogger("memberhub.events")

State = EventDelivery.State
BACKOFF_FIRST_SECONDS = 30
BACKOFF_MAX_SECONDS = 3600
ERROR_CHARS = 2000
CLAIM_BATCH = 20


class _ClaimLost(Exception):
    """The row is no longer ours: another worker took it over after our claim timed out."""


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, ... at most an hour: a locked database recovers in seconds, a broken
    handler needs a fix, and the sweeper runs every minute anyway."""
    return timedelta(seconds=min(BACKOFF_FIRST_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_MAX_SECONDS))


def _token() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def deliver(pk: int, *, now: datetime | None = None) -> bool:
    """Claim one delivery and run its handler. True when it is done now; False when another
    worker has it, it is not due, or it failed (then it is pending again or dead)."""
    return deliver_many([pk], now=now) == 1


def deliver_many(ids: list[int], *, now: datetime | None = None) -> int:
    """Claim those of `ids` that are pending and due, in one statement, and run them one by
    one, each in its own transaction. Returns how many are done."""
    now = now or timezone.now()
    token = _token()
    due = EventDelivery.objects.filter(pk__in=ids, state=State.PENDING, due_at__lte=now)
    with transaction.atomic():
        # PostgreSQL: lock the rows in one order and pass over those another worker is claiming,
        # so two claims never deadlock (SQLite has one writer: there it is a plain UPDATE)
        mine = list(due.select_for_update(skip_locked=True).order_by("pk").values_list("pk", flat=True))
        EventDelivery.objects.filter(pk__in=mine, state=State.PENDING).update(
            state=State.RUNNING, claimed_by=token, claimed_at=timezone.now(), attempts=F("attempts") + 1)
    rows = list(EventDelivery.objects.filter(pk__in=mine, state=State.RUNNING, claimed_by=token).order_by("pk"))
    return sum(_run(row, token, now=now) for row in rows)


def _run(row: EventDelivery, token: str, *, now: datetime) -> bool:
    fn = events.handler_for(row.event, row.handler)
    try:
        with transaction.atomic():
            if fn is None:
                raise LookupError(f"no subscriber {row.handler} for {row.event} in this process")
            fn(**row.payload)
            marked = EventDelivery.objects.filter(pk=row.pk, state=State.RUNNING, claimed_by=token).update(
                state=State.DONE, done_at=timezone.now(), claimed_by="", claimed_at=None)
            if marked != 1:
                raise _ClaimLost
    except _ClaimLost:
        log.warning("event delivery %s was taken over by another worker; its effects are rolled back", row.pk)
        return False
    except Exception as exc:
        _failed(row, token, exc, now=now)
        return False
    return True


def _failed(row: EventDelivery, token: str, exc: Exception, *, now: datetime) -> None:
    dead = row.attempts >= settings.OUTBOX_MAX_ATTEMPTS
    error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()[-ERROR_CHARS:]}"
    (log.error if dead else log.warning)("event delivery %s (%s → %s) failed, attempt %s%s: %s", row.pk, row.event,
                                         row.handler, row.attempts, ", giving up" if dead else "", exc)
    EventDelivery.objects.filter(pk=row.pk, state=State.RUNNING, claimed_by=token).update(
        state=State.DEAD if dead else State.PENDING, due_at=now + backoff(row.attempts), claimed_by="",
        claimed_at=None, last_error=error)


def reclaim_stale(*, now: datetime | None = None) -> int:
    """Take back claims older than the timeout (the worker died or hangs): pending again, or
    dead when that was its last attempt. A hung worker that finishes later finds its token gone
    and rolls back (see `deliver`)."""
    now = now or timezone.now()
    stale = EventDelivery.objects.filter(
        state=State.RUNNING, claimed_at__lt=now - timedelta(seconds=settings.OUTBOX_CLAIM_TIMEOUT_SECONDS))
    reset = dict(claimed_by="", claimed_at=None, last_error="the worker did not finish within the claim timeout")
    n = stale.filter(attempts__gte=settings.OUTBOX_MAX_ATTEMPTS).update(state=State.DEAD, **reset)
    return n + stale.update(state=State.PENDING, due_at=now, **reset)


def sweep(*, now: datetime | None = None, limit: int = 500) -> int:
    """The periodic pass: stale claims back, then every pending delivery that is due (missed
    enqueues, retries after their back-off). Returns how many were done."""
    now = now or timezone.now()
    reclaim_stale(now=now)
    ids = list(EventDelivery.objects.filter(state=State.PENDING, due_at__lte=now)
               .order_by("due_at", "pk").values_list("pk", flat=True)[:limit])
    # claimed a few at a time, so that several workers share a backlog
    return sum(deliver_many(ids[i:i + CLAIM_BATCH], now=now) for i in range(0, len(ids), CLAIM_BATCH))


def retry(pk: int) -> bool:
    """Put a dead delivery back in the queue with fresh attempts (after its cause was fixed).
    False when it is not dead (already retried, or never was)."""
    now = timezone.now()
    requeued = EventDelivery.objects.filter(pk=pk, state=State.DEAD).update(
        state=State.PENDING, attempts=0, due_at=now, claimed_by="", claimed_at=None)
    if requeued:
        transaction.on_commit(lambda: events._enqueue([pk]))
    return requeued == 1


KEEP_DONE_DAYS = 14


def purge_done(*, now: datetime | None = None, days: int = KEEP_DONE_DAYS) -> int:
    """Forget deliveries done more than `days` ago (each registration leaves two rows); pending
    and dead ones stay whatever their age."""
    cutoff = (now or timezone.now()) - timedelta(days=days)
    deleted, _ = EventDelivery.objects.filter(state=State.DONE, done_at__lt=cutoff).delete()
    return deleted
