from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memberhub.domain.errors import DomainError
from memberhub.domain.points_lots import (
    BucketBy,
    ExpiryKind,
    ExpiryPolicy,
    InsufficientPoints,
    InvalidAmount,
    Lot,
    add_months,
    draw_order_key,
    expiry_buckets,
    lot_draw,
    lot_expiry,
    lots_expired,
    pending_until,
    spendable_points,
)

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2025, 6, 15, 12, 0, tzinfo=SH)


def lot(lot_id, remaining, expires_at=None, earned_at=None, available_at=None, points=None):
    return Lot(lot_id=lot_id, points=points if points is not None else max(remaining, 1), remaining=remaining,
               earned_at=earned_at or datetime(2025, 1, 1, tzinfo=SH), expires_at=expires_at,
               available_at=available_at)


def test_it_adds_months_clamping_to_month_end():
    assert add_months(datetime(2025, 1, 31, 10, tzinfo=SH), 1) == datetime(2025, 2, 28, 10, tzinfo=SH)
    assert add_months(datetime(2024, 3, 31, tzinfo=SH), -1) == datetime(2024, 2, 29, tzinfo=SH)
    assert add_months(datetime(2025, 11, 30, tzinfo=SH), 14) == datetime(2027, 1, 30, tzinfo=SH)


def test_it_expires_months_after_at_the_end_of_the_anniversary_day():
    policy = ExpiryPolicy(kind=ExpiryKind.MONTHS_AFTER, months=12)
    expiry = lot_expiry(earned_at=datetime(2025, 3, 10, 15, 30, tzinfo=SH), policy=policy)
    assert expiry == datetime(2026, 3, 11, 0, 0, tzinfo=SH)


def test_it_uses_the_local_date_not_utc_for_expiry():
    policy = ExpiryPolicy(kind=ExpiryKind.MONTHS_AFTER, months=1)
    # 31 Jan 20:00 UTC is already 1 Feb in Shanghai
    expiry = lot_expiry(earned_at=datetime(2025, 1, 31, 20, 0, tzinfo=UTC), policy=policy)
    assert expiry == datetime(2025, 3, 2, tzinfo=SH)


def test_it_expires_at_the_end_of_the_following_year():
    policy = ExpiryPolicy(kind=ExpiryKind.END_OF_NEXT_YEAR)
    assert lot_expiry(earned_at=datetime(2025, 1, 1, 0, 1, tzinfo=SH), policy=policy) == datetime(
        2027, 1, 1, tzinfo=SH)
    assert lot_expiry(earned_at=datetime(2025, 12, 31, 23, 59, tzinfo=SH), policy=policy) == datetime(
        2027, 1, 1, tzinfo=SH)


def test_it_never_expires_under_the_never_policy():
    assert lot_expiry(earned_at=NOW, policy=ExpiryPolicy(kind=ExpiryKind.NEVER)) is None


def test_it_refuses_a_naive_time():
    with pytest.raises(ValueError):
        lot_expiry(earned_at=datetime(2025, 1, 1), policy=ExpiryPolicy())


def test_it_keeps_points_pending_through_the_return_window():
    assert pending_until(earned_at=NOW, return_window_days=7) == NOW + timedelta(days=7)
    assert pending_until(earned_at=NOW, return_window_days=0) == NOW


def test_it_draws_the_oldest_expiring_lot_first():
    lots = [lot("late", 50, datetime(2026, 1, 1, tzinfo=SH)), lot("never", 50),
            lot("soon", 30, datetime(2025, 7, 1, tzinfo=SH))]
    draws = lot_draw(lots=lots, amount=60, now=NOW)
    assert [(d.lot_id, d.points) for d in draws] == [("soon", 30), ("late", 30)]


def test_it_draws_never_expiring_lots_last():
    lots = [lot("never", 100), lot("dated", 10, datetime(2030, 1, 1, tzinfo=SH))]
    assert [d.lot_id for d in lot_draw(lots=lots, amount=20, now=NOW)] == ["dated", "never"]


def test_it_breaks_expiry_ties_by_earned_time_then_lot_id():
    exp = datetime(2026, 1, 1, tzinfo=SH)
    lots = [lot("b", 5, exp, earned_at=datetime(2025, 2, 1, tzinfo=SH)),
            lot("a", 5, exp, earned_at=datetime(2025, 2, 1, tzinfo=SH)),
            lot("z", 5, exp, earned_at=datetime(2025, 1, 1, tzinfo=SH))]
    assert [d.lot_id for d in lot_draw(lots=lots, amount=15, now=NOW)] == ["z", "a", "b"]


