"""Points lots: pending → available → expired, and which lot a spend draws from.

Every earn creates a lot (积分批次). A lot is *pending* until ``available_at`` (the
return window, 退货期), spendable until ``expires_at`` (exclusive: at that instant it
has expired) and drained by spending oldest-expiring first, so members lose as few
points to expiry (积分过期) as possible. Calendar rules (N months later, end of next
year) are evaluated in the programme's local timezone because members read dates on
their receipts, not in UTC.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from memberhub.domain.errors import DomainError

DEFAULT_TIMEZONE = "Asia/Shanghai"
_ONE_MICROSECOND = timedelta(microseconds=1)


class InsufficientPoints(DomainError):
    """The spendable lots do not cover the requested amount."""

    code = "insufficient_points"


class InvalidAmount(DomainError):
    """An amount of points is out of range for the operation (e.g. negative)."""

    code = "invalid_amount"


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


def add_months(moment: datetime, months: int, *, timezone: str = DEFAULT_TIMEZONE) -> datetime:
    """Same local wall-clock time ``months`` later (or earlier), day clamped to month end.

    31 Jan + 1 month is 28/29 Feb: members expect "one month" to stay inside the month.
    """
    _require_aware(moment, "moment")
    tz = ZoneInfo(timezone)
    local = moment.astimezone(tz)
    index = local.year * 12 + (local.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    return local.replace(year=year, month=month, day=day, tzinfo=tz)


def local_midnight(day: date, *, timezone: str = DEFAULT_TIMEZONE) -> datetime:
    """The instant a local calendar day starts."""
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(timezone))


def last_valid_day(expires_at: datetime, *, timezone: str = DEFAULT_TIMEZONE) -> date:
    """The last local date on which something expiring (exclusively) at ``expires_at`` is usable."""
    return (expires_at - _ONE_MICROSECOND).astimezone(ZoneInfo(timezone)).date()


def expiry_month(expires_at: datetime, *, timezone: str = DEFAULT_TIMEZONE) -> date:
    """The month (its first day) in which something expiring at ``expires_at`` is last usable.

    The one rule for "which month do these points expire in", used by the member's expiry
    view and by the programme's liability alike: a lot expiring at 00:00 on 1 January local
    time (2027-12-31T16:00Z in Shanghai) expires in December, its last valid day.
    """
    return last_valid_day(expires_at, timezone=timezone).replace(day=1)


class ExpiryKind(StrEnum):
    MONTHS_AFTER = "months_after"  # valid through the same date N months after earning
    END_OF_NEXT_YEAR = "end_of_next_year"  # 次年年底: valid through 31 Dec of the following year
    NEVER = "never"


@dataclass(frozen=True, slots=True)
class ExpiryPolicy:
    """How long earned points live; set once per programme by the operator."""

    kind: ExpiryKind = ExpiryKind.END_OF_NEXT_YEAR
    months: int = 12
    timezone: str = DEFAULT_TIMEZONE

    def __post_init__(self) -> None:
        if self.kind is ExpiryKind.MONTHS_AFTER and self.months < 1:
            raise ValueError("months must be >= 1 for months_after expiry")


def lot_expiry(*, earned_at: datetime, policy: ExpiryPolicy) -> datetime | None:
    """The exclusive expiry instant of a lot earned at ``earned_at``; ``None`` = never.

    Expiry falls on a local midnight so a lot is valid for the whole of its last day —
    "valid until 31 Dec" must not mean "until 10:32 on 31 Dec".
    """
    _require_aware(earned_at, "earned_at")
    local_day = earned_at.astimezone(ZoneInfo(policy.timezone)).date()
    if policy.kind is ExpiryKind.NEVER:
        return None
    if policy.kind is ExpiryKind.END_OF_NEXT_YEAR:
        return local_midnight(date(local_day.year + 2, 1, 1), timezone=policy.timezone)
    anniversary = add_months(local_midnight(local_day, timezone=policy.timezone), policy.months,
                             timezone=policy.timezone)
    return local_midnight(anniversary.date() + timedelta(days=1), timezone=policy.timezone)


def pending_until(*, earned_at: datetime, return_window_days: int) -> datetime:
    """When points from a purchase become spendable: the end of the return window (退货期).

    Pass the instant the window starts (payment, or delivery for shipped orders). Points
    stay pending until then so a refund inside the window voids them instead of
    clawing back points the member may already have spent.
    """
    _require_aware(earned_at, "earned_at")
    if return_window_days < 0:
        raise ValueError("return_window_days must be >= 0")
    return earned_at + timedelta(days=return_window_days)


@dataclass(frozen=True, slots=True)
class Lot:
    """One batch of earned points. ``points`` is what was earned, ``remaining`` what is left."""

    lot_id: str
    points: int
    remaining: int
    earned_at: datetime
    expires_at: datetime | None = None
    available_at: datetime | None = None  # None: available as soon as earned

    def is_pending(self, now: datetime) -> bool:
        return self.available_at is not None and now < self.available_at

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def is_spendable(self, now: datetime) -> bool:
        return self.remaining > 0 and not self.is_pending(now) and not self.is_expired(now)


@dataclass(frozen=True, slots=True)
class LotDraw:
    lot_id: str
    points: int


def draw_order_key(lot: Lot) -> tuple[int, datetime, datetime, str]:
    """Oldest expiry first, never-expiring last; ties by earned time then lot id (deterministic)."""
    never = lot.expires_at is None
    return (1 if never else 0, lot.expires_at or lot.earned_at, lot.earned_at, lot.lot_id)


def spendable_points(*, lots: Iterable[Lot], now: datetime) -> int:
    """Points the member can spend right now (excludes pending and expired lots)."""
    return sum(lot.remaining for lot in lots if lot.is_spendable(now))


def lot_draw(*, lots: Sequence[Lot], amount: int, now: datetime) -> tuple[LotDraw, ...]:
    """Which lots a spend of ``amount`` points draws from, oldest-expiring first.

    Pending and expired lots are skipped. Raises ``InsufficientPoints`` (with
    ``available``/``requested`` params) rather than drawing part of the amount: a
    spend either happens whole or not at all.
    """
    _require_aware(now, "now")
    if amount < 0:
        raise InvalidAmount("amount must be >= 0", amount=amount)
    usable = sorted((lot for lot in lots if lot.is_spendable(now)), key=draw_order_key)
    available = sum(lot.remaining for lot in usable)
    if available < amount:
        raise InsufficientPoints(
            f"{available} points available, {amount} requested", available=available, requested=amount
        )
    draws: list[LotDraw] = []
    left = amount
    for lot in usable:
        if left == 0:
            break
        take = min(lot.remaining, left)
        draws.append(LotDraw(lot_id=lot.lot_id, points=take))
        left -= take
    return tuple(draws)


@dataclass(frozen=True, slots=True)
class LotExpiry:
    lot_id: str
    points: int
    expires_at: datetime


def lots_expired(*, lots: Iterable[Lot], now: datetime) -> tuple[LotExpiry, ...]:
    """Lots past their expiry that still hold points: what the nightly expiry job writes off."""
    _require_aware(now, "now")
    found = [
        LotExpiry(lot_id=lot.lot_id, points=lot.remaining, expires_at=lot.expires_at)
        for lot in lots
        if lot.remaining > 0 and lot.expires_at is not None and lot.is_expired(now)
    ]
    return tuple(sorted(found, key=lambda e: (e.expires_at, e.lot_id)))


class BucketBy(StrEnum):
    MONTH = "month"
    DATE = "date"


@dataclass(frozen=True, slots=True)
class ExpiryBucket:
    """Points that stop being usable after ``last_day`` (bucket by date) or during the month."""

    period: date  # the last valid day (by date) or the first day of the month (by month)
    points: int
    lots: int


def expiry_buckets(
    *, lots: Iterable[Lot], now: datetime, by: BucketBy = BucketBy.MONTH, timezone: str = DEFAULT_TIMEZONE
) -> tuple[ExpiryBucket, ...]:
    """"What expires when" (即将过期积分): unexpired remaining points grouped by their last valid day.

    Pending lots are included — they will expire too. Never-expiring lots are left out.
    A lot expiring at 00:00 on 1 Jan belongs to December: its last valid day is 31 Dec.
    """
    _require_aware(now, "now")
    points: dict[date, int] = defaultdict(int)
    counts: dict[date, int] = defaultdict(int)
    for lot in lots:
        if lot.remaining <= 0 or lot.expires_at is None or lot.is_expired(now):
            continue
        key = expiry_month(lot.expires_at, timezone=timezone) if by is BucketBy.MONTH \
            else last_valid_day(lot.expires_at, timezone=timezone)
        points[key] += lot.remaining
        counts[key] += 1
    return tuple(ExpiryBucket(period=k, points=points[k], lots=counts[k]) for k in sorted(points))
