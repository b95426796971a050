"""Recording purchases earns once; refunds take back what the refunded part earned."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from memberhub.core.errors import Conflict, NotFound, ValidationFailed
from memberhub.domain.errors import DomainError
from memberhub.loyalty.jobs import pending_release
from memberhub.loyalty.models import PointsEntry, Purchase
from memberhub.loyalty.points import points_redeem
from memberhub.loyalty.programme import ProgrammeConfig, programme_config_set
from memberhub.loyalty.purchases import LineInput, RefundInput, purchase_claim, purchase_refund
from tests.loyalty.helpers import SYSTEM, account, assert_sound, buy, member

pytestmark = pytest.mark.django_db
TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=TZ)


def refund(order_no: str, refund_no: str = "R1", lines: dict[str, int] | None = None, now: datetime = NOW,
           channel: str = "offline") -> object:
    return purchase_refund(actor=SYSTEM, data=RefundInput(channel=channel, order_no=order_no, refund_no=refund_no,
                                                          lines=lines), now=now)


def test_it_earns_points_on_what_was_paid_with_a_trace(stores: object) -> None:
    m = member()
    result = buy(m.pk, 12_850, at=NOW, now=NOW, lines=(
        LineInput(sku="A", category="food", paid_fen=8_000), LineInput(sku="B", category="toys", paid_fen=4_850)))
    assert result.purchase.points == 128  # 80 + 48.5 floored per line
    acc = account(m.pk)
    assert (acc.balance, acc.pending) == (128, 128)
    entry = PointsEntry.objects.get(account=acc, kind="earn")
    assert entry.purchase_id == result.purchase.pk and entry.rule == "purchase"
    assert [s["step"] for s in entry.trace] == ["base_rate", "rounding", "base_rate", "rounding"]
    assert_sound(m.pk, NOW)


def test_it_records_the_same_order_once(stores: object) -> None:
    m = member()
    first = buy(m.pk, 10_000, order_no="A-1", at=NOW, now=NOW)
    again = buy(m.pk, 10_000, order_no="A-1", at=NOW, now=NOW)
    assert again.replayed and again.purchase.pk == first.purchase.pk
    assert account(m.pk).balance == 100
    with pytest.raises(Conflict) as exc:
        buy(m.pk, 9_000, order_no="A-1", at=NOW, now=NOW)
    assert exc.value.code == "order_exists"
    # the same number in the other channel is another order
    assert not buy(m.pk, 10_000, order_no="A-1", channel="online", store="ONLINE", at=NOW, now=NOW).replayed


def test_it_refuses_lines_that_do_not_add_up(stores: object) -> None:
    with pytest.raises(ValidationFailed) as exc:
        buy(member().pk, 100, lines=(LineInput(paid_fen=50),), now=NOW, at=NOW)
    assert exc.value.code == "paid_total_mismatch"


def test_it_keeps_points_pending_through_the_return_window(stores: object) -> None:
    m = member()
    buy(m.pk, 10_000, at=NOW, now=NOW)
    assert account(m.pk).pending == 100
    with pytest.raises(DomainError):
        points_redeem(actor=SYSTEM, member_id=m.pk, points=100, now=NOW + timedelta(days=1))
    pending_release(now=NOW + timedelta(days=7))
    assert account(m.pk).pending == 0
    assert_sound(m.pk, NOW + timedelta(days=7))


def test_a_refund_inside_the_window_voids_the_pending_points(stores: object) -> None:
    m = member()
    buy(m.pk, 10_000, order_no="W-1", at=NOW, now=NOW)
    r = refund("W-1", now=NOW + timedelta(days=2))
    assert r.points == 100 and r.settlement["from_pending"] == 100 and r.whole
    acc = account(m.pk)
    assert (acc.balance, acc.pending, acc.debt) == (0, 0, 0)
    assert_sound(m.pk, NOW + timedelta(days=2))


def test_a_partial_refund_by_line_takes_back_proportionally(stores: object) -> None:
    m = member()
    buy(m.pk, 30_000, order_no="P-1", at=NOW, now=NOW, lines=(
        LineInput(line_id="a", paid_fen=10_000), LineInput(line_id="b", paid_fen=20_000)))
    r = refund("P-1", lines={"b": 5_000})
    assert r.points == 50 and not r.whole
    r2 = refund("P-1", refund_no="R2", lines={"b": 15_000, "a": 10_000})
    assert r2.points == 250 and r2.whole
    assert account(m.pk).balance == 0
    with pytest.raises(ValidationFailed):
        refund("P-1", refund_no="R3")
    assert_sound(m.pk, NOW)


def test_the_same_refund_number_has_one_effect(stores: object) -> None:
    m = member()
    buy(m.pk, 10_000, order_no="D-1", at=NOW, now=NOW)
    first = refund("D-1", lines={"1": 5_000})
    again = refund("D-1", lines={"1": 5_000})
    assert again.pk == first.pk and account(m.pk).balance == 50
    with pytest.raises(Conflict):
        refund("D-1", lines={"1": 4_000})


def test_a_refund_of_spent_points_goes_to_debt_repaid_by_future_earning(stores: object) -> None:
    m = member()
    buy(m.pk, 50_000, order_no="S-1", at=NOW - timedelta(days=30), now=NOW - timedelta(days=30))
    points_redeem(actor=SYSTEM, member_id=m.pk, points=400, now=NOW)
    r = refund("S-1")
    assert r.settlement == {"from_pending": 0, "from_balance": 100, "into_negative": 0, "debt": 400}
    acc = account(m.pk)
    assert (acc.balance, acc.debt) == (0, 400)
    assert_sound(m.pk, NOW)
    buy(m.pk, 50_000, at=NOW, now=NOW)
    acc = account(m.pk)
    assert (acc.balance, acc.debt) == (100, 0)
    assert_sound(m.pk, NOW)


def test_the_balance_goes_negative_only_as_far_as_policy_allows(stores: object) -> None:
    programme_config_set(ProgrammeConfig(max_negative=300))
    m = member()
    buy(m.pk, 50_000, order_no="N-1", at=NOW - timedelta(days=30), now=NOW - timedelta(days=30))
    points_redeem(actor=SYSTEM, member_id=m.pk, points=500, now=NOW)
    r = refund("N-1")
    assert r.settlement == {"from_pending": 0, "from_balance": 0, "into_negative": 300, "debt": 200}
    acc = account(m.pk)
    assert (acc.balance, acc.debt) == (-300, 200)
    assert_sound(m.pk, NOW)
    buy(m.pk, 60_000, at=NOW, now=NOW)  # 600: 300 refill, 200 debt, 100 new lot (pending)
    acc = account(m.pk)
    assert (acc.balance, acc.debt, acc.pending) == (100, 0, 100)
    assert_sound(m.pk, NOW)


def test_a_refund_takes_other_pending_points_before_going_negative(stores: object) -> None:
    m = member()
    buy(m.pk, 20_000, order_no="O-1", at=NOW - timedelta(days=30), now=NOW - timedelta(days=30))
    points_redeem(actor=SYSTEM, member_id=m.pk, points=200, now=NOW)
    buy(m.pk, 10_000, order_no="O-2", at=NOW, now=NOW)  # 100 pending
    r = refund("O-1")
    assert r.settlement["from_balance"] == 100 and r.settlement["debt"] == 100
    assert account(m.pk).balance == 0
    assert_sound(m.pk, NOW)


def test_an_anonymous_purchase_can_be_claimed_within_the_window(stores: object) -> None:
    buy(None, 8_800, order_no="ANON-1", at=NOW, now=NOW)
    m = member()
    with pytest.raises(NotFound):
        purchase_claim(actor=SYSTEM, channel="offline", order_no="ANON-1", paid_fen=1, member_id=m.pk, now=NOW)
    result = purchase_claim(actor=SYSTEM, channel="offline", order_no="ANON-1", paid_fen=8_800, member_id=m.pk,
                            now=NOW + timedelta(days=1))
    assert result.purchase.points == 88 and account(m.pk).balance == 88
    other = member()
    with pytest.raises(Conflict):
        purchase_claim(actor=SYSTEM, channel="offline", order_no="ANON-1", paid_fen=8_800, member_id=other.pk, now=NOW)
    buy(None, 1_000, order_no="ANON-OLD", at=NOW - timedelta(days=40), now=NOW)
    with pytest.raises(Conflict) as exc:
        purchase_claim(actor=SYSTEM, channel="offline", order_no="ANON-OLD", paid_fen=1_000, member_id=m.pk, now=NOW)
    assert exc.value.code == "claim_window_over"
    assert_sound(m.pk, NOW)


def test_a_purchase_is_found_by_phone_or_card(stores: object) -> None:
    from memberhub.loyalty.purchases import PurchaseInput, purchase_record

    m = member(phone="13912345678")
    for key in ("139 1234 5678", m.card_code, m.member_no):
        purchase_record(actor=SYSTEM, data=PurchaseInput(channel="offline", order_no=f"K-{key}", paid_fen=100,
                                                         store="SH", member_key=key, at=NOW), now=NOW)
    assert Purchase.objects.filter(member=m).count() == 3


def test_zero_value_purchases_record_without_points(stores: object) -> None:
    m = member()
    result = buy(m.pk, 0, at=NOW, now=NOW)
    assert result.purchase.points == 0 and account(m.pk).balance == 0
    assert_sound(m.pk, NOW)
