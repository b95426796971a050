"""Business events: one app says what happened, others react, after the transaction commits.

    events.emit("member.registered", member_id=42)
    @events.subscribe("member.registered")
    def give_welcome_coupon(*, member_id: int, **_: object) -> None: ...

Handlers run on commit (never for a rolled-back change) in the same process; a handler that
does slow work enqueues a job. A failing handler is logged and does not affect the others.
Event names are listed here so that every producer and consumer agree on them.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from django.db import transaction

log = logging.getLogger("memberhub.events")

MEMBER_REGISTERED = "member.registered"
MEMBER_BIRTHDAY = "member.birthday"
TIER_UPGRADED = "tier.upgraded"
TIER_CHANGED = "tier.changed"
POINTS_EXPIRING = "points.expiring"
PURCHASE_RECORDED = "purchase.recorded"
COUPON_EXPIRING = "coupon.expiring"

Handler = Callable[..., None]
_handlers: dict[str, list[Handler]] = defaultdict(list)


def subscribe(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        if fn not in _handlers[name]:
            _handlers[name].append(fn)
        return fn

    return register


def unsubscribe(name: str, fn: Handler) -> None:
    if fn in _handlers[name]:
        _handlers[name].remove(fn)


def _dispatch(name: str, payload: dict[str, Any]) -> None:
    for fn in list(_handlers.get(name, ())):
        try:
            fn(**payload)
        except Exception:  # one broken subscriber must not block the others
            log.exception("event handler %s for %s failed", getattr(fn, "__qualname__", fn), name)


def emit(name: str, **payload: Any) -> None:
    """Deliver after the current transaction commits (at once outside a transaction)."""
    transaction.on_commit(lambda: _dispatch(name, payload))
