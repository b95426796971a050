"""Pricing a basket with the tier discount and several coupons (优惠叠加), and refunds.

The stacking order (one step after another, each judged on what is left after the last):

1. **Tier discount** (会员折扣) on the lines that allow it. It is a price, not a promotion: the
   member sees 金卡价 on the shelf, so every threshold below is measured against it.
2. **Item coupons** (赠品券, 兑换券). They target one unit of one SKU; taking that unit out
   first stops an order-level coupon from also discounting goods that are already free.
3. **Amount-off** (满减券), highest threshold first, so the coupon hardest to qualify for is
   judged while the eligible amount is still largest.
4. **Percent-off** (折扣券), on what is left. Amount-off before percent-off is the usual
   retail rule: the 满减 threshold reads off the tag price the member saw, and the percentage
   (with its cap) applies to the money actually still due.
5. **Free shipping** (免邮券) last: shipping is not goods, and its threshold is judged on what
   the member finally pays for the goods.

Within a step the order is canonical (threshold, face value, ids), never the order the
coupons were handed in, so the same coupons always give the same total. Every step
allocates its discount over lines in proportion to their *current* net amount and never
beyond it, so no line goes negative.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from memberhub.domain.coupon_rules import Basket, CouponKind, CouponState, CouponTemplate, MemberContext
from memberhub.domain.coupon_validate import (
    CouponDiscount,
    CouponRefusal,
    RefusalCode,
    coupon_validate,
    percent_of,
    pricing_start,
)
from memberhub.domain.errors import DomainError

_STEP = {
    CouponKind.EXCHANGE: 1,
    CouponKind.FREE_ITEM: 1,
    CouponKind.AMOUNT_OFF: 2,
    CouponKind.PERCENT_OFF: 3,
    CouponKind.FREE_SHIPPING: 4,
}


class UnknownLine(DomainError):
    code = "unknown_line"


@dataclass(frozen=True, slots=True)
class TierDiscount:
    """会员折扣: ``percent_off_bp`` = 2000 for a 金卡 8折."""

    tier: str
    percent_off_bp: int

    def __post_init__(self) -> None:
        if not 0 <= self.percent_off_bp <= 10_000:
            raise DomainError("tier discount must be within 0..10000 basis points", tier=self.tier)


@dataclass(frozen=True, slots=True)
class CouponOffer:
    """A coupon presented at checkout, with its template's discount given so far (for budget)."""

    template: CouponTemplate
    coupon: CouponState
    budget_spent_fen: int = 0


@dataclass(frozen=True, slots=True)
class CouponShare:
    coupon_id: str
    amount_fen: int


@dataclass(frozen=True, slots=True)
class PricedLine:
    line_id: str
    gross_fen: int
    tier_discount_fen: int
    coupon_shares: tuple[CouponShare, ...]
    net_fen: int  # what the member pays for this line = what a refund of it gives back

    @property
    def coupon_discount_fen(self) -> int:
        return sum(s.amount_fen for s in self.coupon_shares)


@dataclass(frozen=True, slots=True)
class BasketPricing:
    lines: tuple[PricedLine, ...]
    applied: tuple[CouponDiscount, ...]  # in the order they were applied
    refused: tuple[CouponRefusal, ...]
    tier_discount_fen: int
    shipping_fee_fen: int
    shipping_discount_fen: int

    @property
    def goods_gross_fen(self) -> int:
        return sum(line.gross_fen for line in self.lines)

    @property
    def goods_net_fen(self) -> int:
        return sum(line.net_fen for line in self.lines)

    @property
    def discount_fen(self) -> int:
        return self.tier_discount_fen + sum(d.amount_fen for d in self.applied)

    @property
    def payable_fen(self) -> int:
        return self.goods_net_fen + self.shipping_fee_fen - self.shipping_discount_fen


