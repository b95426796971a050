from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memberhub.domain.benefits import (
    BasketLine,
    Benefit,
    TierBenefits,
    default_benefits,
    member_price,
    quote,
)
from memberhub.domain.points_rules import EarnRules, InvalidRule

SH = ZoneInfo("Asia/Shanghai")
AT = datetime(2025, 6, 10, 14, tzinfo=SH)
GOLD = TierBenefits("gold", discount_permille=900, points_multiplier=Decimal("1.5"), free_shipping=True,
                    birthday_points=300, discount_excluded_categories=frozenset({"tobacco"}))


def test_it_applies_the_member_discount_to_each_line_total():
    q = quote(benefits=GOLD, basket=[BasketLine("a", "S1", "food", 3, 3_333)], earn_rules=EarnRules(), at=AT)
    # 9 999 × 0.9 = 8 999.1 → 8 999 (half-up on the line total)
    assert (q.list_fen, q.member_fen, q.discount_fen) == (9_999, 8_999, 1_000)


def test_it_rounds_the_member_price_half_up():
    assert member_price(list_fen=15, discount_permille=950) == 14  # 14.25
    assert member_price(list_fen=10, discount_permille=950) == 10  # 9.5 → 10
    assert member_price(list_fen=1, discount_permille=880) == 1  # 0.88


def test_it_leaves_excluded_lines_at_list_price():
    basket = [BasketLine("a", "CIG", "tobacco", 1, 5_000), BasketLine("b", "S1", "food", 1, 5_000)]
    q = quote(benefits=GOLD, basket=basket, earn_rules=EarnRules(), at=AT)
    assert [(x.member_fen, x.discounted) for x in q.lines] == [(5_000, False), (4_500, True)]


def test_it_estimates_points_on_the_member_price_with_the_tier_multiplier():
    q = quote(benefits=GOLD, basket=[BasketLine("a", "S1", "food", 2, 10_000)], earn_rules=EarnRules(), at=AT)
    assert q.earn.points == 270  # ¥180 × 1.5
    assert any(step["step"] == "tier_multiplier" and step["code"] == "gold" for step in q.earn.trace)


def test_it_lists_the_benefits_that_apply_at_the_till():
    q = quote(benefits=GOLD, basket=[BasketLine("a", "S1", "food", 1, 100)], earn_rules=EarnRules(), at=AT)
    assert q.benefits == (Benefit.MEMBER_DISCOUNT, Benefit.POINTS_MULTIPLIER, Benefit.FREE_SHIPPING)
    assert Benefit.BIRTHDAY_GIFT in GOLD.applicable()


def test_it_leaves_the_discount_out_when_no_line_got_it():
    q = quote(benefits=GOLD, basket=[BasketLine("a", "CIG", "tobacco", 1, 100)], earn_rules=EarnRules(), at=AT)
    assert Benefit.MEMBER_DISCOUNT not in q.benefits


def test_it_ships_default_benefits_for_the_default_ladder():
    benefits = default_benefits()
    assert [benefits[c].discount_permille for c in ("normal", "silver", "gold", "diamond")] == [1000, 950, 900, 850]


def test_it_refuses_a_discount_outside_one_to_a_thousand_per_mille():
    with pytest.raises(InvalidRule):
        TierBenefits("x", discount_permille=0)
    with pytest.raises(InvalidRule):
        TierBenefits("x", discount_permille=1001)
    with pytest.raises(InvalidRule):
        BasketLine("a", "S", "c", -1, 100)


@given(lines=st.lists(st.tuples(st.integers(0, 50), st.integers(0, 10_000_000)), min_size=1, max_size=8),
       permille=st.integers(1, 1000))
def test_it_never_gives_a_negative_discount_or_one_above_the_price(lines, permille):
    basket = [BasketLine(str(i), "S", "c", qty, price) for i, (qty, price) in enumerate(lines)]
    q = quote(benefits=TierBenefits("t", discount_permille=permille), basket=basket, earn_rules=EarnRules(), at=AT)
    for line in q.lines:
        assert 0 <= line.discount_fen <= line.list_fen
        assert line.member_fen + line.discount_fen == line.list_fen
    assert q.member_fen + q.discount_fen == q.list_fen
