"""Coupon templates, validity windows, issue limits and single-coupon validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memberhub.domain.coupon_rules import (
    Basket,
    BasketInvalid,
    BasketLine,
    Channel,
    CouponConditions,
    CouponKind,
    CouponState,
    CouponStatus,
    CouponTemplate,
    CouponTemplateInvalid,
    FixedValidity,
    IssueRefusalCode,
    MemberContext,
    NaiveDatetime,
    RelativeValidity,
    coupon_issue_check,
    coupon_validity_window,
)
from memberhub.domain.coupon_validate import (
    CouponDiscount,
    CouponMismatch,
    CouponRefusal,
    PricingState,
    RefusalCode,
    coupon_validate,
    discount_allocate,
    pricing_start,
)

CST = timezone(timedelta(hours=8))
NOW = datetime(2025, 6, 15, 12, 0, tzinfo=CST)
WINDOW = FixedValidity(
    valid_from=datetime(2025, 6, 1, tzinfo=CST), valid_until=datetime(2025, 7, 1, tzinfo=CST)
)
MEMBER = MemberContext(member_id="m1", tier="gold", is_first_purchase=False)


def template(kind: CouponKind = CouponKind.AMOUNT_OFF, **kw) -> CouponTemplate:
    defaults: dict = {"template_id": "t1", "kind": kind, "validity": WINDOW}
    if kind is CouponKind.AMOUNT_OFF:
        defaults["amount_off_fen"] = 2000
    if kind is CouponKind.PERCENT_OFF:
        defaults["percent_off_bp"] = 2000
    if kind in (CouponKind.FREE_ITEM, CouponKind.EXCHANGE):
        defaults["sku"] = "TEA"
    defaults.update(kw)
    return CouponTemplate(**defaults)


def coupon(**kw) -> CouponState:
    defaults: dict = {
        "coupon_id": "c1",
        "template_id": "t1",
        "valid_from": WINDOW.valid_from,
        "valid_until": WINDOW.valid_until,
    }
    defaults.update(kw)
    return CouponState(**defaults)


def line(line_id: str = "l1", sku: str = "SHIRT", category: str = "apparel", price: int = 5000, qty: int = 1):
    return BasketLine(line_id=line_id, sku=sku, category=category, unit_price_fen=price, quantity=qty)


def basket(
    *lines: BasketLine, store: str = "s1", channel: Channel = Channel.OFFLINE, shipping: int = 0
) -> Basket:
    return Basket(
        lines=lines or (line(price=12000),), store_id=store, channel=channel, shipping_fee_fen=shipping
    )


def validate(t: CouponTemplate, b: Basket | None = None, **kw):
    return coupon_validate(
        template=t,
        coupon=kw.pop("coupon", coupon()),
        basket=b or basket(),
        member=kw.pop("member", MEMBER),
        now=kw.pop("now", NOW),
        **kw,
    )


def refusal(outcome) -> RefusalCode:
    assert isinstance(outcome, CouponRefusal), outcome
    return outcome.code


# --- templates and validity --------------------------------------------------------------


def test_it_refuses_an_amount_off_template_without_an_amount():
    with pytest.raises(CouponTemplateInvalid):
        template(amount_off_fen=0)


def test_it_refuses_a_percent_above_100():
    with pytest.raises(CouponTemplateInvalid):
        template(CouponKind.PERCENT_OFF, percent_off_bp=10_001)


def test_it_requires_a_sku_for_an_exchange_coupon():
    with pytest.raises(CouponTemplateInvalid):
        template(CouponKind.EXCHANGE, sku=None)


def test_it_refuses_naive_datetimes():
    with pytest.raises(NaiveDatetime):
        template(validity=FixedValidity(valid_from=datetime(2025, 1, 1), valid_until=datetime(2025, 2, 1)))


def test_it_keeps_fixed_dates_whatever_the_issue_time():
    window = coupon_validity_window(template=template(), issued_at=NOW)
    assert (window.valid_from, window.valid_until) == (WINDOW.valid_from, WINDOW.valid_until)


def test_it_counts_the_issue_day_as_day_one_for_relative_validity():
    t = template(validity=RelativeValidity(days=7))
    window = coupon_validity_window(template=t, issued_at=datetime(2025, 3, 1, 15, 42, tzinfo=CST))
    assert window.valid_from == datetime(2025, 3, 1, 15, 42, tzinfo=CST)
    assert window.valid_until == datetime(2025, 3, 8, tzinfo=CST)


def test_it_can_count_exact_days_from_issue():
    t = template(validity=RelativeValidity(days=7, whole_days=False))
    window = coupon_validity_window(template=t, issued_at=datetime(2025, 3, 1, 15, 42, tzinfo=CST))
    assert window.valid_until == datetime(2025, 3, 8, 15, 42, tzinfo=CST)


def test_it_starts_a_delayed_coupon_at_midnight():
    t = template(validity=RelativeValidity(days=3, delay_days=1))
    window = coupon_validity_window(template=t, issued_at=datetime(2025, 3, 1, 15, 42, tzinfo=CST))
    assert window.valid_from == datetime(2025, 3, 2, tzinfo=CST)
    assert window.valid_until == datetime(2025, 3, 5, tzinfo=CST)


def test_it_caps_relative_validity_at_the_campaign_end():
    end = datetime(2025, 3, 4, tzinfo=CST)
    t = template(validity=RelativeValidity(days=30, not_after=end))
    assert coupon_validity_window(template=t, issued_at=datetime(2025, 3, 1, tzinfo=CST)).valid_until == end


def test_it_refuses_to_issue_after_the_campaign_end():
    t = template(validity=RelativeValidity(days=30, not_after=datetime(2025, 3, 1, tzinfo=CST)))
    with pytest.raises(CouponTemplateInvalid):
        coupon_validity_window(template=t, issued_at=datetime(2025, 3, 2, tzinfo=CST))


def test_it_allows_issuing_within_limits():
    t = template(per_member_limit=2, total_quantity=100)
    assert coupon_issue_check(template=t, issued_to_member=1, issued_total=99) is None


def test_it_refuses_issuing_beyond_the_per_member_limit():
    t = template(per_member_limit=2)
    result = coupon_issue_check(template=t, issued_to_member=2, issued_total=2)
    assert result is not None and result.code is IssueRefusalCode.MEMBER_LIMIT_REACHED


def test_it_refuses_issuing_beyond_the_total_quantity():
    t = template(total_quantity=100)
    result = coupon_issue_check(template=t, issued_to_member=0, issued_total=100)
    assert result is not None and result.code is IssueRefusalCode.SOLD_OUT
    assert result.params["left"] == 0


def test_it_refuses_issuing_once_the_budget_is_spent():
    t = template(budget_fen=10_000)
    result = coupon_issue_check(template=t, issued_to_member=0, issued_total=5, budget_spent_fen=10_000)
    assert result is not None and result.code is IssueRefusalCode.BUDGET_EXHAUSTED


def test_it_refuses_duplicate_line_ids():
    with pytest.raises(BasketInvalid):
        basket(line("a"), line("a"))


# --- validation: the gate ------------------------------------------------------------------


def test_it_refuses_a_used_coupon():
    assert refusal(validate(template(), coupon=coupon(status=CouponStatus.USED))) is RefusalCode.ALREADY_USED


def test_it_refuses_a_revoked_coupon():
    assert refusal(validate(template(), coupon=coupon(status=CouponStatus.REVOKED))) is RefusalCode.REVOKED


def test_it_refuses_before_the_window():
    assert (
        refusal(validate(template(), now=WINDOW.valid_from - timedelta(seconds=1)))
        is RefusalCode.NOT_YET_VALID
    )


def test_it_treats_valid_until_as_exclusive():
    assert refusal(validate(template(), now=WINDOW.valid_until)) is RefusalCode.EXPIRED
    assert validate(template(), now=WINDOW.valid_until - timedelta(seconds=1)).ok


def test_it_compares_times_across_time_zones():
    assert validate(template(), now=WINDOW.valid_from.astimezone(UTC)).ok


def test_it_refuses_someone_elses_coupon():
    assert refusal(validate(template(), coupon=coupon(owner_member_id="m2"))) is RefusalCode.NOT_OWNER


def test_it_refuses_the_wrong_store():
    t = template(conditions=CouponConditions(store_ids=frozenset({"s2"})))
    assert refusal(validate(t)) is RefusalCode.WRONG_STORE


def test_it_refuses_the_wrong_channel():
    t = template(conditions=CouponConditions(channels=frozenset({Channel.ONLINE})))
    assert refusal(validate(t)) is RefusalCode.WRONG_CHANNEL


def test_it_refuses_an_ineligible_tier():
    t = template(conditions=CouponConditions(tiers=frozenset({"diamond"})))
    out = validate(t)
    assert refusal(out) is RefusalCode.TIER_NOT_ELIGIBLE and out.params["tier"] == "gold"


def test_it_refuses_a_first_purchase_coupon_on_a_later_purchase():
    t = template(conditions=CouponConditions(first_purchase_only=True))
    assert refusal(validate(t)) is RefusalCode.NOT_FIRST_PURCHASE
    first = MemberContext(member_id="m1", tier="gold", is_first_purchase=True)
    assert validate(t, member=first).ok


def test_it_raises_when_the_coupon_is_not_of_the_template():
    with pytest.raises(CouponMismatch):
        validate(template(), coupon=coupon(template_id="other"))


# --- validation: amounts -------------------------------------------------------------------


def test_it_gives_the_amount_off_above_the_threshold():
    t = template(amount_off_fen=2000, conditions=CouponConditions(min_spend_fen=10_000))
    out = validate(t)
    assert isinstance(out, CouponDiscount) and out.amount_fen == 2000


def test_it_reports_how_much_is_missing_below_the_threshold():
    t = template(conditions=CouponConditions(min_spend_fen=15_000))
    out = validate(t)
    assert refusal(out) is RefusalCode.BELOW_MINIMUM_SPEND
    assert out.params == {"missing_fen": 3000, "min_spend_fen": 15_000, "eligible_fen": 12_000}


def test_it_counts_only_eligible_lines_towards_the_threshold():
    t = template(conditions=CouponConditions(min_spend_fen=10_000, include_categories=frozenset({"apparel"})))
    b = basket(line("a", price=6000), line("b", sku="TEA", category="food", price=9000))
    out = validate(t, b)
    assert refusal(out) is RefusalCode.BELOW_MINIMUM_SPEND and out.params["missing_fen"] == 4000


def test_it_lets_an_exclusion_win_over_an_inclusion():
    t = template(
        conditions=CouponConditions(
            include_categories=frozenset({"apparel"}), exclude_skus=frozenset({"SHIRT"})
        )
    )
    assert refusal(validate(t)) is RefusalCode.NO_ELIGIBLE_ITEMS


def test_it_never_discounts_more_than_the_eligible_amount():
    out = validate(template(amount_off_fen=50_000))
    assert isinstance(out, CouponDiscount) and out.amount_fen == 12_000


def test_it_caps_a_percent_coupon():
    t = template(CouponKind.PERCENT_OFF, percent_off_bp=2000, cap_fen=5000)
    assert validate(t, basket(line(price=100_000))).amount_fen == 5000
    assert validate(t, basket(line(price=10_000))).amount_fen == 2000


def test_it_rounds_a_percent_discount_half_up_to_the_fen():
    t = template(CouponKind.PERCENT_OFF, percent_off_bp=2000)
    assert validate(t, basket(line(price=1999))).amount_fen == 400  # 399.8
    assert validate(t, basket(line(price=1992))).amount_fen == 398  # 398.4


def test_it_gives_one_unit_free_for_a_free_item_coupon():
    t = template(CouponKind.FREE_ITEM, sku="TEA")
    b = basket(line("a"), line("b", sku="TEA", category="food", price=1500, qty=3))
    out = validate(t, b)
    assert out.amount_fen == 1500 and [(a.line_id, a.amount_fen) for a in out.allocations] == [("b", 1500)]


def test_it_refuses_a_free_item_coupon_without_the_item():
    assert refusal(validate(template(CouponKind.FREE_ITEM, sku="TEA"))) is RefusalCode.NO_ELIGIBLE_ITEMS


def test_it_charges_the_fixed_price_of_an_exchange_coupon():
    t = template(CouponKind.EXCHANGE, sku="TEA", exchange_price_fen=990)
    out = validate(t, basket(line(sku="TEA", price=2990)))
    assert out.amount_fen == 2000


def test_it_refuses_an_exchange_coupon_dearer_than_the_item():
    t = template(CouponKind.EXCHANGE, sku="TEA", exchange_price_fen=3000)
    assert refusal(validate(t, basket(line(sku="TEA", price=2990)))) is RefusalCode.NOTHING_TO_DISCOUNT


def test_it_waives_the_shipping_fee():
    out = validate(template(CouponKind.FREE_SHIPPING), basket(line(), shipping=800))
    assert out.amount_fen == 800 and out.shipping_fen == 800 and out.allocations == ()


def test_it_caps_a_shipping_coupon():
    out = validate(template(CouponKind.FREE_SHIPPING, cap_fen=500), basket(line(), shipping=800))
    assert out.amount_fen == 500


def test_it_refuses_a_shipping_coupon_without_shipping():
    assert refusal(validate(template(CouponKind.FREE_SHIPPING))) is RefusalCode.NO_SHIPPING_FEE


def test_it_refuses_a_discount_beyond_the_remaining_budget():
    out = validate(template(amount_off_fen=2000, budget_fen=10_000), budget_spent_fen=9000)
    assert refusal(out) is RefusalCode.BUDGET_EXHAUSTED and out.params["remaining_fen"] == 1000


def test_it_refuses_a_coupon_twice_in_one_order():
    t = template()
    state = PricingState(net_by_line={"l1": 12_000}, shipping_due_fen=0, applied=((t, "c1"),))
    assert refusal(validate(t, state=state)) is RefusalCode.ALREADY_APPLIED


def test_it_refuses_a_non_stackable_coupon_after_another():
    other = template(template_id="t0")
    state = PricingState(net_by_line={"l1": 12_000}, shipping_due_fen=0, applied=((other, "c0"),))
    assert refusal(validate(template(stacks_with_coupons=False), state=state)) is RefusalCode.NOT_STACKABLE


def test_it_refuses_a_coupon_after_a_tier_discount_it_does_not_share_with():
    state = PricingState(
        net_by_line={"l1": 9600}, shipping_due_fen=0, tier_discounted_lines=frozenset({"l1"})
    )
    out = validate(template(stacks_with_tier_discount=False), state=state)
    assert refusal(out) is RefusalCode.NOT_STACKABLE_WITH_TIER_DISCOUNT


def test_it_measures_the_threshold_on_the_current_net_amount():
    t = template(conditions=CouponConditions(min_spend_fen=10_000))
    state = PricingState(net_by_line={"l1": 9600}, shipping_due_fen=0)
    assert refusal(validate(t, state=state)) is RefusalCode.BELOW_MINIMUM_SPEND


def test_it_allocates_over_lines_in_proportion_and_exactly():
    b = basket(line("a", price=1000), line("b", price=2000), line("c", price=3000))
    out = validate(template(amount_off_fen=1000), b)
    assert [(a.line_id, a.amount_fen) for a in out.allocations] == [("a", 167), ("b", 333), ("c", 500)]


lines_st = st.lists(
    st.tuples(st.integers(0, 200_000), st.integers(1, 5), st.sampled_from(["apparel", "food"])),
    min_size=1,
    max_size=6,
)


@given(
    lines=lines_st,
    kind=st.sampled_from([CouponKind.AMOUNT_OFF, CouponKind.PERCENT_OFF]),
    amount=st.integers(1, 300_000),
    bp=st.integers(1, 10_000),
    cap=st.none() | st.integers(1, 100_000),
    min_spend=st.integers(0, 200_000),
)
def test_it_never_gives_a_negative_discount_or_more_than_the_eligible_amount(
    lines, kind, amount, bp, cap, min_spend
):
    b = basket(
        *(line(f"l{i}", sku=f"S{i}", category=cat, price=p, qty=q) for i, (p, q, cat) in enumerate(lines))
    )
    conditions = CouponConditions(min_spend_fen=min_spend, include_categories=frozenset({"apparel"}))
    if kind is CouponKind.AMOUNT_OFF:
        t = template(kind, amount_off_fen=amount, conditions=conditions)
    else:
        t = template(kind, percent_off_bp=bp, cap_fen=cap, conditions=conditions)
    out = validate(t, b)
    if isinstance(out, CouponDiscount):
        eligible = {ln.line_id: ln.gross_fen for ln in b.lines if ln.category == "apparel"}
        assert 0 < out.amount_fen <= sum(eligible.values())
        assert sum(a.amount_fen for a in out.allocations) == out.amount_fen
        for a in out.allocations:
            assert 0 < a.amount_fen <= eligible[a.line_id]


@given(total=st.integers(0, 10**7), weights=st.lists(st.integers(0, 10**6), min_size=1, max_size=10))
def test_it_allocates_exactly_and_never_beyond_a_line(total, weights):
    named = [(f"l{i}", w) for i, w in enumerate(weights)]
    total = min(total, sum(weights))
    shares = discount_allocate(total_fen=total, weights=named)
    assert sum(s.amount_fen for s in shares) == total
    assert all(0 < s.amount_fen <= dict(named)[s.line_id] for s in shares)


def test_it_starts_pricing_at_gross_amounts():
    b = basket(line("a", price=1000, qty=3), shipping=500)
    assert pricing_start(basket=b) == PricingState(net_by_line={"a": 3000}, shipping_due_fen=500)