def stacking_key(offer: CouponOffer) -> tuple[int, int, int, str, str]:
    """The canonical position of a coupon in the stacking order (see module docstring)."""
    t = offer.template
    face = t.amount_off_fen if t.kind is CouponKind.AMOUNT_OFF else t.percent_off_bp
    return (_STEP[t.kind], -t.conditions.min_spend_fen, -face, t.template_id, offer.coupon.coupon_id)


def basket_price(
    *,
    basket: Basket,
    member: MemberContext,
    now: datetime,
    offers: Sequence[CouponOffer] = (),
    tier_discount: TierDiscount | None = None,
) -> BasketPricing:
    """Price the basket: tier discount, then every coupon in the stacking order.

    A coupon that does not apply is reported in ``refused`` and the rest carry on; the caller
    decides whether to proceed without it. Rounding is half-up to the fen, per line for the
    tier discount (as the till prints it) and on the eligible total for a percent coupon.
    """
    state = pricing_start(basket=basket)
    tier_by_line: dict[str, int] = {}
    if tier_discount is not None and tier_discount.percent_off_bp > 0:
        net = dict(state.net_by_line)
        for line in basket.lines:
            if line.tier_discountable:
                cut = percent_of(amount_fen=net[line.line_id], percent_bp=tier_discount.percent_off_bp)
                if cut:
                    tier_by_line[line.line_id] = cut
                    net[line.line_id] -= cut
        state = replace(state, net_by_line=net, tier_discounted_lines=frozenset(tier_by_line))

    applied: list[CouponDiscount] = []
    refused: list[CouponRefusal] = []
    for offer in sorted(offers, key=stacking_key):
        outcome = coupon_validate(
            template=offer.template,
            coupon=offer.coupon,
            basket=basket,
            member=member,
            now=now,
            state=state,
            budget_spent_fen=offer.budget_spent_fen,
        )
        if isinstance(outcome, CouponRefusal):
            refused.append(outcome)
            continue
        applied.append(outcome)
        net = dict(state.net_by_line)
        for allocation in outcome.allocations:
            net[allocation.line_id] -= allocation.amount_fen
        state = replace(
            state,
            net_by_line=net,
            shipping_due_fen=state.shipping_due_fen - outcome.shipping_fen,
            applied=(*state.applied, (offer.template, offer.coupon.coupon_id)),
        )

    lines = tuple(
        PricedLine(
            line_id=line.line_id,
            gross_fen=line.gross_fen,
            tier_discount_fen=tier_by_line.get(line.line_id, 0),
            coupon_shares=tuple(
                CouponShare(coupon_id=d.coupon_id, amount_fen=a.amount_fen)
                for d in applied
                for a in d.allocations
                if a.line_id == line.line_id
            ),
            net_fen=state.net_by_line[line.line_id],
        )
        for line in basket.lines
    )
    return BasketPricing(
        lines=lines,
        applied=tuple(applied),
        refused=tuple(refused),
        tier_discount_fen=sum(tier_by_line.values()),
        shipping_fee_fen=basket.shipping_fee_fen,
        shipping_discount_fen=basket.shipping_fee_fen - state.shipping_due_fen,
    )


