import pytest
from hypothesis import given
from hypothesis import strategies as st

from memberhub.domain.points_lots import InvalidAmount
from memberhub.domain.points_redeem import RedeemPolicy, redeem_deduction, redeem_limit
from memberhub.domain.points_rules import InvalidRule

POLICY = RedeemPolicy(points_per_unit=100, unit_fen=100, max_order_percent=50)


def test_it_turns_whole_units_of_points_into_fen():
    assert redeem_deduction(points=1_200, policy=POLICY) == 1_200
    assert redeem_deduction(points=1_000, policy=RedeemPolicy(points_per_unit=1_000, unit_fen=500)) == 500


def test_it_refuses_points_that_are_not_a_whole_unit():
    with pytest.raises(InvalidAmount) as caught:
        redeem_deduction(points=150, policy=POLICY)
    assert caught.value.params["points_per_unit"] == 100


def test_it_refuses_a_redemption_below_the_minimum():
    with pytest.raises(InvalidAmount):
        redeem_deduction(points=100, policy=RedeemPolicy(min_points=500))


def test_it_caps_redemption_at_the_share_of_the_order():
    limit = redeem_limit(order_fen=10_050, available=100_000, policy=POLICY)
    assert (limit.max_points, limit.max_deduction_fen) == (5_000, 5_000)


def test_it_caps_redemption_at_the_balance_in_whole_units():
    limit = redeem_limit(order_fen=100_000, available=1_299, policy=POLICY)
    assert (limit.max_points, limit.max_deduction_fen) == (1_200, 1_200)


def test_it_offers_nothing_below_the_minimum_or_with_a_negative_balance():
    assert redeem_limit(order_fen=100_000, available=400, policy=RedeemPolicy(min_points=500)).max_points == 0
    assert redeem_limit(order_fen=100_000, available=-50, policy=POLICY).max_points == 0


def test_it_refuses_an_inconsistent_policy():
    with pytest.raises(InvalidRule):
        RedeemPolicy(max_order_percent=120)
    with pytest.raises(InvalidRule):
        RedeemPolicy(points_per_unit=0)


@given(order=st.integers(0, 10_000_000), available=st.integers(-1000, 10_000_000),
       ppu=st.integers(1, 1000), unit=st.integers(1, 1000), pct=st.integers(0, 100))
def test_it_never_exceeds_the_balance_or_the_order_cap(order, available, ppu, unit, pct):
    policy = RedeemPolicy(points_per_unit=ppu, unit_fen=unit, max_order_percent=pct)
    limit = redeem_limit(order_fen=order, available=available, policy=policy)
    assert 0 <= limit.max_points <= max(available, 0)
    assert limit.max_deduction_fen <= order * pct / 100
    assert redeem_deduction(points=limit.max_points, policy=policy) == limit.max_deduction_fen
