"""The periodic work as plain functions of `now` (the huey tasks in tasks.py call them).

Each account is handled in its own short transaction with its row locked, so a job never
holds up the till for long and a crash loses at most one account's step (re-run safe).
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from memberhub.core import events
from memberhub.core.errors import Conflict
from memberhub.domain.member_status import Act, statuses_allowing
from memberhub.domain.points_lots import last_valid_day
from memberhub.loyalty import ledger
from memberhub.loyalty.models import PointsEntry, PointsLot
from memberhub.loyalty.points import holds_expire
from memberhub.loyalty.programme import rules_current
from memberhub.loyalty.tiering import tiers_evaluate_all
from memberhub.members.models import Member
from memberhub.members.services import member_act_check

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
    """Write off every lot that has expired with points left (积分过期). A frozen member's lots
    are left alone: on unfreeze they are extended by the time frozen."""
    now = now or timezone.now()
    expired = 0
    while True:
        members = _accounts(PointsLot.objects.filter(remaining__gt=0, expires_at__lte=now)
                            .exclude(account__member__status=Member.Status.FROZEN))
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
            # only the lots this run marks are announced: a run alongside (a second worker, the
            # command by hand) read the same lots, and announced them too
            claimed = set(PointsLot.objects.select_for_update().filter(
                pk__in=[pk for pk, *_ in lots], reminded_at__isnull=True).values_list("pk", flat=True))
            PointsLot.objects.filter(pk__in=claimed).update(reminded_at=now)
            grouped: dict[tuple[int, str], int] = defaultdict(int)
            for pk, member_id, remaining, expires_at in lots:
                if pk not in claimed:
                    continue
                assert expires_at is not None  # only expiring lots are reminded
                grouped[(member_id, last_valid_day(expires_at, timezone=rules.timezone).isoformat())] += remaining
            for (member_id, last_day), points in sorted(grouped.items()):
                events.emit(events.POINTS_EXPIRING, member_id=member_id, points=points, last_valid_day=last_day)
                sent += 1


BIRTHDAY_RULE = "birthday"


def birthdays_award(*, now: datetime | None = None) -> dict[str, int]:
    """生日礼: for every live member whose birthday is today in the programme's timezone
    (29 February counts on 28 February in other years), credit the tier's
    ``birthday_points`` and emit ``member.birthday`` — once per member and year.

    The entry's reference ``birthday:<year>`` is unique per account, so a re-run (the task
    runs hourly to survive a worker that was down at midnight) awards nothing twice; a tier
    without birthday points still gets a zero entry, which marks the year as done."""
    now = now or timezone.now()
    rules = rules_current()
    today = now.astimezone(ZoneInfo(rules.timezone)).date()
    born = Q(birthday__month=today.month, birthday__day=today.day)
    if (today.month, today.day) == (2, 28) and not calendar.isleap(today.year):
        born |= Q(birthday__month=2, birthday__day=29)
    reference = f"birthday:{today.year}"
    codes = {t.code for t in rules.ladder.tiers}
    counts = {"members": 0, "points": 0}
    # a frozen member earns nothing, birthday gifts included (domain.member_status)
    for member_id in Member.objects.filter(born, status__in=statuses_allowing(Act.EARN)).order_by("pk") \
            .values_list("pk", flat=True):
        with transaction.atomic():
            account = ledger.account_lock(member_id)
            try:
                member_act_check(member_id, Act.EARN)
            except Conflict:
                continue  # frozen since the list was read
            if PointsEntry.objects.filter(account=account, rule=BIRTHDAY_RULE, reference=reference).exists():
                continue
            tier = account.tier if account.tier in codes else rules.ladder.tiers[0].code
            points = rules.benefits_for(tier).birthday_points
            why = ledger.Why(rule=BIRTHDAY_RULE, actor="system:birthday", reason=f"birthday {today.year}",
                             reference=reference)
            ledger.housekeep(account, now)
            ledger.credit(account, points, kind=ledger.Kind.EARN, at=now, now=now, why=why, earned=True,
                          terms=ledger.lot_terms(rules=rules, earned_at=now),
                          trace=[{"step": "birthday_points", "value": str(points)}, {"step": "tier", "value": tier}])
            events.emit(events.MEMBER_BIRTHDAY, member_id=member_id, year=today.year, tier=tier, points=points,
                        coupon_template=rules.benefits_for(tier).birthday_coupon_template)
            counts["members"] += 1
            counts["points"] += points
    return counts


def nightly(*, now: datetime | None = None) -> dict[str, object]:
    """Everything the night shift does, in a safe order."""
    clock = now is None
    now = now or timezone.now()
    return {
        "holds_released": holds_expire(now=now),
        "pending_released": pending_release(now=now),
        "expired": points_expire(now=now),
        "reminders": expiry_remind(now=now),
        "tiers": tiers_evaluate_all(now=None if clock else now),  # on the clock: each member as of its turn
        "birthdays": birthdays_award(now=now),
    }
