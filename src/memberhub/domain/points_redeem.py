"""Points as cash at checkout (积分抵现): e.g. 100 points = ¥1, at most 50 % of the order.

Decision: points are redeemed in whole units of ``points_per_unit``. A request that is not
a multiple is refused rather than rounded, so a member never loses points to rounding
and the deduction in fen is always exact. The cap is taken on the amount the caller
passes (the payable amount after other discounts; shipping is the caller's choice).
"""

from __future__ import annotations

from dataclasses import dataclass

from memberhub.domain.points_lots import InvalidAmount
from memberhub.domain.points_rules import InvalidRule


@dataclass(frozen=True, slots=True)
class RedeemPolicy:
    points_per_unit: int = 100  # 100 points ...
    unit_fen: int = 100  # ... are worth ¥1.00
    max_order_percent: int = 50  # at most this share of the order may be paid with points
    min_points: int = 0  # smallest redemption accepted (起兑门槛)

    def __post_init__(self) -> None:
        if self.points_per_unit < 1 or self.unit_fen < 1:
            raise InvalidRule("points_per_unit and unit_fen must be >= 1")
        if not 0 <= self.max_order_percent <= 100:
            raise InvalidRule("max_order_percent must be within 0..100")
        if self.min_points < 0:
            raise InvalidRule("min_points must be >= 0")


@dataclass(frozen=True, slots=True)
class RedeemLimit:
    max_points: int
    max_deduction_fen: int


def redeem_deduction(*, points: int, policy: RedeemPolicy) -> int:
    """The cash deduction in fen for redeeming ``points``; refuses partial units."""
    if points < 0:
        raise InvalidAmount("points must be >= 0", points=points)
    if points % policy.points_per_unit:
        raise InvalidAmount(
            f"points must be a multiple of {policy.points_per_unit}", points=points,
            points_per_unit=policy.points_per_unit,
        )
    if 0 < points < policy.min_points:
        raise InvalidAmount(f"at least {policy.min_points} points per redemption", points=points,
                            min_points=policy.min_points)
    return points // policy.points_per_unit * policy.unit_fen


def redeem_limit(*, order_fen: int, available: int, policy: RedeemPolicy) -> RedeemLimit:
    """The most points the member may redeem on this order and what they are worth.

    Bounded by the spendable balance and by ``max_order_percent`` of ``order_fen``, in
    whole units, rounded down so the cap is never exceeded. Below ``min_points`` → 0.
    """
    if order_fen < 0:
        raise InvalidAmount("order_fen must be >= 0", order_fen=order_fen)
    cap_fen = order_fen * policy.max_order_percent // 100
    units = min(max(available, 0) // policy.points_per_unit, cap_fen // policy.unit_fen)
    points = units * policy.points_per_unit
    if points < policy.min_points:
        return RedeemLimit(0, 0)
    return RedeemLimit(max_points=points, max_deduction_fen=units * policy.unit_fen)
