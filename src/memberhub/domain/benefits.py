"""Tier benefits (会员权益) and the till quote (收银报价).

A discount is stored as per-mille of the price paid — 950 is 95折, 880 is 88折 — so
Chinese "N折" maps without floats and 8.8折 is expressible. The member price is
computed on each line's total (qty × unit price), rounded half-up to the fen, so the
per-line discount is never negative and never above the line total; rounding per unit
would lose up to a fen per item on multi-quantity lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from memberhub.domain.points_rules import EarnResult, EarnRules, InvalidRule, OrderLine, earn_points


class Benefit(StrEnum):
    MEMBER_DISCOUNT = "member_discount"  # 会员折扣
    POINTS_MULTIPLIER = "points_multiplier"  # 积分加倍
    BIRTHDAY_GIFT = "birthday_gift"  # 生日礼
    FREE_SHIPPING = "free_shipping"  # 包邮
    PRIORITY_SERVICE = "priority_service"  # 优先服务


@dataclass(frozen=True, slots=True)
class TierBenefits:
    """What one tier gives. ``birthday_coupon_template`` is a reference into the coupon app."""

    tier: str
    discount_permille: int = 1000  # price paid per mille: 1000 = no discount, 950 = 95折
    points_multiplier: Decimal = Decimal(1)
    birthday_points: int = 0
    birthday_coupon_template: str | None = None
    free_shipping: bool = False
    priority_service: bool = False
    discount_excluded_categories: frozenset[str] = frozenset()  # e.g. tobacco, gift cards
    discount_excluded_skus: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not 0 < self.discount_permille <= 1000:
            raise InvalidRule("discount_permille must be within 1..1000", tier=self.tier)
        if Decimal(self.points_multiplier) < 0 or self.birthday_points < 0:
            raise InvalidRule("points_multiplier and birthday_points must be >= 0", tier=self.tier)
        object.__setattr__(self, "points_multiplier", Decimal(self.points_multiplier))
        object.__setattr__(self, "discount_excluded_categories", frozenset(self.discount_excluded_categories))
        object.__setattr__(self, "discount_excluded_skus", frozenset(self.discount_excluded_skus))

    def applicable(self) -> tuple[Benefit, ...]:
        """The benefits this tier actually grants (those configured to something)."""
        found = []
        if self.discount_permille < 1000:
            found.append(Benefit.MEMBER_DISCOUNT)
        if self.points_multiplier != 1:
            found.append(Benefit.POINTS_MULTIPLIER)
        if self.birthday_points or self.birthday_coupon_template:
            found.append(Benefit.BIRTHDAY_GIFT)
        if self.free_shipping:
            found.append(Benefit.FREE_SHIPPING)
        if self.priority_service:
            found.append(Benefit.PRIORITY_SERVICE)
        return tuple(found)


def default_benefits() -> dict[str, TierBenefits]:
    """A starting point matching ``tiers.default_ladder``: 普通 none, 银卡 95折, 金卡 9折, 钻石 85折."""
    return {
        "normal": TierBenefits("normal"),
        "silver": TierBenefits("silver", discount_permille=950, points_multiplier=Decimal("1.2"),
                               birthday_points=100),
        "gold": TierBenefits("gold", discount_permille=900, points_multiplier=Decimal("1.5"), birthday_points=300,
                             free_shipping=True),
        "diamond": TierBenefits("diamond", discount_permille=850, points_multiplier=Decimal(2), birthday_points=800,
                                free_shipping=True, priority_service=True),
    }


@dataclass(frozen=True, slots=True)
class BasketLine:
    line_id: str
    sku: str
    category: str
    qty: int
    unit_price_fen: int

    def __post_init__(self) -> None:
        if self.qty < 0 or self.unit_price_fen < 0:
            raise InvalidRule("qty and unit_price_fen must be >= 0", line_id=self.line_id)


@dataclass(frozen=True, slots=True)
class QuoteLine:
    line_id: str
    list_fen: int  # qty × unit price
    member_fen: int  # after the member discount
    discount_fen: int
    discounted: bool  # False when the line is excluded from the member discount


@dataclass(frozen=True, slots=True)
class Quote:
    tier: str
    lines: tuple[QuoteLine, ...]
    list_fen: int
    member_fen: int
    discount_fen: int
    earn: EarnResult  # points the purchase will earn if paid at the member price
    benefits: tuple[Benefit, ...]


def member_price(*, list_fen: int, discount_permille: int) -> int:
    """A line total after a per-mille discount, rounded half-up to the fen."""
    return (list_fen * discount_permille + 500) // 1000


def quote(
    *, benefits: TierBenefits, basket: Sequence[BasketLine], earn_rules: EarnRules, at: datetime
) -> Quote:
    """The till's view of a basket for a member of ``benefits.tier`` at ``at``.

    Points are estimated on the member price; the order's final earn is computed at
    payment on what was actually paid (coupons or a points deduction lower it).
    ``benefits`` lists what applies to this purchase: the discount only if some line
    got it; birthday gift is not a till benefit and is left out.
    """
    lines = []
    for item in basket:
        list_fen = item.qty * item.unit_price_fen
        eligible = (item.category not in benefits.discount_excluded_categories
                    and item.sku not in benefits.discount_excluded_skus)
        member_fen = member_price(list_fen=list_fen, discount_permille=benefits.discount_permille) if eligible \
            else list_fen
        lines.append(QuoteLine(item.line_id, list_fen, member_fen, list_fen - member_fen, eligible))
    order_lines = [OrderLine(line.line_id, item.sku, item.category, line.member_fen)
                   for line, item in zip(lines, basket, strict=True)]
    earn = earn_points(rules=earn_rules, lines=order_lines, at=at, tier_code=benefits.tier,
                       tier_multiplier=benefits.points_multiplier)
    applied = tuple(b for b in benefits.applicable()
                    if b is not Benefit.BIRTHDAY_GIFT
                    and (b is not Benefit.MEMBER_DISCOUNT or any(line.discount_fen for line in lines)))
    list_total = sum(line.list_fen for line in lines)
    member_total = sum(line.member_fen for line in lines)
    return Quote(benefits.tier, tuple(lines), list_total, member_total, list_total - member_total, earn, applied)
