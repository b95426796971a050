"""Does this coupon apply to this basket, and for how much (券核销校验)?

``coupon_validate`` answers with either a ``CouponDiscount`` (the amount, and how it is
spread over the lines so that a refund of one line knows its share) or a ``CouponRefusal``
(a machine-readable code plus the numbers the till needs to explain it). It never raises for
a business "no": the till shows every refusal side by side, so refusals are values.

It judges the basket *as currently priced*: ``PricingState`` carries each line's net amount
after the steps already taken (tier discount, earlier coupons). That is how
``coupon_stack`` recomputes the eligible amount after each step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from memberhub.domain.coupon_rules import (
    BP_WHOLE,
    Basket,
    BasketLine,
    CouponKind,
    CouponState,
    CouponStatus,
    CouponTemplate,
    MemberContext,
    require_aware,
)
from memberhub.domain.errors import DomainError


class CouponMismatch(DomainError):
    """The coupon instance is not of the template given: a caller bug, not a refusal."""

    code = "coupon_template_mismatch"


class RefusalCode(StrEnum):
    ALREADY_USED = "already_used"
    REVOKED = "revoked"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    NOT_OWNER = "not_owner"
    WRONG_STORE = "wrong_store"
    WRONG_CHANNEL = "wrong_channel"
    TIER_NOT_ELIGIBLE = "tier_not_eligible"
    NOT_FIRST_PURCHASE = "not_first_purchase"
    ALREADY_APPLIED = "already_applied"
    NOT_STACKABLE = "not_stackable"
    NOT_STACKABLE_WITH_TIER_DISCOUNT = "not_stackable_with_tier_discount"
    NO_ELIGIBLE_ITEMS = "no_eligible_items"
    BELOW_MINIMUM_SPEND = "below_minimum_spend"
    NO_SHIPPING_FEE = "no_shipping_fee"
    NOTHING_TO_DISCOUNT = "nothing_to_discount"
    BUDGET_EXHAUSTED = "budget_exhausted"


@dataclass(frozen=True, slots=True)
class Allocation:
    """The part of one coupon's discount carried by one basket line."""

    line_id: str
    amount_fen: int


@dataclass(frozen=True, slots=True)
class CouponDiscount:
    coupon_id: str
    template_id: str
    kind: CouponKind
    amount_fen: int  # = sum(allocations) + shipping_fen
    allocations: tuple[Allocation, ...] = ()  # only lines with a share > 0, in basket order
    shipping_fen: int = 0
    ok: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class CouponRefusal:
    coupon_id: str
    code: RefusalCode
    params: dict[str, int | str] = field(default_factory=dict)
    ok: ClassVar[bool] = False


CouponOutcome = CouponDiscount | CouponRefusal


@dataclass(frozen=True, slots=True)
class PricingState:
    """The basket part-way through pricing: what each line and the shipping still cost."""

    net_by_line: Mapping[str, int]
    shipping_due_fen: int
    applied: tuple[tuple[CouponTemplate, str], ...] = ()  # (template, coupon_id) in order
    tier_discounted_lines: frozenset[str] = frozenset()


def pricing_start(*, basket: Basket) -> PricingState:
    """The state before any discount: every line at its gross amount."""
    return PricingState(
        net_by_line={line.line_id: line.gross_fen for line in basket.lines},
        shipping_due_fen=basket.shipping_fee_fen,
    )


def discount_allocate(*, total_fen: int, weights: Sequence[tuple[str, int]]) -> tuple[Allocation, ...]:
    """Spread ``total_fen`` over lines in proportion to their weights, exactly.

    Largest-remainder (Hamilton) method: each line gets the floor of its exact share, and the
    leftover fen go one each to the largest fractional parts, earlier lines winning ties. The
    sum is exact and, as long as ``total_fen <= sum(weights)``, no line receives more than its
    weight, so a line can never go negative.
    """
    whole = sum(w for _, w in weights)
    if total_fen < 0 or total_fen > whole:
        raise ValueError("cannot allocate more than the lines are worth")
    if total_fen == 0:
        return ()
    shares = [(total_fen * w) // whole for _, w in weights]
    remainders = [(total_fen * w) % whole for _, w in weights]
    leftover = total_fen - sum(shares)
    for index in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:leftover]:
        shares[index] += 1
    return tuple(
        Allocation(line_id=line_id, amount_fen=share)
        for (line_id, _), share in zip(weights, shares, strict=True)
        if share > 0
    )