def test_it_skips_pending_and_expired_lots():
    lots = [lot("pending", 100, available_at=NOW + timedelta(days=1)),
            lot("expired", 100, expires_at=NOW), lot("ok", 10)]
    assert spendable_points(lots=lots, now=NOW) == 10
    with pytest.raises(InsufficientPoints) as caught:
        lot_draw(lots=lots, amount=11, now=NOW)
    assert caught.value.params == {"available": 10, "requested": 11}
    assert isinstance(caught.value, DomainError) and caught.value.code == "insufficient_points"


def test_it_returns_no_draws_for_zero_and_refuses_negative():
    assert lot_draw(lots=[lot("a", 5)], amount=0, now=NOW) == ()
    with pytest.raises(InvalidAmount):
        lot_draw(lots=[lot("a", 5)], amount=-1, now=NOW)


def test_it_lists_expired_lots_with_points_left():
    lots = [lot("gone", 40, expires_at=NOW - timedelta(seconds=1)), lot("empty", 0, expires_at=NOW - timedelta(1)),
            lot("fine", 5, expires_at=NOW + timedelta(1))]
    assert [(e.lot_id, e.points) for e in lots_expired(lots=lots, now=NOW)] == [("gone", 40)]


def test_it_buckets_what_expires_by_month_with_midnight_in_the_previous_day():
    lots = [lot("a", 10, datetime(2026, 1, 1, tzinfo=SH)), lot("b", 5, datetime(2025, 12, 15, tzinfo=SH)),
            lot("c", 7, datetime(2025, 8, 2, tzinfo=SH)), lot("never", 99), lot("zero", 0, NOW + timedelta(3))]
    buckets = expiry_buckets(lots=lots, now=NOW)
    assert [(b.period, b.points, b.lots) for b in buckets] == [(date(2025, 8, 1), 7, 1), (date(2025, 12, 1), 15, 2)]


def test_it_buckets_by_last_valid_date():
    lots = [lot("a", 10, datetime(2026, 1, 1, tzinfo=SH)), lot("b", 5, datetime(2026, 1, 1, tzinfo=SH))]
    buckets = expiry_buckets(lots=lots, now=NOW, by=BucketBy.DATE)
    assert [(b.period, b.points, b.lots) for b in buckets] == [(date(2025, 12, 31), 15, 2)]


BASE = datetime(2025, 1, 1, tzinfo=SH)
lot_strategy = st.builds(
    lambda i, remaining, exp_days, earn_days: Lot(
        lot_id=f"l{i}", points=remaining + 1, remaining=remaining,
        earned_at=BASE + timedelta(days=earn_days),
        expires_at=None if exp_days is None else BASE + timedelta(days=200 + exp_days)),
    st.integers(0, 10_000), st.integers(0, 500), st.none() | st.integers(0, 400), st.integers(0, 150),
)


@given(lots=st.lists(lot_strategy, max_size=12, unique_by=lambda x: x.lot_id), amount=st.integers(0, 3000))
def test_it_never_overdraws_and_draws_exactly_the_amount_oldest_expiry_first(lots, amount):
    now = BASE + timedelta(days=180)
    available = spendable_points(lots=lots, now=now)
    if amount > available:
        with pytest.raises(InsufficientPoints):
            lot_draw(lots=lots, amount=amount, now=now)
        return
    draws = lot_draw(lots=lots, amount=amount, now=now)
    by_id = {x.lot_id: x for x in lots}
    assert sum(d.points for d in draws) == amount
    assert all(0 < d.points <= by_id[d.lot_id].remaining for d in draws)
    assert len({d.lot_id for d in draws}) == len(draws)
    keys = [draw_order_key(by_id[d.lot_id]) for d in draws]
    assert keys == sorted(keys)
    # every lot drawn before the last one is drained completely
    assert all(d.points == by_id[d.lot_id].remaining for d in draws[:-1])
    # no spendable lot that sorts earlier than a drawn lot was left untouched
    drawn = {d.lot_id for d in draws}
    if draws:
        last_key = keys[-1]
        skipped = [x for x in lots if x.is_spendable(now) and x.lot_id not in drawn and draw_order_key(x) < last_key]
        assert skipped == []


def test_expiry_month_is_the_month_of_the_last_valid_day_in_the_programme_zone():
    from memberhub.domain.points_lots import expiry_month

    boundary = datetime(2027, 12, 31, 16, 0, tzinfo=UTC)  # 2028-01-01 00:00 Shanghai, exclusive
    assert expiry_month(boundary, timezone="Asia/Shanghai") == date(2027, 12, 1)
    assert expiry_month(boundary + timedelta(microseconds=1), timezone="Asia/Shanghai") == date(2028, 1, 1)
    assert expiry_month(boundary, timezone="UTC") == date(2027, 12, 1)
