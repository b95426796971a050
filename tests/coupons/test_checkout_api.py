"""Validate, redeem and restore through the API: the till's view of a coupon."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from memberhub.audit.models import AuditEntry
from memberhub.coupons.models import Coupon, CouponRedemption
from tests.coupons.factories import basket, coupon_make, template_make
from tests.members.factories import member_make

pytestmark = pytest.mark.django_db

BASKET = basket(("L1", "SKU-A", 6000, 1), ("L2", "SKU-B", 3000, 2))  # 120.00 yuan


@pytest.fixture
def member(stores: Any) -> Any:
    return member_make()


def _redeem(api: Any, member: Any, codes: list[str], order_no: str = "SO-1", b: dict | None = None) -> Any:
    return api.post("/coupons/redeem", {"member_id": member.pk, "codes": codes, "basket": b or BASKET,
                                        "channel": "offline", "store": "SH", "order_no": order_no})


def test_it_prices_a_basket_with_an_amount_off_coupon(admin_api: Any, member: Any) -> None:
    coupon = coupon_make(template_make(), member.pk)
    r = admin_api.post("/coupons/validate", {"member_id": member.pk, "codes": [coupon.code], "basket": BASKET,
                                             "channel": "offline", "store": "SH"})
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["coupon_discount_fen"] == 2000
    assert body["payable_fen"] == 10000
    assert sum(line["coupons"].get(coupon.code, 0) for line in body["lines"]) == 2000
    assert body["refused"] == []


def test_it_says_why_a_coupon_does_not_apply(admin_api: Any, member: Any) -> None:
    coupon = coupon_make(template_make(min_spend_fen=50000), member.pk)
    r = admin_api.post("/coupons/validate", {"member_id": member.pk, "codes": [coupon.code, "ABCD-EFGH-JK"],
                                             "basket": BASKET, "channel": "offline", "store": "SH"})
    assert r.status_code == 200
    refused = {x["code"]: x for x in r.json()["refused"]}
    assert refused[coupon.code]["reason"] == "below_minimum_spend"
    assert refused[coupon.code]["params"]["missing_fen"] == 38000
    assert refused["ABCDEFGHJK"]["reason"] == "coupon_not_found"
    assert r.json()["payable_fen"] == 12000


def test_it_refuses_another_members_coupon(admin_api: Any, member: Any) -> None:
    other = member_make(phone="13900139000")
    coupon = coupon_make(template_make(), other.pk)
    r = _redeem(admin_api, member, [coupon.code])
    assert r.status_code == 422
    assert r.json()["code"] == "coupon_not_applicable"
    assert r.json()["detail"]["refused"][0]["reason"] == "not_owner"


def test_it_redeems_once_and_replays_the_same_order(admin_api: Any, member: Any) -> None:
    coupon = coupon_make(template_make(), member.pk)
    first = _redeem(admin_api, member, [coupon.code])
    assert first.status_code == 200, first.content
    assert first.json()["coupon_discount_fen"] == 2000
    again = _redeem(admin_api, member, [coupon.code])
    assert again.status_code == 200 and again.json()["replayed"] is True
    assert again.json()["coupon_discount_fen"] == 2000
    coupon.refresh_from_db()
    assert (coupon.status, coupon.uses_left) == ("used", 0)
    assert CouponRedemption.objects.count() == 1
    other_order = _redeem(admin_api, member, [coupon.code], order_no="SO-2")
    assert other_order.status_code == 422
    assert other_order.json()["detail"]["refused"][0]["reason"] == "already_used"
    assert AuditEntry.objects.filter(action="coupon.redeem").count() == 1


def test_it_refuses_a_different_coupon_set_on_a_redeemed_order(admin_api: Any, member: Any) -> None:
    t = template_make()
    a, b = coupon_make(t, member.pk), coupon_make(t, member.pk)
    assert _redeem(admin_api, member, [a.code]).status_code == 200
    r = _redeem(admin_api, member, [b.code])
    assert r.status_code == 409 and r.json()["code"] == "order_already_redeemed"


def test_it_restores_a_coupon_when_the_whole_order_is_refunded(admin_api: Any, member: Any) -> None:
    coupon = coupon_make(template_make(), member.pk)
    assert _redeem(admin_api, member, [coupon.code]).status_code == 200
    r = admin_api.post("/coupons/restore", {"channel": "offline", "order_no": "SO-1"})
    assert r.status_code == 200, r.content
    assert r.json()["coupons"] == [{"code": coupon.code, "restored": True, "reason": "whole_order_refunded"}]
    coupon.refresh_from_db()
    assert (coupon.status, coupon.uses_left) == ("available", 1)
    again = admin_api.post("/coupons/restore", {"channel": "offline", "order_no": "SO-1"})
    assert again.json()["coupons"][0]["reason"] == "already_restored"
    coupon.refresh_from_db()
    assert coupon.uses_left == 1


def test_a_restore_appends_a_reversal_and_never_changes_the_redemption(admin_api: Any, member: Any) -> None:
    from memberhub.coupons.models import CouponRedemptionReversal

    coupon = coupon_make(template_make(budget_fen=100000), member.pk)
    assert _redeem(admin_api, member, [coupon.code]).status_code == 200
    redemption = CouponRedemption.objects.get(coupon=coupon)
    before = {f.attname: getattr(redemption, f.attname) for f in CouponRedemption._meta.concrete_fields}
    for _ in range(2):
        assert admin_api.post("/coupons/restore", {"channel": "offline", "order_no": "SO-1"}).status_code == 200
    redemption.refresh_from_db()
    assert {f.attname: getattr(redemption, f.attname) for f in CouponRedemption._meta.concrete_fields} == before
    [reversal] = CouponRedemptionReversal.objects.all()
    assert (reversal.redemption_id, reversal.amount_fen, reversal.reason) == (redemption.pk, 2000, "whole_order_refunded")
    coupon.refresh_from_db()
    assert (coupon.status, coupon.uses_left) == ("available", 1)
    assert coupon.template.__class__.objects.get(pk=coupon.template_id).budget_spent_fen == 0


def test_statistics_leave_out_restored_redemptions_and_a_restored_coupon_is_used_again(admin_api: Any,
                                                                                        member: Any) -> None:
    template = template_make()
    coupon = coupon_make(template, member.pk)
    assert _redeem(admin_api, member, [coupon.code]).status_code == 200
    admin_api.post("/coupons/restore", {"channel": "offline", "order_no": "SO-1"})
    stats = admin_api.get(f"/coupons/templates/{template.pk}/stats").json()
    assert (stats["redemptions"], stats["discount_fen"], stats["orders"], stats["redeemed"]) == (0, 0, 0, 0)
    # the order number stays taken: another set of coupons on it is refused, the same answers as restored
    assert _redeem(admin_api, member, [coupon.code]).status_code == 409
    assert _redeem(admin_api, member, [coupon.code], order_no="SO-2").status_code == 200
    stats = admin_api.get(f"/coupons/templates/{template.pk}/stats").json()
    assert (stats["redemptions"], stats["discount_fen"], stats["redeemed"]) == (1, 2000, 1)


def test_it_keeps_the_coupon_used_after_a_partial_refund(admin_api: Any, member: Any) -> None:
    coupon = coupon_make(template_make(), member.pk)
    assert _redeem(admin_api, member, [coupon.code]).status_code == 200
    r = admin_api.post("/coupons/restore", {"channel": "offline", "order_no": "SO-1", "refunded_line_ids": ["L2"]})
    assert r.json()["coupons"][0] == {"code": coupon.code, "restored": False, "reason": "partial_refund"}
    r = admin_api.post("/coupons/restore", {"channel": "offline", "order_no": "SO-1",
                                            "refunded_line_ids": ["L1", "L2"]})
    assert r.json()["coupons"][0]["restored"] is True


def test_it_does_not_restore_an_expired_coupon(admin_api: Any, member: Any) -> None:
    from memberhub.coupons.checkout import coupons_restore_for_refund

    coupon = coupon_make(template_make(valid_days=1), member.pk)
    assert _redeem(admin_api, member, [coupon.code]).status_code == 200
    out = coupons_restore_for_refund(channel="offline", order_no="SO-1", now=timezone.now() + timedelta(days=3))
    assert out == [{"code": coupon.code, "restored": False, "reason": "expired"}]
    coupon.refresh_from_db()
    assert coupon.status == Coupon.Status.USED


def test_it_refuses_an_unknown_refunded_line(admin_api: Any, member: Any) -> None:
    coupon = coupon_make(template_make(), member.pk)
    _redeem(admin_api, member, [coupon.code])
    r = admin_api.post("/coupons/restore", {"channel": "offline", "order_no": "SO-1", "refunded_line_ids": ["L9"]})
    assert r.status_code == 422 and r.json()["code"] == "unknown_line"


def test_it_stacks_coupons_in_the_fixed_order(admin_api: Any, member: Any) -> None:
    amount = coupon_make(template_make(), member.pk)
    percent = coupon_make(template_make(name="8折", kind="percent_off", amount_off_fen=0, percent_off_bp=2000,
                                        cap_fen=5000, min_spend_fen=0), member.pk)
    r = admin_api.post("/coupons/validate", {"member_id": member.pk, "codes": [percent.code, amount.code],
                                             "basket": BASKET, "channel": "offline", "store": "SH"})
    body = r.json()
    assert [a["code"] for a in body["applied"]] == [amount.code, percent.code]
    assert body["payable_fen"] == 12000 - 2000 - 2000  # 20 % of the 100.00 left


def test_it_applies_the_budget_at_redemption(admin_api: Any, member: Any) -> None:
    t = template_make(budget_fen=3000)
    a, b = coupon_make(t, member.pk), coupon_make(t, member.pk)
    assert _redeem(admin_api, member, [a.code], order_no="A").status_code == 200
    r = _redeem(admin_api, member, [b.code], order_no="B")
    assert r.status_code == 422
    assert r.json()["detail"]["refused"][0] == {**r.json()["detail"]["refused"][0], "reason": "budget_exhausted"}
    t.refresh_from_db()
    assert t.budget_spent_fen == 2000


def test_a_cashier_cannot_redeem_in_another_store(staff_api: Any, member: Any) -> None:
    coupon = coupon_make(template_make(), member.pk)
    api = staff_api("cashier", ["BJ"])
    r = _redeem(api, member, [coupon.code])
    assert r.status_code == 403 and r.json()["code"] == "store_out_of_scope"


def test_an_analyst_cannot_redeem(staff_api: Any, member: Any) -> None:
    coupon = coupon_make(template_make(), member.pk)
    r = _redeem(staff_api("analyst"), member, [coupon.code])
    assert r.status_code == 403


def test_it_rejects_unknown_fields_and_bad_baskets(admin_api: Any, member: Any) -> None:
    r = admin_api.post("/coupons/validate", {"member_id": member.pk, "codes": [], "basket": BASKET,
                                             "channel": "offline", "typo": 1})
    assert r.status_code == 422
    bad = basket(("L1", "A", 100, 1), ("L1", "B", 100, 1))
    r = admin_api.post("/coupons/validate", {"member_id": member.pk, "codes": [], "basket": bad, "channel": "offline"})
    assert r.status_code == 422 and r.json()["code"] == "basket_invalid"


def test_it_keeps_a_store_scoped_cashier_to_their_own_stores(staff_api: Any, member: Any) -> None:
    coupon = coupon_make(template_make(), member.pk)
    cashier = staff_api("cashier", ["SH"])
    r = cashier.post("/coupons/redeem", {"member_id": member.pk, "codes": [coupon.code], "basket": BASKET,
                                         "channel": "offline", "store": "BJ", "order_no": "SO-BJ"})
    assert r.status_code == 403 and r.json()["code"] == "store_out_of_scope"
    assert not CouponRedemption.objects.exists()
    assert _redeem(cashier, member, [coupon.code]).status_code == 200