def basket_price_best(
    *,
    basket: Basket,
    member: MemberContext,
    now: datetime,
    offers: Sequence[CouponOffer] = (),
    tier_discount: TierDiscount | None = None,
) -> BasketPricing:
    """The cheapest legal combination for the member (系统自动选最优).

    Candidates: all stackable coupons together, or each non-stackable (独享) coupon alone;
    each with and without the tier discount when some coupon refuses to share with it. The
    lowest payable wins; ties go to fewer coupons used (the member keeps the others), then
    to keeping the tier discount, then to the canonical order. The answer does not depend on
    the order ``offers`` were passed in.
    """
    ordered = sorted(offers, key=stacking_key)
    stackable = tuple(o for o in ordered if o.template.stacks_with_coupons)
    coupon_sets = [stackable, *((o,) for o in ordered if not o.template.stacks_with_coupons)]
    tier_options: list[TierDiscount | None] = [tier_discount]
    if tier_discount is not None and any(not o.template.stacks_with_tier_discount for o in ordered):
        tier_options.append(None)

    best: tuple[tuple[int, int, int, int], BasketPricing] | None = None
    for tier_index, tier in enumerate(tier_options):
        for set_index, coupon_set in enumerate(coupon_sets):
            pricing = basket_price(
                basket=basket, member=member, now=now, offers=coupon_set, tier_discount=tier
            )
            score = (pricing.payable_fen, len(pricing.applied), tier_index, set_index)
            if best is None or score < best[0]:
                best = (score, pricing)
    assert best is not None
    chosen = best[1]
    applied_ids = {d.coupon_id for d in chosen.applied}
    left_out = tuple(
        CouponRefusal(coupon_id=o.coupon.coupon_id, code=_not_chosen_code(o, chosen))
        for o in ordered
        if o.coupon.coupon_id not in applied_ids
        and all(r.coupon_id != o.coupon.coupon_id for r in chosen.refused)
    )
    return replace(chosen, refused=chosen.refused + left_out)


def _not_chosen_code(offer: CouponOffer, chosen: BasketPricing) -> RefusalCode:
    """Why a valid coupon was left out of the best combination."""
    if not offer.template.stacks_with_coupons or chosen.applied:
        return RefusalCode.NOT_STACKABLE
    return RefusalCode.NOT_STACKABLE_WITH_TIER_DISCOUNT


@dataclass(frozen=True, slots=True)
class LineRefund:
    line_id: str
    refund_fen: int  # the cash value going back: what was paid for the line
    tier_discount_fen: int
    coupon_shares: tuple[CouponShare, ...]  # each coupon's discount carried by this line


def line_refund(*, pricing: BasketPricing, line_id: str) -> LineRefund:
    """What refunding a whole line gives back, and how much of each coupon it carried.

    The member gets back what they paid for the line (``net_fen``), never the gross: the
    coupon discount allocated to it stays with the merchant unless the coupon is restored.
    """
    for line in pricing.lines:
        if line.line_id == line_id:
            return LineRefund(
                line_id=line_id,
                refund_fen=line.net_fen,
                tier_discount_fen=line.tier_discount_fen,
                coupon_shares=line.coupon_shares,
            )
    raise UnknownLine("no such line in this order", line_id=line_id)


@dataclass(frozen=True, slots=True)
class CouponRestoreDecision:
    coupon_id: str
    restored: bool
    reason: str  # "whole_order_refunded" | "partial_refund" | "expired"


def coupon_restore_decide(
    *,
    pricing: BasketPricing,
    refunded_line_ids: Collection[str],
    coupons: Sequence[CouponState],
    now: datetime,
) -> tuple[CouponRestoreDecision, ...]:
    """Which of the coupons used on this order go back to the member (退券).

    Only when the whole order is refunded and the coupon is still within its validity: a
    partial refund keeps the coupon spent (the rest of the order still enjoys it), and an
    expired coupon would be restored only to be unusable. ``refunded_line_ids`` is every line
    refunded so far, this refund included. Coupons not used on the order are ignored.
    """
    used = {d.coupon_id for d in pricing.applied}
    unknown = set(refunded_line_ids) - {line.line_id for line in pricing.lines}
    if unknown:
        raise UnknownLine("refunded lines are not in this order", line_ids=sorted(unknown))
    whole = len(set(refunded_line_ids)) == len(pricing.lines)
    decisions = []
    for coupon in coupons:
        if coupon.coupon_id in used:
            reason = "partial_refund" if not whole else "expired" if now >= coupon.valid_until else ""
            decisions.append(
                CouponRestoreDecision(
                    coupon_id=coupon.coupon_id, restored=not reason, reason=reason or "whole_order_refunded"
                )
            )
    return tuple(decisions)
