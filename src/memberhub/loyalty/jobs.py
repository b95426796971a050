"""The periodic work as plain functions of `now` (the huey tasks in tasks.py call them).

Each account is handled in its own short transaction with its row locked, so a job never
holds up the till for long and a crash loses at most one account's step (re-run safe).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from memberhub.core import events
from memberhub.domain.points_lots import last_valid_day
from memberhub.loyalty import ledger
from memberhub.loyalty.models import PointsLot
from memberhub.loyalty.points import holds_expire
from memberhub.loyalty.programme import rules_current
from memberhub.loyalty.tiering import tiers_evaluate_all

BATCH = 5000


def _accounts(qs: object) -> list[int]:
    return sorted(set(qs.values_list("account__member_id", flat=True)[:BATCH]))  # type: ignore[attr-defined]


def pending_release(*, now: datetime | None = None) -> int:
    """Pending points whose return window has ended become available."""
    now = now or timezone.now()
    released = 0
    while True:
        members = _accounts(PointsLot.objects.filter(pending=True, available_at__lte=now))
        if not members:
            return released
        for member_id in members:
            with transaction.atomic():
                released += ledger.release_due(ledger.account_lock(member_id), now)


def points_expire(*, now: datetime | None = None) -> int:
    """Write off every lot that has expired with points left (积分过期)."""
    now = now or timezone.now()
    expired = 0
    while True:
        members = _accounts(PointsLot.objects.filter(remaining__gt=0, expires_at__lte=now))
        if not members:
            return expired
        for member_id in members:
            with transaction.atomic():
                expired += ledger.expire_due(ledger.account_lock(member_id), now)


def expiry_remind(*, now: datetime | None = None, days: int | None = None) -> int:
    """Fire `points.expiring` once per member and expiry day for lots expiring within N days,
    so messaging can send a reminder. Each lot is announced once (`reminded_at`)."""
    now = now or timezone.now()
    rules = rules_current()
    horizon = now + timedelta(days=rules.expiry_reminder_days if days is None else days)
    sent = 0
    while True:
        lots = list(PointsLot.objects.filter(remaining__gt=0, reminded_at__isnull=True, expires_at__gt=now,
                                             expires_at__lte=horizon)
                    .values_list("pk", "account__member_id", "remaining", "expires_at")[:BATCH])
        if not lots:
            return sent
        with transaction.atomic():
            PointsLot.objects.filter(pk__in=[pk for pk, *_ in lots], reminded_at__isnull=True).update(reminded_at=now)
            grouped: dict[tuple[int, str], int] = defaultdict(int)
            for _pk, member_id, remaining, expires_at in lots:
                grouped[(member_id, last_valid_day(expires_at, timezone=rules.timezone).isoformat())] += remaining
            for (member_id, last_day), points in sorted(grouped.items()):
                events.emit(events.POINTS_EXPIRING, member_id=member_id, points=points, last_valid_day=last_day)
                sent += 1


def nightly(*, now: datetime | None = None) -> dict[str, object]:
    """Everything the night shift does, in a safe order."""
    now = now or timezone.now()
    return {
        "holds_released": holds_expire(now=now),
        "pending_released": pending_release(now=now),
        "expired": points_expire(now=now),
        "reminders": expiry_remind(now=now),
        "tiers": tiers_evaluate_all(now=now),
    }
