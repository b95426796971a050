"""Rewards catalogue (积分商城): exchange checks, period windows, fulfilment state machine."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memberhub.domain.rewards import (
    ExchangeQuote,
    ExchangeRefusal,
    ExchangeRefusalCode,
    FulfilmentStatus,
    IllegalFulfilmentTransition,
    LimitPeriod,
    PeriodLimit,
    RewardInvalid,
    RewardItem,
    fulfilment_allowed,
    fulfilment_transition,
    limit_period_window,
    reward_exchange_check,
)

CST = timezone(timedelta(hours=8))
NOW = datetime(2025, 2, 14, 10, 30, tzinfo=CST)  # a Friday
MUG = RewardItem(reward_id="mug", points_price=500, stock=10)


def check(item: RewardItem = MUG, **kw):
    kw.setdefault("member_tier", "silver")
    kw.setdefault("points_balance", 10_000)
    kw.setdefault("now", NOW)
    return reward_exchange_check(item=item, **kw)


def code(outcome) -> ExchangeRefusalCode:
    assert isinstance(outcome, ExchangeRefusal), outcome
    return outcome.code


def test_it_quotes_the_points_for_an_exchange():
    out = check(quantity=2)
    assert out == ExchangeQuote(reward_id="mug", quantity=2, points_total=1000, cash_fen_total=0)


def test_it_quotes_points_plus_cash():
    item = RewardItem(reward_id="kettle", points_price=2000, cash_fen=4900)
    assert check(item).cash_fen_total == 4900


def test_it_refuses_a_reward_without_a_price():
    with pytest.raises(RewardInvalid):
        RewardItem(reward_id="x", points_price=0)


def test_it_refuses_a_non_positive_quantity():
    assert code(check(quantity=0)) is ExchangeRefusalCode.INVALID_QUANTITY


def test_it_refuses_without_enough_points():
    out = check(points_balance=400)
    assert code(out) is ExchangeRefusalCode.INSUFFICIENT_POINTS and out.params["missing_points"] == 100


def test_it_refuses_beyond_the_stock():
    out = check(quantity=3, stock_left=2)
    assert code(out) is ExchangeRefusalCode.OUT_OF_STOCK and out.params["stock_left"] == 2


def test_it_treats_no_stock_as_unlimited():
    assert check(RewardItem(reward_id="coupon", points_price=100), quantity=1000, points_balance=10**6).ok


def test_it_refuses_an_ineligible_tier():
    item = RewardItem(reward_id="lounge", points_price=100, tiers=frozenset({"gold", "diamond"}))
    assert code(check(item)) is ExchangeRefusalCode.TIER_NOT_ELIGIBLE
    assert check(item, member_tier="gold").ok


def test_it_refuses_beyond_the_per_member_limit():
    item = RewardItem(reward_id="mug", points_price=500, per_member_limit=3)
    out = check(item, quantity=2, exchanged_by_member=2)
    assert code(out) is ExchangeRefusalCode.MEMBER_LIMIT_REACHED and out.params["left"] == 1


def test_it_refuses_beyond_the_period_limit():
    item = RewardItem(
        reward_id="mug", points_price=500, period_limit=PeriodLimit(count=2, period=LimitPeriod.MONTH)
    )
    assert check(item, exchanged_in_period=1).ok
    out = check(item, exchanged_in_period=2)
    assert code(out) is ExchangeRefusalCode.PERIOD_LIMIT_REACHED and out.params["period"] == "month"


def test_it_refuses_outside_the_availability_window():
    item = RewardItem(reward_id="mooncake", points_price=100, available_from=NOW + timedelta(days=1))
    assert code(check(item)) is ExchangeRefusalCode.NOT_AVAILABLE_YET
    item = RewardItem(reward_id="mooncake", points_price=100, available_until=NOW)
    assert code(check(item)) is ExchangeRefusalCode.NO_LONGER_AVAILABLE


def test_it_gives_the_local_calendar_month():
    start, end = limit_period_window(period=LimitPeriod.MONTH, now=NOW)
    assert (start, end) == (datetime(2025, 2, 1, tzinfo=CST), datetime(2025, 3, 1, tzinfo=CST))


def test_it_starts_weeks_on_monday():
    start, end = limit_period_window(period=LimitPeriod.WEEK, now=NOW)
    assert (start, end) == (datetime(2025, 2, 10, tzinfo=CST), datetime(2025, 2, 17, tzinfo=CST))


def test_it_gives_the_day_and_the_year():
    assert limit_period_window(period=LimitPeriod.DAY, now=NOW)[1] == datetime(2025, 2, 15, tzinfo=CST)
    assert limit_period_window(period=LimitPeriod.YEAR, now=NOW) == (
        datetime(2025, 1, 1, tzinfo=CST),
        datetime(2026, 1, 1, tzinfo=CST),
    )


@given(
    moment=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(CST)
    ),
    period=st.sampled_from(list(LimitPeriod)),
)
def test_it_always_puts_now_inside_its_period(moment, period):
    start, end = limit_period_window(period=period, now=moment)
    assert start <= moment < end


def test_it_ships_a_pending_order():
    move = fulfilment_transition(current=FulfilmentStatus.PENDING, target=FulfilmentStatus.SHIPPED)
    assert move.status is FulfilmentStatus.SHIPPED and not move.return_points


def test_it_completes_a_shipped_order_by_delivery_or_pick_up():
    for done in (FulfilmentStatus.DELIVERED, FulfilmentStatus.PICKED_UP):
        assert fulfilment_transition(current=FulfilmentStatus.SHIPPED, target=done).status is done


def test_it_returns_points_when_cancelling():
    for current in (FulfilmentStatus.PENDING, FulfilmentStatus.SHIPPED):
        move = fulfilment_transition(current=current, target=FulfilmentStatus.CANCELLED)
        assert move.return_points and move.restock


def test_it_refuses_to_cancel_a_delivered_order():
    with pytest.raises(IllegalFulfilmentTransition) as caught:
        fulfilment_transition(current=FulfilmentStatus.DELIVERED, target=FulfilmentStatus.CANCELLED)
    assert caught.value.code == "illegal_fulfilment_transition"


def test_it_refuses_to_skip_shipping():
    with pytest.raises(IllegalFulfilmentTransition):
        fulfilment_transition(current=FulfilmentStatus.PENDING, target=FulfilmentStatus.DELIVERED)


def test_it_refuses_a_move_to_the_same_state():
    with pytest.raises(IllegalFulfilmentTransition):
        fulfilment_transition(current=FulfilmentStatus.PENDING, target=FulfilmentStatus.PENDING)


def test_it_lets_nothing_leave_a_terminal_state():
    for terminal in (FulfilmentStatus.DELIVERED, FulfilmentStatus.PICKED_UP, FulfilmentStatus.CANCELLED):
        assert fulfilment_allowed(current=terminal) == frozenset()
