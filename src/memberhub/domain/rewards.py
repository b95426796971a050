"""Rewards catalogue (积分商城): may this member exchange this reward, and fulfilment states.

``reward_exchange_check`` is the pure decision before points are spent: price (points, or
points + cash fen), stock, per-member and per-period limits, tiers. The counts it is given
come from the database; the service must still claim stock with a conditional UPDATE and
spend points through the points ledger in the same transaction.

``fulfilment_transition`` is the only way an exchange order changes state, so an illegal
move (delivering a cancelled order, cancelling a delivered one) is refused in one place.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import ClassVar

from memberhub.domain.coupon_rules import require_aware
from memberhub.domain.errors import DomainError


class RewardInvalid(DomainError):
    code = "reward_invalid"


class IllegalFulfilmentTransition(DomainError):
    code = "illegal_fulfilment_transition"


class LimitPeriod(StrEnum):
    DAY = "day"
    WEEK = "week"  # Monday to Sunday, as Chinese calendars count a week
    MONTH = "month"
    YEAR = "year"


@dataclass(frozen=True, slots=True)
class PeriodLimit:
    """每月限兑2次 = ``PeriodLimit(count=2, period=LimitPeriod.MONTH)``."""

    count: int
    period: LimitPeriod


@dataclass(frozen=True, slots=True)
class RewardItem:
    reward_id: str
    points_price: int  # 积分价, per unit
    cash_fen: int = 0  # 积分+现金: cash per unit on top of the points
    stock: int | None = None  # None: unlimited (e.g. a coupon reward)
    per_member_limit: int | None = None  # 每人限兑 over the reward's lifetime
    period_limit: PeriodLimit | None = None
    tiers: frozenset[str] = frozenset()  # empty: every tier
    available_from: datetime | None = None
    available_until: datetime | None = None  # exclusive

    def __post_init__(self) -> None:
        if self.points_price < 0 or self.cash_fen < 0 or (self.points_price == 0 and self.cash_fen == 0):
            raise RewardInvalid("a reward needs a non-negative, non-zero price", reward_id=self.reward_id)
        for moment in (self.available_from, self.available_until):
            if moment is not None:
                require_aware(moment)


class ExchangeRefusalCode(StrEnum):
    INVALID_QUANTITY = "invalid_quantity"
    NOT_AVAILABLE_YET = "not_available_yet"
    NO_LONGER_AVAILABLE = "no_longer_available"
    TIER_NOT_ELIGIBLE = "tier_not_eligible"
    OUT_OF_STOCK = "out_of_stock"
    MEMBER_LIMIT_REACHED = "member_limit_reached"
    PERIOD_LIMIT_REACHED = "period_limit_reached"
    INSUFFICIENT_POINTS = "insufficient_points"


@dataclass(frozen=True, slots=True)
class ExchangeQuote:
    """The exchange may go ahead at this price."""

    reward_id: str
    quantity: int
    points_total: int
    cash_fen_total: int
    ok: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class ExchangeRefusal:
    reward_id: str
    code: ExchangeRefusalCode
    params: dict[str, int | str] = field(default_factory=dict)
    ok: ClassVar[bool] = False


def limit_period_window(*, period: LimitPeriod, now: datetime) -> tuple[datetime, datetime]:
    """The calendar ``[start, end)`` containing ``now``, in ``now``'s own time zone.

    The service counts the member's exchanges in this window and passes the count to
    ``reward_exchange_check``; pass the store's local time so "this month" is the local month.
    """
    require_aware(now)
    today = now.date()
    if period is LimitPeriod.DAY:
        start, end = today, today + timedelta(days=1)
    elif period is LimitPeriod.WEEK:
        start = today - timedelta(days=today.weekday())
        end = start + timedelta(days=7)
    elif period is LimitPeriod.MONTH:
        start = today.replace(day=1)
        end = start + timedelta(days=calendar.monthrange(today.year, today.month)[1])
    else:
        start, end = today.replace(month=1, day=1), today.replace(year=today.year + 1, month=1, day=1)
    return (
        datetime.combine(start, time.min, tzinfo=now.tzinfo),
        datetime.combine(end, time.min, tzinfo=now.tzinfo),
    )


def reward_exchange_check(
    *,
    item: RewardItem,
    member_tier: str,
    points_balance: int,
    now: datetime,
    quantity: int = 1,
    stock_left: int | None = None,
    exchanged_by_member: int = 0,
    exchanged_in_period: int = 0,
) -> ExchangeQuote | ExchangeRefusal:
    """May the member exchange ``quantity`` units now? The first failing rule is reported.

    ``stock_left`` is the live stock (defaults to ``item.stock``); ``exchanged_by_member`` and
    ``exchanged_in_period`` count this member's non-cancelled exchanges of this reward, the
    latter inside ``limit_period_window(period=item.period_limit.period, now=now)``. The cash
    part is paid at the till and is not checked here.
    """
    require_aware(now)

    def refuse(code: ExchangeRefusalCode, **params: int | str) -> ExchangeRefusal:
        return ExchangeRefusal(reward_id=item.reward_id, code=code, params=dict(params))

    if quantity <= 0:
        return refuse(ExchangeRefusalCode.INVALID_QUANTITY, quantity=quantity)
    if item.available_from is not None and now < item.available_from:
        return refuse(ExchangeRefusalCode.NOT_AVAILABLE_YET, available_from=item.available_from.isoformat())
    if item.available_until is not None and now >= item.available_until:
        return refuse(
            ExchangeRefusalCode.NO_LONGER_AVAILABLE, available_until=item.available_until.isoformat()
        )
    if item.tiers and member_tier not in item.tiers:
        return refuse(ExchangeRefusalCode.TIER_NOT_ELIGIBLE, tier=member_tier)
    left = item.stock if stock_left is None else stock_left
    if left is not None and quantity > left:
        return refuse(ExchangeRefusalCode.OUT_OF_STOCK, stock_left=max(0, left))
    if item.per_member_limit is not None and exchanged_by_member + quantity > item.per_member_limit:
        return refuse(
            ExchangeRefusalCode.MEMBER_LIMIT_REACHED,
            limit=item.per_member_limit,
            left=max(0, item.per_member_limit - exchanged_by_member),
        )
    if item.period_limit is not None and exchanged_in_period + quantity > item.period_limit.count:
        return refuse(
            ExchangeRefusalCode.PERIOD_LIMIT_REACHED,
            limit=item.period_limit.count,
            period=str(item.period_limit.period),
            left=max(0, item.period_limit.count - exchanged_in_period),
        )
    points_total = item.points_price * quantity
    if points_total > points_balance:
        return refuse(
            ExchangeRefusalCode.INSUFFICIENT_POINTS,
            missing_points=points_total - points_balance,
            points_total=points_total,
        )
    return ExchangeQuote(
        reward_id=item.reward_id,
        quantity=quantity,
        points_total=points_total,
        cash_fen_total=item.cash_fen * quantity,
    )


class FulfilmentStatus(StrEnum):
    PENDING = "pending"  # 待发货 / 待领取
    SHIPPED = "shipped"  # 已发货 (to the member, or to the store for pick-up)
    DELIVERED = "delivered"  # 已签收
    PICKED_UP = "picked_up"  # 已到店领取
    CANCELLED = "cancelled"  # 已取消: points (and cash) go back


_ALLOWED: dict[FulfilmentStatus, frozenset[FulfilmentStatus]] = {
    FulfilmentStatus.PENDING: frozenset({FulfilmentStatus.SHIPPED, FulfilmentStatus.CANCELLED}),
    FulfilmentStatus.SHIPPED: frozenset(
        {FulfilmentStatus.DELIVERED, FulfilmentStatus.PICKED_UP, FulfilmentStatus.CANCELLED}
    ),
    FulfilmentStatus.DELIVERED: frozenset(),
    FulfilmentStatus.PICKED_UP: frozenset(),
    FulfilmentStatus.CANCELLED: frozenset(),
}


@dataclass(frozen=True, slots=True)
class FulfilmentTransition:
    """A legal move and what it obliges the service to do in the same transaction."""

    previous: FulfilmentStatus
    status: FulfilmentStatus
    return_points: bool  # credit the exchanged points back (a reversing ledger entry)
    restock: bool  # put the unit back into stock


def fulfilment_allowed(*, current: FulfilmentStatus) -> frozenset[FulfilmentStatus]:
    """The states ``current`` may move to (for buttons in the console)."""
    return _ALLOWED[current]


def fulfilment_transition(*, current: FulfilmentStatus, target: FulfilmentStatus) -> FulfilmentTransition:
    """Move pending → shipped → delivered | picked_up, or pending/shipped → cancelled.

    Terminal states never move; a "move" to the same state is refused too, so a replayed
    request is handled by the idempotency key, not silently re-run here.
    """
    if target not in _ALLOWED[current]:
        raise IllegalFulfilmentTransition(
            f"cannot move a reward order from {current} to {target}",
            current=str(current),
            target=str(target),
            allowed=sorted(str(s) for s in _ALLOWED[current]),
        )
    cancelled = target is FulfilmentStatus.CANCELLED
    return FulfilmentTransition(previous=current, status=target, return_points=cancelled, restock=cancelled)
