"""What a member in each status may do: the one policy every earn, redeem and spend path asks.

停卡 (frozen) stops the member's own use of the programme: no earning (purchases, actions,
birthdays), no redemption of points, coupons, stored value or visits, no top-up. What
corrects the past stays possible: refunds and their clawbacks, points given back on a refund,
staff adjustments, releasing a hold. Time-limited entitlements do not run out meanwhile; on
unfreeze they are extended by the time frozen (`frozen_extension`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum


class Act(StrEnum):
    EARN = "earn"  # points from a purchase, an action, a birthday
    PURCHASE = "purchase"  # a purchase recorded for the member (it earns) or a checkout
    REDEEM_POINTS = "redeem_points"
    REDEEM_COUPON = "redeem_coupon"
    STORED_VALUE = "stored_value"  # top-up, spend, a member's own gift card
    USE_VISITS = "use_visits"
    CORRECT = "correct"  # refunds, clawbacks, returns, adjustments, hold release


ACTIVE, FROZEN, MERGED, ERASED = "active", "frozen", "merged", "erased"

_MAY: dict[str, frozenset[Act]] = {
    ACTIVE: frozenset(Act),
    FROZEN: frozenset({Act.CORRECT}),
    MERGED: frozenset(),
    ERASED: frozenset(),
}

_REFUSAL = {FROZEN: "member_frozen", MERGED: "member_merged", ERASED: "member_erased"}


def member_may(status: str, act: Act) -> str | None:
    """None when a member in `status` may do `act`; else the refusal's code."""
    if act in _MAY.get(status, frozenset()):
        return None
    return _REFUSAL.get(status, "member_not_live")


def statuses_allowing(act: Act) -> tuple[str, ...]:
    """The statuses in which `act` is allowed (for a query's filter)."""
    return tuple(s for s, acts in _MAY.items() if act in acts)


def frozen_extension(*, frozen_at: datetime, unfrozen_at: datetime) -> timedelta:
    """How far time-limited entitlements move on unfreeze: the whole time frozen (never negative)."""
    return max(unfrozen_at - frozen_at, timedelta(0))
