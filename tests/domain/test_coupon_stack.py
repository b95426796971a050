"""Stacking the tier discount and several coupons, line refunds and coupon restoration."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memberhub.domain.coupon_rules import (
    Basket,
    BasketLine,
    Channel,
    CouponConditions,
    CouponKind,
    CouponState,
    CouponTemplate,
    FixedValidity,
    MemberContext,
)
from memberhub.domain.coupon_stack import (
    CouponOffer,
    CouponShare,
    TierDiscount,
    UnknownLine,
    basket_price,
    basket_price_best,
    coupon_restore_decide,
    line_refund,
)
from memberhub.domain.coupon_validate import RefusalCode
from memberhub.domain.errors import DomainError

CST = timezone(timedelta(hours=8))
NOW = datetime(2025, 6, 15, 12, 0, tzinfo=CST)
WINDOW = FixedValidity(
    valid_from=datetime(2025, 6, 1, tzinfo=CST), valid_until=datetime(2025, 7, 1, tzinfo=CST)
)
MEMBER = MemberContext(member_id="m1", tier="gold")
GOLD = TierDiscount(tier="gold", percent_off_bp=1000)  # 9折


def offer(coupon_id: str, kind: CouponKind = CouponKind.AMOUNT_OFF, min_spend: int = 0, **kw) -> CouponOffer:
    t = CouponTemplate(
        template_id=f"t-{coupon_id}",
        kind=kind,
        validity=WINDOW,
        conditions=CouponConditions(min_spend_fen=min_spend, **kw.pop("conditions", {})),
        **kw,
    )
    c = CouponState(
        coupon_id=coupon_id,
        template_id=t.template_id,
        valid_from=WINDOW.valid_from,
        valid_until=WINDOW.valid_until,
    )
    return CouponOffer(template=t, coupon=c)


def line(line_id: str, price: int, qty: int = 1, sku: str | None = None, tier_ok: bool = True) -> BasketLine:
    return BasketLine(
        line_id=line_id,
        sku=sku or f"SKU-{line_id}",
        category="general",
        unit_price_fen=price,
        quantity=qty,
        tier_discountable=tier_ok,
    )


def basket(*lines: BasketLine, shipping: int = 0) -> Basket:
    return Basket(lines=lines, store_id="s1", channel=Channel.ONLINE, shipping_fee_fen=shipping)


def price(b: Basket, *offers: CouponOffer, tier: TierDiscount | None = None):
    return basket_price(basket=b, member=MEMBER, now=NOW, offers=offers, tier_discount=tier)


def test_it_applies_the_tier_discount_per_line():
    p = price(basket(line("a", 10_000), line("b", 5000, tier_ok=False)), tier=GOLD)
    assert [ln.tier_discount_fen for ln in p.lines] == [1000, 0]
    assert p.payable_fen == 14_000


def test_it_refuses_a_tier_discount_above_100_percent():
    with pytest.raises(DomainError):
        TierDiscount(tier="gold", percent_off_bp=10_001)


def test_it_measures_a_threshold_after_the_tier_discount():
    p = price(basket(line("a", 10_500)), offer("c1", amount_off_fen=2000, min_spend=10_000), tier=GOLD)
    assert p.applied == () and p.refused[0].code is RefusalCode.BELOW_MINIMUM_SPEND


def test_it_applies_amount_off_before_percent_off():
    amount = offer("c1", amount_off_fen=2000, min_spend=10_000)
    percent = offer("c2", CouponKind.PERCENT_OFF, percent_off_bp=2000)
    p = price(basket(line("a", 10_000)), percent, amount)
    assert [d.coupon_id for d in p.applied] == ["c1", "c2"]
    assert p.payable_fen == 6400  # (10000 - 2000) * 0.8


def test_it_takes_item_coupons_out_before_order_coupons():
    free = offer("c1", CouponKind.FREE_ITEM, sku="SKU-t")
    percent = offer("c2", CouponKind.PERCENT_OFF, percent_off_bp=5000)
    p = price(basket(line("a", 10_000), line("t", 2000)), percent, free)
    assert [d.coupon_id for d in p.applied] == ["c1", "c2"]
    assert p.lines[1].net_fen == 0
    assert p.payable_fen == 5000


def test_it_judges_shipping_last_on_the_goods_actually_paid():
    shipping = offer("c1", CouponKind.FREE_SHIPPING, min_spend=9000)
    amount = offer("c2", amount_off_fen=2000)
    p = price(basket(line("a", 10_000), shipping=800), shipping, amount)
    assert [r.code for r in p.refused] == [RefusalCode.BELOW_MINIMUM_SPEND]
    assert p.payable_fen == 8800


def test_it_tries_the_highest_threshold_first():
    small = offer("c1", amount_off_fen=2000, min_spend=10_000)
    big = offer("c2", amount_off_fen=5000, min_spend=20_000)
    p = price(basket(line("a", 21_000)), small, big)
    assert {d.coupon_id for d in p.applied} == {"c1", "c2"}
    assert p.payable_fen == 14_000


def test_it_refuses_a_second_coupon_next_to_an_exclusive_one():
    exclusive = offer("c1", amount_off_fen=3000, stacks_with_coupons=False)
    other = offer("c2", CouponKind.PERCENT_OFF, percent_off_bp=1000)
    p = price(basket(line("a", 10_000)), other, exclusive)
    assert [d.coupon_id for d in p.applied] == ["c1"]
    assert [(r.coupon_id, r.code) for r in p.refused] == [("c2", RefusalCode.NOT_STACKABLE)]


def test_it_keeps_the_line_and_order_totals_consistent():
    p = price(
        basket(line("a", 3333, qty=3), line("b", 1), shipping=600),
        offer("c1", amount_off_fen=777),
        offer("c2", CouponKind.PERCENT_OFF, percent_off_bp=1500),
        tier=GOLD,
    )
    for ln in p.lines:
        assert ln.gross_fen - ln.tier_discount_fen - ln.coupon_discount_fen == ln.net_fen >= 0
    assert p.goods_gross_fen + p.shipping_fee_fen - p.discount_fen == p.payable_fen


def test_best_drops_the_tier_discount_when_an_exclusive_coupon_is_worth_more():
    coupon = offer("c1", amount_off_fen=3000, stacks_with_tier_discount=False)
    p = basket_price_best(
        basket=basket(line("a", 10_000)), member=MEMBER, now=NOW, offers=(coupon,), tier_discount=GOLD
    )
    assert p.tier_discount_fen == 0 and p.payable_fen == 7000


def test_best_keeps_the_tier_discount_when_it_is_worth_more():
    coupon = offer("c1", amount_off_fen=500, stacks_with_tier_discount=False)
    p = basket_price_best(
        basket=basket(line("a", 10_000)), member=MEMBER, now=NOW, offers=(coupon,), tier_discount=GOLD
    )
    assert p.tier_discount_fen == 1000 and p.applied == ()
    assert p.refused[0].code is RefusalCode.NOT_STACKABLE_WITH_TIER_DISCOUNT


def test_best_picks_an_exclusive_coupon_over_weaker_stackable_ones():
    exclusive = offer("c1", amount_off_fen=5000, stacks_with_coupons=False)
    a = offer("c2", amount_off_fen=1000)
    b = offer("c3", amount_off_fen=1000)
    p = basket_price_best(basket=basket(line("a", 10_000)), member=MEMBER, now=NOW, offers=(a, exclusive, b))
    assert [d.coupon_id for d in p.applied] == ["c1"]
    assert {r.coupon_id for r in p.refused} == {"c2", "c3"}


def test_it_reports_each_coupons_share_of_a_refunded_line():
    p = price(basket(line("a", 6000), line("b", 4000)), offer("c1", amount_off_fen=1000), tier=GOLD)
    refund = line_refund(pricing=p, line_id="a")
    assert refund.tier_discount_fen == 600
    assert refund.coupon_shares == (CouponShare(coupon_id="c1", amount_fen=600),)
    assert refund.refund_fen == 6000 - 600 - 600


def test_it_refuses_to_refund_an_unknown_line():
    with pytest.raises(UnknownLine):
        line_refund(pricing=price(basket(line("a", 100))), line_id="zz")


def test_it_restores_coupons_when_the_whole_order_is_refunded_in_time():
    o = offer("c1", amount_off_fen=1000)
    p = price(basket(line("a", 6000), line("b", 4000)), o)
    decisions = coupon_restore_decide(pricing=p, refunded_line_ids={"a", "b"}, coupons=[o.coupon], now=NOW)
    assert [(d.coupon_id, d.restored, d.reason) for d in decisions] == [("c1", True, "whole_order_refunded")]


def test_it_keeps_coupons_spent_on_a_partial_refund():
    o = offer("c1", amount_off_fen=1000)
    p = price(basket(line("a", 6000), line("b", 4000)), o)
    (decision,) = coupon_restore_decide(pricing=p, refunded_line_ids={"a"}, coupons=[o.coupon], now=NOW)
    assert not decision.restored and decision.reason == "partial_refund"


def test_it_does_not_restore_an_expired_coupon():
    o = offer("c1", amount_off_fen=1000)
    p = price(basket(line("a", 6000)), o)
    (decision,) = coupon_restore_decide(
        pricing=p, refunded_line_ids={"a"}, coupons=[o.coupon], now=WINDOW.valid_until
    )
    assert not decision.restored and decision.reason == "expired"


offers_st = st.lists(
    st.one_of(
        st.builds(
            lambda a, m, s: ("amount", a, m, s), st.integers(1, 20_000), st.integers(0, 30_000), st.booleans()
        ),
        st.builds(
            lambda b, c, m, s: ("percent", b, c, m, s),
            st.integers(1, 10_000),
            st.none() | st.integers(1, 9000),
            st.integers(0, 30_000),
            st.booleans(),
        ),
        st.builds(lambda m: ("shipping", m), st.integers(0, 30_000)),
        st.builds(lambda p: ("free", p), st.integers(0, 500)),
    ),
    max_size=5,
)


def build_offers(specs) -> list[CouponOffer]:
    offers = []
    for i, spec in enumerate(specs):
        cid = f"c{i}"
        if spec[0] == "amount":
            offers.append(
                offer(cid, amount_off_fen=spec[1], min_spend=spec[2], stacks_with_tier_discount=spec[3])
            )
        elif spec[0] == "percent":
            offers.append(
                offer(
                    cid,
                    CouponKind.PERCENT_OFF,
                    percent_off_bp=spec[1],
                    cap_fen=spec[2],
                    min_spend=spec[3],
                    stacks_with_coupons=spec[4],
                )
            )
        elif spec[0] == "shipping":
            offers.append(offer(cid, CouponKind.FREE_SHIPPING, min_spend=spec[1]))
        else:
            offers.append(offer(cid, CouponKind.EXCHANGE, sku="SKU-l0", exchange_price_fen=spec[1]))
    return offers


basket_st = st.builds(
    lambda rows, ship: basket(
        *(line(f"l{i}", p, q, tier_ok=t) for i, (p, q, t) in enumerate(rows)), shipping=ship
    ),
    st.lists(st.tuples(st.integers(0, 20_000), st.integers(1, 4), st.booleans()), min_size=1, max_size=5),
    st.integers(0, 1500),
)


@settings(max_examples=200)
@given(
    b=basket_st,
    specs=offers_st,
    tier=st.none() | st.integers(1, 5000).map(lambda bp: TierDiscount("gold", bp)),
    data=st.data(),
)
def test_it_gives_the_same_result_whatever_order_the_coupons_come_in(b, specs, tier, data):
    offers = build_offers(specs)
    shuffled = data.draw(st.permutations(offers))
    assert price(b, *offers, tier=tier) == price(b, *shuffled, tier=tier)
    best = basket_price_best(basket=b, member=MEMBER, now=NOW, offers=offers, tier_discount=tier)
    best_shuffled = basket_price_best(basket=b, member=MEMBER, now=NOW, offers=shuffled, tier_discount=tier)
    assert best.payable_fen == best_shuffled.payable_fen and best.applied == best_shuffled.applied


@settings(max_examples=200)
@given(
    b=basket_st,
    specs=offers_st,
    tier=st.none() | st.integers(1, 10_000).map(lambda bp: TierDiscount("gold", bp)),
)
def test_it_never_makes_a_line_negative_nor_discounts_beyond_the_basket(b, specs, tier):
    p = price(b, *build_offers(specs), tier=tier)
    for ln in p.lines:
        assert 0 <= ln.net_fen <= ln.gross_fen
        assert all(s.amount_fen > 0 for s in ln.coupon_shares)
    assert 0 <= p.shipping_discount_fen <= p.shipping_fee_fen
    assert 0 <= p.payable_fen <= p.goods_gross_fen + p.shipping_fee_fen
    assert sum(ln.coupon_discount_fen for ln in p.lines) + p.shipping_discount_fen == sum(
        d.amount_fen for d in p.applied
    )


@settings(max_examples=100)
@given(b=basket_st, specs=offers_st)
def test_best_is_never_dearer_than_plain_pricing(b, specs):
    offers = build_offers(specs)
    plain = price(b, *offers, tier=GOLD)
    best = basket_price_best(basket=b, member=MEMBER, now=NOW, offers=offers, tier_discount=GOLD)
    assert best.payable_fen <= plain.payable_fen
