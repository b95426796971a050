"""Business events: one app says what happened, others react — durably, through the outbox.

    events.emit("member.registered", member_id=42)

    @events.subscribe("member.registered")      # durable: an effect (points, a coupon, a message)
    def give_welcome_coupon(*, member_id: int, **_: object) -> None: ...

    @events.observe("purchase.recorded")         # in-process: counts and logs only
    def count(**_: object) -> None: ...

`emit` writes one outbox row (`EventDelivery`) per durable subscriber in the caller's
transaction: a rolled-back change leaves no event, a committed one cannot lose it. After the
commit the rows are handed to the job consumer; each is claimed by a conditional UPDATE and
its handler runs in one transaction with the row's done mark, so a failure rolls both back and
the retry (with back-off, then `dead` for a person to look at) takes effect once. An event
with no durable subscriber writes nothing (the till emits `purchase.recorded` on its hot path).
Observers run on commit in the emitting process, never retried. See docs/events.md.
Event names are listed here so that every producer and consumer agree on them.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.utils import timezone

log = logging.getLogger("memberhub.events")

MEMBER_REGISTERED = "member.registered"
MEMBER_BIRTHDAY = "member.birthday"
TIER_UPGRADED = "tier.upgraded"
TIER_CHANGED = "tier.changed"
POINTS_EXPIRING = "points.expiring"
PURCHASE_RECORDED = "purchase.recorded"
COUPON_EXPIRING = "coupon.expiring"

Handler = Callable[..., None]
# event → handler key → function; the key is what the outbox row names, so the worker that
# claims a row (maybe another process) finds the same function.
_durable: dict[str, dict[str, Handler]] = defaultdict(dict)
_observers: dict[str, list[Handler]] = defaultdict(list)


def handler_key(fn: Handler) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def subscribe(name: str) -> Callable[[Handler], Handler]:
    """A durable subscriber: delivered at least once by the outbox, and exactly once in effect
    as long as it writes only through this database connection and does not commit itself."""

    def register(fn: Handler) -> Handler:
        _durable[name][handler_key(fn)] = fn
        return fn

    return register


def observe(name: str) -> Callable[[Handler], Handler]:
    """An in-process observer (metrics, logs): runs on commit, its failure is logged, no retry."""

    def register(fn: Handler) -> Handler:
        if fn not in _observers[name]:
            _observers[name].append(fn)
        return fn

    return register


def unsubscribe(name: str, fn: Handler) -> None:
    if _durable[name].get(handler_key(fn)) is fn:
        del _durable[name][handler_key(fn)]
    if fn in _observers[name]:
        _observers[name].remove(fn)


def handler_for(name: str, key: str) -> Handler | None:
    return _durable.get(name, {}).get(key)


def _observe(name: str, payload: dict[str, Any]) -> None:
    for fn in list(_observers.get(name, ())):
        try:
            fn(**payload)
        except Exception:  # an observer only counts or logs: it must not block the others
            log.exception("event observer %s for %s failed", handler_key(fn), name)


def emit(name: str, **payload: Any) -> None:
    """Record the event in the current transaction (delivered after it commits; at once when
    there is none). The payload is JSON: ids and figures, never personal data."""
    handlers = _durable.get(name)
    if handlers:
        from memberhub.core.models import EventDelivery

        # refuse what would not come back the same from the JSON column (dates, Decimals, models)
        if json.loads(json.dumps(payload)) != payload:
            raise TypeError(f"event {name}: the payload must be plain JSON (ids and figures)")
        now = timezone.now()
        rows = EventDelivery.objects.bulk_create([
            EventDelivery(event=name, handler=key, payload=payload, due_at=now, created_at=now)
            for key in handlers
        ])
        ids = [row.pk for row in rows]
        transaction.on_commit(lambda: _enqueue(ids))
    if _observers.get(name):
        transaction.on_commit(lambda: _observe(name, payload))


def _enqueue(ids: list[int]) -> None:
    """The fast path: a job for the rows just committed. If the queue is down the rows wait
    for the sweeper, which runs every minute."""
    from memberhub.core.tasks import outbox_deliver_task

    try:
        outbox_deliver_task(ids)
    except Exception:
        log.exception("could not enqueue event deliveries %s; the sweeper will take them", ids)