def percent_of(*, amount_fen: int, percent_bp: int) -> int:
    """``amount * bp / 10000`` rounded half-up to the fen (四舍五入), never above ``amount``."""
    return (2 * amount_fen * percent_bp + BP_WHOLE) // (2 * BP_WHOLE)


def _refuse(coupon: CouponState, code: RefusalCode, **params: int | str) -> CouponRefusal:
    return CouponRefusal(coupon_id=coupon.coupon_id, code=code, params=dict(params))


def _gate(
    *, template: CouponTemplate, coupon: CouponState, basket: Basket, member: MemberContext, now: datetime
) -> CouponRefusal | None:
    """Checks that do not depend on the amounts, cheapest and most explanatory first."""
    if coupon.status is CouponStatus.USED:
        return _refuse(coupon, RefusalCode.ALREADY_USED)
    if coupon.status is CouponStatus.REVOKED:
        return _refuse(coupon, RefusalCode.REVOKED)
    if now < coupon.valid_from:
        return _refuse(coupon, RefusalCode.NOT_YET_VALID, valid_from=coupon.valid_from.isoformat())
    if now >= coupon.valid_until:
        return _refuse(coupon, RefusalCode.EXPIRED, valid_until=coupon.valid_until.isoformat())
    if coupon.owner_member_id is not None and coupon.owner_member_id != member.member_id:
        return _refuse(coupon, RefusalCode.NOT_OWNER)
    c = template.conditions
    if c.store_ids and basket.store_id not in c.store_ids:
        return _refuse(coupon, RefusalCode.WRONG_STORE, store_id=basket.store_id)
    if c.channels and basket.channel not in c.channels:
        return _refuse(coupon, RefusalCode.WRONG_CHANNEL, channel=str(basket.channel))
    if c.tiers and member.tier not in c.tiers:
        return _refuse(coupon, RefusalCode.TIER_NOT_ELIGIBLE, tier=member.tier)
    if c.first_purchase_only and not member.is_first_purchase:
        return _refuse(coupon, RefusalCode.NOT_FIRST_PURCHASE)
    return None


def _stacking(*, template: CouponTemplate, coupon: CouponState, state: PricingState) -> CouponRefusal | None:
    if any(coupon_id == coupon.coupon_id for _, coupon_id in state.applied):
        return _refuse(coupon, RefusalCode.ALREADY_APPLIED)
    for other, other_id in state.applied:
        if not template.stacks_with_coupons or not other.stacks_with_coupons:
            return _refuse(coupon, RefusalCode.NOT_STACKABLE, with_coupon_id=other_id)
    if not template.stacks_with_tier_discount and state.tier_discounted_lines:
        return _refuse(coupon, RefusalCode.NOT_STACKABLE_WITH_TIER_DISCOUNT)
    return None


