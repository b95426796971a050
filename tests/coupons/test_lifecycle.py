"""Events that issue coupons, the expiry job, the expiring-soon event, statistics, member hooks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from memberhub.access.principal import system_principal
from memberhub.core import events
from memberhub.coupons.checkout import coupons_redeem_for_order
from memberhub.coupons.expiry import coupons_expire, coupons_expiring_notify
from memberhub.coupons.models import Coupon
from tests.coupons.factories import basket, coupon_make, template_make
from tests.members.factories import member_make

pytestmark = pytest.mark.django_db
ACTOR = system_principal("test")


def _redeem(member: Any, coupon: Any, order_no: str, price: int = 20000, now: Any = None) -> dict[str, Any]:
    return coupons_redeem_for_order(actor=ACTOR, member_id=member.pk, codes=[coupon.code],
                                    basket=basket(("L1", "SKU", price, 1)), channel="offline", store_id=None,
                                    order_no=order_no, now=now)


def test_a_new_member_gets_the_welcome_coupon(stores: Any, django_capture_on_commit_callbacks: Any) -> None:
    t = template_make(issue_rules=[{"event": events.MEMBER_REGISTERED}])
    with django_capture_on_commit_callbacks(execute=True):
        member = member_make()
    assert list(Coupon.objects.filter(member=member).values_list("template_id", "source")) == [(t.pk, "event")]


def test_a_birthday_coupon_is_given_once_a_year(stores: Any, django_capture_on_commit_callbacks: Any) -> None:
    t = template_make(issue_rules=[{"event": events.MEMBER_BIRTHDAY}])
    member = member_make()
    for _ in range(2):  # a re-delivered event gives nothing more
        with django_capture_on_commit_callbacks(execute=True):
            events.emit(events.MEMBER_BIRTHDAY, member_id=member.pk, year=2026)
    with django_capture_on_commit_callbacks(execute=True):
        events.emit(events.MEMBER_BIRTHDAY, member_id=member.pk, year=2027)
    assert Coupon.objects.filter(template=t, member=member).count() == 2


def test_a_tier_upgrade_coupon_follows_the_target_tier(stores: Any, django_capture_on_commit_callbacks: Any) -> None:
    gold = template_make(issue_rules=[{"event": events.TIER_UPGRADED, "to_tiers": ["gold"]}])
    member = member_make()
    with django_capture_on_commit_callbacks(execute=True):
        events.emit(events.TIER_UPGRADED, member_id=member.pk, from_tier="normal", to_tier="silver")
    assert not Coupon.objects.filter(template=gold).exists()
    with django_capture_on_commit_callbacks(execute=True):
        events.emit(events.TIER_UPGRADED, member_id=member.pk, from_tier="silver", to_tier="gold")
    assert Coupon.objects.filter(template=gold, member=member).count() == 1


def test_an_event_past_the_limit_is_not_an_error(stores: Any, django_capture_on_commit_callbacks: Any) -> None:
    template_make(issue_rules=[{"event": events.MEMBER_REGISTERED}], total_quantity=0)
    with django_capture_on_commit_callbacks(execute=True):
        member = member_make()
    assert not Coupon.objects.filter(member=member).exists()


def test_the_expiry_job_marks_past_coupons(stores: Any) -> None:
    member = member_make()
    t = template_make(valid_days=1)
    old = coupon_make(t, member.pk, now=timezone.now() - timedelta(days=5))
    fresh = coupon_make(t, member.pk)
    assert coupons_expire() == 1
    old.refresh_from_db()
    fresh.refresh_from_db()
    assert (old.status, fresh.status) == ("expired", "available")


def test_the_expiring_soon_job_emits_once_per_member(stores: Any, django_capture_on_commit_callbacks: Any) -> None:
    member = member_make()
    template_make(valid_days=2)
    coupon_make(template_make(valid_days=2), member.pk)
    coupon_make(template_make(valid_days=30), member.pk)
    seen: list[dict[str, Any]] = []

    def handler(**payload: Any) -> None:
        seen.append(payload)

    events.subscribe(events.COUPON_EXPIRING)(handler)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            assert coupons_expiring_notify() == 1
        with django_capture_on_commit_callbacks(execute=True):
            assert coupons_expiring_notify() == 0  # each coupon is announced once
    finally:
        events.unsubscribe(events.COUPON_EXPIRING, handler)
    assert len(seen) == 1 and seen[0]["member_id"] == member.pk and len(seen[0]["coupons"]) == 1
    assert "code" not in seen[0]["coupons"][0]  # the payload is stored in the outbox: ids only


def test_template_statistics(admin_api: Any, stores: Any) -> None:
    members = [member_make(phone=f"1380013{8000 + i:04d}") for i in range(4)]
    t = template_make(valid_days=1)
    coupons = [coupon_make(t, m.pk) for m in members[:3]]
    coupon_make(t, members[3].pk, now=timezone.now() - timedelta(days=5))  # expired
    _redeem(members[0], coupons[0], "A", price=20000)
    _redeem(members[1], coupons[1], "B", price=15000)
    stats = admin_api.get(f"/coupons/templates/{t.pk}/stats").json()
    assert {k: stats[k] for k in ("issued", "redeemed", "expired", "redemption_rate", "discount_fen", "sales_fen")} == {
        "issued": 4, "redeemed": 2, "expired": 1, "redemption_rate": 0.5, "discount_fen": 4000,
        "sales_fen": 18000 + 13000}


def test_tier_and_first_purchase_conditions_go_through_the_seams(stores: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from memberhub.coupons import seams
    from memberhub.coupons.checkout import coupons_price

    member = member_make()
    gold = coupon_make(template_make(tiers=["gold"]), member.pk)
    first = coupon_make(template_make(first_purchase_only=True), member.pk)
    b = basket(("L1", "SKU", 20000, 1))

    def reasons() -> dict[str, str]:
        priced = coupons_price(member_id=member.pk, codes=[gold.code, first.code], basket=b, channel="offline",
                               store_id=None, now=timezone.now())
        return {r["code"]: r["reason"] for r in priced.refused()}

    assert reasons() == {gold.code: "tier_not_eligible"}  # a new member: normal tier, first purchase
    monkeypatch.setattr(seams, "member_tier_code", lambda member_id: "gold")
    monkeypatch.setattr(seams, "member_has_purchases", lambda member_id, **kw: True)
    assert reasons() == {first.code: "not_first_purchase"}


def test_merge_moves_coupons_and_erase_revokes_them(admin_api: Any, stores: Any) -> None:
    from memberhub.members.merge import member_merge
    from memberhub.members.privacy import member_erase

    a, b = member_make(), member_make(phone="13900139000")
    t = template_make()
    ca, cb = coupon_make(t, a.pk), coupon_make(t, b.pk)
    member_merge(actor=ACTOR, survivor_id=a.pk, absorbed_id=b.pk, reason="same person")
    cb.refresh_from_db()
    assert cb.member_id == a.pk
    export = admin_api.get(f"/members/{a.pk}/export").json()
    assert {c["code"] for c in export["coupons"]} == {ca.code, cb.code}
    member_erase(actor=ACTOR, member_id=a.pk, reason="注销")
    assert set(Coupon.objects.filter(member=a).values_list("status", flat=True)) == {"revoked"}
