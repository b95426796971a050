from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memberhub.domain.points_lots import InvalidAmount
from memberhub.domain.points_refund import (
    EarnedLine,
    InvalidRefund,
    clawback_settle,
    debt_repay,
    refund_clawback,
    whole_refund,
)
from memberhub.domain.points_rules import EarnRules, OrderLine, Rounding, earn_points

SH = ZoneInfo("Asia/Shanghai")


def test_it_claws_back_proportionally_to_the_refunded_paid_amount():
    lines = [EarnedLine("a", paid_fen=10_000, points=150), EarnedLine("b", paid_fen=5_000, points=50)]
    result = refund_clawback(lines=lines, refund_fen={"a": 5_000})
    assert result.points == 75
    assert result.lines[0].refunded_fen_total == 5_000 and result.lines[0].clawed_back_total == 75


def test_it_claws_back_everything_on_a_whole_refund():
    lines = [EarnedLine("a", 10_000, 150, refunded_fen=3_333, clawed_back=49), EarnedLine("b", 5_000, 50)]
    result = refund_clawback(lines=lines, refund_fen=whole_refund(lines=lines))
    assert result.points == 101 + 50


def test_it_uses_the_rounding_recorded_at_earn_time():
    line = EarnedLine("a", paid_fen=300, points=10, rounding=Rounding.CEIL)
    assert refund_clawback(lines=[line], refund_fen={"a": 100}).points == 4  # ceil(10/3)


def test_it_builds_earned_lines_from_an_earn_result():
    earned = earn_points(rules=EarnRules(), lines=[OrderLine("a", "S", "c", 1999)],
                         at=datetime(2025, 1, 2, tzinfo=SH))
    line = EarnedLine.from_earn(earned.lines[0])
    assert (line.paid_fen, line.points, line.rounding) == (1999, 19, Rounding.FLOOR)


def test_it_refuses_an_unknown_line_a_negative_refund_and_refunding_more_than_paid():
    lines = [EarnedLine("a", 1_000, 10, refunded_fen=600)]
    with pytest.raises(InvalidRefund):
        refund_clawback(lines=lines, refund_fen={"zz": 1})
    with pytest.raises(InvalidRefund):
        refund_clawback(lines=lines, refund_fen={"a": -1})
    with pytest.raises(InvalidRefund) as caught:
        refund_clawback(lines=lines, refund_fen={"a": 401})
    assert caught.value.params["refundable_fen"] == 400


def test_it_takes_nothing_back_for_a_line_that_earned_nothing():
    assert refund_clawback(lines=[EarnedLine("a", 1_000, 0)], refund_fen={"a": 1_000}).points == 0


@given(paid=st.integers(1, 1_000_000), points=st.integers(0, 50_000),
       parts=st.lists(st.integers(0, 1_000_000), min_size=1, max_size=8),
       rounding=st.sampled_from(list(Rounding)))
def test_it_never_claws_back_more_than_was_earned_across_partial_refunds(paid, points, parts, rounding):
    line = EarnedLine("a", paid, points, rounding)
    total = 0
    for part in parts:
        amount = min(part, paid - line.refunded_fen)
        result = refund_clawback(lines=[line], refund_fen={"a": amount})
        assert result.points >= 0
        total += result.points
        got = result.lines[0]
        line = EarnedLine("a", paid, points, rounding, got.refunded_fen_total, got.clawed_back_total)
        assert line.clawed_back <= points
    assert total == line.clawed_back <= points
    final = refund_clawback(lines=[line], refund_fen=whole_refund(lines=[line]))
    assert total + final.points == points


def test_it_voids_the_orders_pending_points_first():
    s = clawback_settle(clawback=100, available=500, max_negative=0, pending=80)
    assert (s.from_pending, s.from_balance, s.into_negative, s.debt) == (80, 20, 0, 0)


def test_it_records_a_debt_when_the_policy_forbids_a_negative_balance():
    s = clawback_settle(clawback=100, available=30, max_negative=0)
    assert (s.from_pending, s.from_balance, s.into_negative, s.debt) == (0, 30, 0, 70)


def test_it_lets_the_balance_go_negative_only_as_far_as_the_policy_allows():
    s = clawback_settle(clawback=100, available=30, max_negative=50)
    assert (s.from_balance, s.into_negative, s.debt) == (30, 50, 20)


def test_it_counts_an_existing_overdraft_against_the_negative_allowance():
    s = clawback_settle(clawback=100, available=-40, max_negative=50)
    assert (s.from_balance, s.into_negative, s.debt) == (0, 10, 90)


def test_it_refuses_negative_settlement_inputs():
    with pytest.raises(InvalidAmount):
        clawback_settle(clawback=-1, available=0, max_negative=0)


@given(clawback=st.integers(0, 10_000), available=st.integers(-5_000, 10_000), max_negative=st.integers(0, 5_000),
       pending=st.integers(0, 5_000))
def test_it_settles_the_whole_clawback_and_respects_the_floor(clawback, available, max_negative, pending):
    s = clawback_settle(clawback=clawback, available=available, max_negative=max_negative, pending=pending)
    assert min(s.from_pending, s.from_balance, s.into_negative, s.debt) >= 0
    assert s.from_pending + s.from_balance + s.into_negative + s.debt == clawback
    after = available - s.from_balance - s.into_negative
    assert after >= min(-max_negative, available)


def test_it_repays_debt_before_creating_a_new_lot():
    r = debt_repay(earn=100, debt=30)
    assert (r.to_negative, r.to_debt, r.to_lot) == (0, 30, 70)
    r = debt_repay(earn=20, debt=30)
    assert (r.to_negative, r.to_debt, r.to_lot) == (0, 20, 0)


def test_it_refills_a_negative_balance_before_the_debt():
    r = debt_repay(earn=100, debt=20, balance=-30)
    assert (r.to_negative, r.to_debt, r.to_lot) == (30, 20, 50)


def test_it_refuses_a_negative_earn_or_debt():
    with pytest.raises(InvalidAmount):
        debt_repay(earn=-1, debt=0)