def _unit_share(*, line: BasketLine, net_fen: int) -> int:
    """What one unit of a line currently costs: the ceiling of its even share, at most net."""
    return -(-net_fen // line.quantity)


def _item_discount(
    *, template: CouponTemplate, coupon: CouponState, basket: Basket, state: PricingState
) -> CouponOutcome:
    """FREE_ITEM and EXCHANGE: one unit of ``template.sku``, on the line where it costs most."""
    targets = [line for line in basket.lines if line.sku == template.sku]
    if not targets:
        return _refuse(coupon, RefusalCode.NO_ELIGIBLE_ITEMS, sku=str(template.sku))
    line = max(targets, key=lambda ln: _unit_share(line=ln, net_fen=state.net_by_line[ln.line_id]))
    unit = _unit_share(line=line, net_fen=state.net_by_line[line.line_id])
    price = template.exchange_price_fen if template.kind is CouponKind.EXCHANGE else 0
    amount = max(0, unit - price)
    if amount == 0:
        return _refuse(coupon, RefusalCode.NOTHING_TO_DISCOUNT)
    return CouponDiscount(
        coupon_id=coupon.coupon_id,
        template_id=template.template_id,
        kind=template.kind,
        amount_fen=amount,
        allocations=(Allocation(line_id=line.line_id, amount_fen=amount),),
    )


def coupon_validate(
    *,
    template: CouponTemplate,
    coupon: CouponState,
    basket: Basket,
    member: MemberContext,
    now: datetime,
    state: PricingState | None = None,
    budget_spent_fen: int = 0,
) -> CouponOutcome:
    """Judge one coupon against the basket as priced so far (``state``; default: undiscounted).

    The minimum spend (门槛) is measured on the eligible lines' *current* net amount, i.e.
    after the tier discount and the coupons applied before this one: it is what the member
    actually pays for those goods, and it stops two 满减 coupons from both counting the same
    money towards their thresholds. Shipping never counts towards a threshold.
    """
    require_aware(now)
    if coupon.template_id != template.template_id:
        raise CouponMismatch(coupon_id=coupon.coupon_id, template_id=template.template_id)
    state = state or pricing_start(basket=basket)
    refusal = _gate(template=template, coupon=coupon, basket=basket, member=member, now=now)
    refusal = refusal or _stacking(template=template, coupon=coupon, state=state)
    if refusal:
        return refusal

    c = template.conditions
    eligible = [ln for ln in basket.lines if c.line_is_eligible(sku=ln.sku, category=ln.category)]
    if not eligible:
        return _refuse(coupon, RefusalCode.NO_ELIGIBLE_ITEMS)
    eligible_fen = sum(state.net_by_line[ln.line_id] for ln in eligible)
    if eligible_fen < c.min_spend_fen:
        return _refuse(
            coupon,
            RefusalCode.BELOW_MINIMUM_SPEND,
            missing_fen=c.min_spend_fen - eligible_fen,
            min_spend_fen=c.min_spend_fen,
            eligible_fen=eligible_fen,
        )

    outcome: CouponOutcome
    if template.kind in (CouponKind.FREE_ITEM, CouponKind.EXCHANGE):
        outcome = _item_discount(template=template, coupon=coupon, basket=basket, state=state)
    elif template.kind is CouponKind.FREE_SHIPPING:
        if state.shipping_due_fen == 0:
            return _refuse(coupon, RefusalCode.NO_SHIPPING_FEE)
        amount = min(state.shipping_due_fen, template.cap_fen or state.shipping_due_fen)
        outcome = CouponDiscount(
            coupon_id=coupon.coupon_id,
            template_id=template.template_id,
            kind=template.kind,
            amount_fen=amount,
            shipping_fen=amount,
        )
    else:
        if template.kind is CouponKind.AMOUNT_OFF:
            amount = min(template.amount_off_fen, eligible_fen)
        else:
            amount = percent_of(amount_fen=eligible_fen, percent_bp=template.percent_off_bp)
            if template.cap_fen is not None:
                amount = min(amount, template.cap_fen)
        if amount == 0:
            return _refuse(coupon, RefusalCode.NOTHING_TO_DISCOUNT)
        weights = [(ln.line_id, state.net_by_line[ln.line_id]) for ln in eligible]
        outcome = CouponDiscount(
            coupon_id=coupon.coupon_id,
            template_id=template.template_id,
            kind=template.kind,
            amount_fen=amount,
            allocations=discount_allocate(total_fen=amount, weights=weights),
        )

    if (
        isinstance(outcome, CouponDiscount)
        and template.budget_fen is not None
        and budget_spent_fen + outcome.amount_fen > template.budget_fen
    ):
        return _refuse(
            coupon, RefusalCode.BUDGET_EXHAUSTED, remaining_fen=max(0, template.budget_fen - budget_spent_fen)
        )
    return outcome
