"""Redeem, holds, adjustments, action points, expiry and the statement."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from memberhub.access.principal import Principal
from memberhub.access.roles import ALL_CAPS
from memberhub.core import events
from memberhub.core.errors import Conflict, ValidationFailed
from memberhub.domain.errors import DomainError
from memberhub.loyalty.jobs import expiry_remind, points_expire
from memberhub.loyalty.models import Adjustment, PointsEntry, PointsLot
from memberhub.loyalty.points import (
    action_award,
    adjustment_decide,
    adjustment_request,
    hold_confirm,
    hold_create,
    hold_release,
    holds_expire,
    points_redeem,
)
from memberhub.loyalty.selectors import balance_as_of, expiring_member, expiring_programme, points_summary
from tests.loyalty.helpers import SYSTEM, account, assert_sound, buy, member

pytestmark = pytest.mark.django_db
TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=TZ)
OLD = NOW - timedelta(days=30)


def staff(name: str) -> Principal:
    return Principal(kind="staff", id=hash(name) % 1000, label=name, caps=ALL_CAPS, store_ids=None)


def rich_member(points: int = 1_000) -> object:
    m = member()
    buy(m.pk, points * 100, at=OLD, now=OLD)
    return m


def test_it_redeems_as_cash_within_the_order_cap(stores: object) -> None:
    m = rich_member()
    result = points_redeem(actor=SYSTEM, member_id=m.pk, points=500, order_fen=2_000, now=NOW)
    assert result.deduction_fen == 500 and account(m.pk).balance == 500
    with pytest.raises(ValidationFailed) as exc:
        points_redeem(actor=SYSTEM, member_id=m.pk, points=200, order_fen=300, now=NOW)
    assert exc.value.code == "redeem_over_limit"
    with pytest.raises(DomainError) as dexc:
        points_redeem(actor=SYSTEM, member_id=m.pk, points=150, order_fen=10_000, now=NOW)
    assert dexc.value.code == "invalid_amount"
    assert_sound(m.pk, NOW)


def test_it_draws_the_oldest_expiring_lot_first(stores: object) -> None:
    m = member()
    buy(m.pk, 10_000, at=datetime(2025, 1, 5, tzinfo=TZ), now=OLD)  # expires end of 2026
    buy(m.pk, 10_000, at=datetime(2026, 1, 5, tzinfo=TZ), now=OLD)  # expires end of 2027
    points_redeem(actor=SYSTEM, member_id=m.pk, points=150, now=NOW)
    lots = list(PointsLot.objects.filter(account__member=m).order_by("expires_at"))
    assert [lot.remaining for lot in lots] == [0, 50]


def test_it_refuses_to_overspend(stores: object) -> None:
    m = rich_member(100)
    with pytest.raises(DomainError) as exc:
        points_redeem(actor=SYSTEM, member_id=m.pk, points=200, now=NOW)
    assert exc.value.code == "insufficient_points"
    assert account(m.pk).balance == 100


def test_a_hold_is_confirmed_or_released(stores: object) -> None:
    m = rich_member()
    hold = hold_create(actor=SYSTEM, member_id=m.pk, points=300, order_fen=10_000, now=NOW)
    assert hold.deduction_fen == 300 and account(m.pk).balance == 700
    assert hold_confirm(actor=SYSTEM, hold_id=hold.pk, now=NOW).state == "confirmed"
    assert hold_confirm(actor=SYSTEM, hold_id=hold.pk, now=NOW).state == "confirmed"
    with pytest.raises(Conflict):
        hold_release(actor=SYSTEM, hold_id=hold.pk, now=NOW)
    second = hold_create(actor=SYSTEM, member_id=m.pk, points=200, now=NOW)
    hold_release(actor=SYSTEM, hold_id=second.pk, now=NOW)
    assert hold_release(actor=SYSTEM, hold_id=second.pk, now=NOW).state == "released"
    assert account(m.pk).balance == 700
    third = hold_create(actor=SYSTEM, member_id=m.pk, points=100, now=NOW)
    assert holds_expire(now=NOW + timedelta(hours=1)) == 1
    third.refresh_from_db()
    assert third.state == "released" and account(m.pk).balance == 700
    assert_sound(m.pk, NOW)


def test_a_large_adjustment_needs_a_second_staff_member(stores: object) -> None:
    m = member()
    small = adjustment_request(actor=staff("alice"), member_id=m.pk, points=1_000, reason="goodwill", now=NOW)
    assert small.state == "applied" and account(m.pk).balance == 1_000
    big = adjustment_request(actor=staff("alice"), member_id=m.pk, points=5_000, reason="lost receipts", now=NOW)
    assert big.state == "pending" and account(m.pk).balance == 1_000
    with pytest.raises(DomainError) as exc:
        adjustment_decide(actor=staff("alice"), adjustment_id=big.pk, approve=True)
    assert exc.value.code == "self_approval"
    adjustment_decide(actor=staff("bob"), adjustment_id=big.pk, approve=True, now=NOW)
    assert account(m.pk).balance == 6_000
    with pytest.raises(Conflict):
        adjustment_decide(actor=staff("carol"), adjustment_id=big.pk, approve=False)
    debit = adjustment_request(actor=staff("alice"), member_id=m.pk, points=-500, reason="duplicate", now=NOW)
    assert debit.state == "applied" and account(m.pk).balance == 5_500
    entry = PointsEntry.objects.filter(adjustment=big).get()
    assert entry.reason == "lost receipts" and entry.actor == "bob"
    assert Adjustment.objects.count() == 3
    assert_sound(m.pk, NOW)


def test_action_points_respect_their_caps(stores: object) -> None:
    m = member()
    awards = [action_award(actor=SYSTEM, member_id=m.pk, action="check_in", at=NOW + timedelta(minutes=i), now=NOW)
              for i in range(3)]
    assert [a["points"] for a in awards] == [5, 0, 0]
    assert action_award(actor=SYSTEM, member_id=m.pk, action="check_in", at=NOW + timedelta(days=1),
                        now=NOW + timedelta(days=1))["points"] == 5
    first = action_award(actor=SYSTEM, member_id=m.pk, action="registration", reference="reg", now=NOW)
    again = action_award(actor=SYSTEM, member_id=m.pk, action="registration", reference="reg", now=NOW)
    assert first["points"] == 100 and again["replayed"] and again["points"] == 100
    later = NOW + timedelta(minutes=5)
    assert action_award(actor=SYSTEM, member_id=m.pk, action="registration", now=later)["points"] == 0
    with pytest.raises(ValidationFailed):
        action_award(actor=SYSTEM, member_id=m.pk, action="dance", now=NOW)
    assert account(m.pk).balance == 110
    assert_sound(m.pk, NOW)


def test_expired_lots_are_written_off_by_the_job(stores: object) -> None:
    m = member()
    buy(m.pk, 10_000, at=datetime(2024, 5, 1, tzinfo=TZ), now=datetime(2024, 5, 1, tzinfo=TZ))  # to 31 Dec 2025
    buy(m.pk, 5_000, at=datetime(2025, 5, 1, tzinfo=TZ), now=datetime(2025, 5, 1, tzinfo=TZ))
    points_redeem(actor=SYSTEM, member_id=m.pk, points=30, now=datetime(2025, 6, 1, tzinfo=TZ))
    assert points_expire(now=NOW) == 70
    assert points_expire(now=NOW) == 0
    acc = account(m.pk)
    assert acc.balance == 50
    expire = PointsEntry.objects.get(account=acc, kind="expire")
    assert expire.at == datetime(2026, 1, 1, tzinfo=TZ)
    assert_sound(m.pk, NOW)
    assert balance_as_of(actor=SYSTEM, member_id=m.pk, at=datetime(2025, 12, 31, tzinfo=TZ))["balance"] == 120
    assert balance_as_of(actor=SYSTEM, member_id=m.pk, at=NOW)["balance"] == 50


def test_what_expires_when_and_the_reminder_event(stores: object) -> None:
    m = member()
    buy(m.pk, 10_000, at=datetime(2025, 2, 1, tzinfo=TZ), now=datetime(2025, 2, 1, tzinfo=TZ))
    buy(m.pk, 5_000, at=datetime(2026, 2, 1, tzinfo=TZ), now=datetime(2026, 2, 1, tzinfo=TZ))
    buckets = expiring_member(actor=SYSTEM, member_id=m.pk, now=NOW)
    assert [(b["period"].isoformat(), b["points"]) for b in buckets] == [("2026-12-01", 100), ("2027-12-01", 50)]
    assert [b["points"] for b in expiring_programme(actor=SYSTEM, now=NOW)] == [100, 50]
    seen: list[dict] = []

    @events.subscribe(events.POINTS_EXPIRING)
    def on_expiring(**payload: object) -> None:
        seen.append(payload)

    try:
        from django.test import TestCase

        with TestCase.captureOnCommitCallbacks(execute=True):
            assert expiry_remind(now=datetime(2026, 12, 5, tzinfo=TZ), days=30) == 1
        with TestCase.captureOnCommitCallbacks(execute=True):
            assert expiry_remind(now=datetime(2026, 12, 6, tzinfo=TZ), days=30) == 0
    finally:
        events.unsubscribe(events.POINTS_EXPIRING, on_expiring)
    assert seen == [{"member_id": m.pk, "points": 100, "last_valid_day": "2026-12-31"}]


def test_the_summary_separates_available_pending_and_held(stores: object) -> None:
    m = rich_member(500)
    buy(m.pk, 20_000, at=NOW, now=NOW)
    hold_create(actor=SYSTEM, member_id=m.pk, points=100, now=NOW)
    summary = points_summary(actor=SYSTEM, member_id=m.pk, now=NOW)
    assert (summary["balance"], summary["available"], summary["pending"], summary["held"]) == (600, 400, 200, 100)
