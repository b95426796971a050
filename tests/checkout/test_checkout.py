"""POST /checkout and /checkout/refund: every tender in one transaction, all or nothing."""

from __future__ import annotations

from typing import Any

import pytest

from memberhub.access.principal import system_principal
from memberhub.checkout.models import Checkout
from memberhub.coupons.models import Coupon, CouponRedemption
from memberhub.loyalty.models import PointsAccount, PointsEntry, Purchase
from memberhub.loyalty.points import adjustment_request
from memberhub.loyalty.tiering import tier_override
from memberhub.wallet.giftcards import gift_cards_issue
from memberhub.wallet.models import GiftCard, Wallet
from memberhub.wallet.services import wallet_topup
from tests.coupons.factories import coupon_make, template_make
from tests.loyalty.helpers import assert_sound, member

pytestmark = pytest.mark.django_db
SYSTEM = system_principal("test")


class Shop:
    """A gold member with 2000 points, ¥50 stored value, a ¥30 gift card and a 满100减20 coupon."""

    def __init__(self) -> None:
        self.member = member()
        tier_override(actor=SYSTEM, member_id=self.member.pk, tier="gold", ends_at=None, reason="test")
        for _ in range(2):
            adjustment_request(actor=SYSTEM, points=1000, reason="welcome", member_id=self.member.pk)
        wallet_topup(actor=SYSTEM, member_id=self.member.pk, amount_fen=5000, payment_ref="PAY-1", store="SH")
        [self.card] = gift_cards_issue(actor=SYSTEM, count=1, amount_fen=3000, batch_ref="B1")
        self.pin = self.card.pin
        self.coupon = coupon_make(template_make(), self.member.pk)

    def body(self, **kw: Any) -> dict[str, Any]:
        body = {"member_id": self.member.pk, "channel": "offline", "store": "SH", "order_no": "SO-1",
                "lines": [{"line_id": "L1", "sku": "SKU-A", "category": "food", "qty": 1, "unit_price_fen": 6000},
                          {"line_id": "L2", "sku": "SKU-B", "category": "food", "qty": 2, "unit_price_fen": 3000}],
                "coupon_codes": [self.coupon.code], "points": 1000, "wallet_fen": 5000,
                "gift_cards": [{"code": self.card.code, "amount_fen": 2000, "pin": self.pin}]}
        body.update(kw)
        return body

    def points(self) -> int:
        return PointsAccount.objects.get(member=self.member).balance

    def wallet(self) -> int:
        w = Wallet.objects.get(member=self.member)
        return w.principal_fen + w.bonus_fen

    def card_balance(self) -> int:
        return GiftCard.objects.get(pk=self.card.pk).balance_fen


@pytest.fixture
def shop(stores: Any) -> Shop:
    return Shop()


def test_a_checkout_with_every_tender(admin_api: Any, shop: Shop) -> None:
    r = admin_api.post("/checkout", shop.body())
    assert r.status_code == 201, r.content
    receipt = r.json()
    # 120.00 gross, gold 9折 → 108.00, coupon −20 → 88.00, 1000 points = −10.00 → 78.00 paid
    assert (receipt["gross_fen"], receipt["tier_discount_fen"], receipt["member_price_fen"]) == (12000, 1200, 10800)
    assert receipt["coupon_discount_fen"] == 2000 and receipt["coupons"][0]["code"] == shop.coupon.code
    assert sum(receipt["coupons"][0]["lines"].values()) == 2000
    assert receipt["payable_fen"] == 8800
    assert (receipt["points"]["redeemed"], receipt["points"]["deduction_fen"]) == (1000, 1000)
    assert receipt["paid_fen"] == 7800
    assert receipt["wallet"]["amount_fen"] == 5000
    assert receipt["gift_cards"] == [{"code": shop.card.code, "amount_fen": 2000, "balance_after_fen": 1000}]
    assert receipt["due_fen"] == 800
    lines = {ln["line_id"]: ln for ln in receipt["lines"]}
    assert sum(ln["paid_fen"] for ln in lines.values()) == 7800
    assert sum(ln["points_deduction_fen"] for ln in lines.values()) == 1000
    for ln in lines.values():
        assert ln["paid_fen"] == ln["member_price_fen"] - ln["coupon_discount_fen"] - ln["points_deduction_fen"]
    # earned on what was paid, per line, gold ×1.5: 2 × floor(39 × 1.5) = 116, pending through the return window
    purchase = Purchase.objects.get(order_no="SO-1")
    assert purchase.paid_fen == 7800 and purchase.points == 116 == receipt["points"]["earned"]
    assert receipt["points"]["pending"] == 116 and receipt["points"]["available_at"]
    assert sum(ln["points_earned"] for ln in lines.values()) == 116
    assert {d["kind"] for d in purchase.discounts} == {"tier", "coupon", "points"}
    assert shop.points() == 2000 - 1000 + 116
    assert (shop.wallet(), shop.card_balance()) == (0, 1000)
    assert Coupon.objects.get(pk=shop.coupon.pk).status == "used"
    assert_sound(shop.member.pk)


def test_a_checkout_without_a_member_takes_a_gift_card(admin_api: Any, shop: Shop) -> None:
    r = admin_api.post("/checkout", shop.body(member_id=None, coupon_codes=[], points=0, wallet_fen=0))
    assert r.status_code == 201, r.content
    body = r.json()
    assert (body["member_id"], body["tier_discount_fen"], body["paid_fen"], body["due_fen"]) == (None, 0, 12000, 10000)
    assert Purchase.objects.get(order_no="SO-1").member_id is None


def _nothing_happened(shop: Shop) -> None:
    assert not Purchase.objects.exists() and not Checkout.objects.exists()
    assert not CouponRedemption.objects.exists()
    coupon = Coupon.objects.get(pk=shop.coupon.pk)
    assert (coupon.status, coupon.uses_left) == ("available", 1)
    assert shop.points() == 2000 and not PointsEntry.objects.filter(kind="redeem").exists()
    assert (shop.wallet(), shop.card_balance()) == (5000, 3000)
    assert_sound(shop.member.pk)


@pytest.mark.parametrize(("change", "status", "code"), [
    ({"points": 5000}, 422, "redeem_over_limit"),  # over 50 % of the order
    ({"points": 150}, 422, "invalid_amount"),  # not whole units of 100 points
    ({"wallet_fen": 5001}, 422, "insufficient_balance"),
    ({"wallet_fen": 5000, "gift_cards": [{"code": "G", "amount_fen": 5000}]}, 422, "tender_exceeds_due"),
    ("wrong_pin", 403, "gift_card_pin_invalid"),
    ("no_pin", 422, "gift_card_pin_required"),
    ("others_coupon", 422, "coupon_not_applicable"),
    ("store_elsewhere", 422, "store_not_found"),
])
def test_any_refusal_rolls_every_part_back(admin_api: Any, staff_api: Any, shop: Shop, change: Any, status: int,
                                           code: str) -> None:
    api = admin_api
    if change == "wrong_pin":
        body = shop.body(gift_cards=[{"code": shop.card.code, "amount_fen": 2000, "pin": "000000"
                                      if shop.pin != "000000" else "111111"}])
        api = staff_api("cashier", ["SH"])  # the admin may waive the PIN; a cashier may not
    elif change == "no_pin":
        body = shop.body(gift_cards=[{"code": shop.card.code, "amount_fen": 2000}])
        api = staff_api("cashier", ["SH"])
    elif change == "others_coupon":
        other = member(store="SH")
        body = shop.body(coupon_codes=[shop.coupon.code, coupon_make(template_make(name="x"), other.pk).code])
    elif change == "store_elsewhere":
        body = shop.body(store="NOPE")
    else:
        if "gift_cards" in change:
            change = {**change, "gift_cards": [{"code": shop.card.code, "amount_fen": 5000, "pin": shop.pin}]}
        body = shop.body(**change)
    r = api.post("/checkout", body)
    assert (r.status_code, r.json()["code"]) == (status, code), r.content
    _nothing_happened(shop)


def test_a_refusal_after_the_purchase_step_rolls_back_too(admin_api: Any, shop: Shop) -> None:
    from memberhub.loyalty.purchases import PurchaseInput, purchase_record

    purchase_record(actor=SYSTEM, data=PurchaseInput(channel="offline", order_no="SO-1", paid_fen=100, store="SH"))
    r = admin_api.post("/checkout", shop.body())
    assert (r.status_code, r.json()["code"]) == (409, "order_exists")
    assert not Checkout.objects.exists() and not CouponRedemption.objects.exists()
    assert (shop.points(), shop.wallet(), shop.card_balance()) == (2000, 5000, 3000)


def test_the_capabilities_follow_the_tenders_used(make_key: Any, shop: Shop) -> None:
    from django.test import Client

    from tests.conftest import Api

    api = Api(Client(), make_key(["purchases:write", "coupons:redeem"]))
    r = api.post("/checkout", shop.body())
    assert r.status_code == 403 and set(r.json()["detail"]["required"]) == {"points:redeem", "wallet:spend"}
    r = api.post("/checkout", shop.body(points=0, wallet_fen=0, gift_cards=[]))
    assert r.status_code == 201, r.content
    _nothing = api.post("/checkout", shop.body(order_no="SO-2", coupon_codes=[], points=0, wallet_fen=0,
                                                gift_cards=[], store="BJ"))
    assert _nothing.status_code == 201  # an unscoped key may sell in any store


def test_a_store_scoped_cashier_cannot_check_out_in_another_store(staff_api: Any, shop: Shop) -> None:
    cashier = staff_api("cashier", ["BJ"])
    r = cashier.post("/checkout", shop.body(store="SH", gift_cards=[]))
    assert r.status_code == 403
    _nothing_happened(shop)
    # the member's home store is SH; served at BJ, BJ's cashier takes their stored value there
    r = cashier.post("/checkout", shop.body(store="BJ", gift_cards=[], coupon_codes=[], points=0))
    assert r.status_code == 201 and r.json()["store"] == "BJ", r.content


def test_a_replay_answers_the_same_receipt(admin_api: Any, shop: Shop) -> None:
    first = admin_api.post("/checkout", shop.body())
    again = admin_api.post("/checkout", shop.body())
    assert (first.status_code, again.status_code) == (201, 200)
    assert {**first.json(), "replayed": True} == again.json()
    other = admin_api.post("/checkout", shop.body(points=0))
    assert (other.status_code, other.json()["code"]) == (409, "order_exists")
    assert (shop.points(), shop.wallet(), Purchase.objects.count()) == (1116, 0, 1)


def test_an_idempotency_key_replays_the_response(admin_api: Any, shop: Shop) -> None:
    first = admin_api.post("/checkout", shop.body(), headers={"Idempotency-Key": "till-1-0001"})
    again = admin_api.post("/checkout", shop.body(), headers={"Idempotency-Key": "till-1-0001"})
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true" and again.json() == first.json()
    reused = admin_api.post("/checkout", shop.body(order_no="SO-2"), headers={"Idempotency-Key": "till-1-0001"})
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"


def test_a_refund_by_line_then_the_rest_gives_every_part_back(admin_api: Any, shop: Shop) -> None:
    receipt = admin_api.post("/checkout", shop.body()).json()
    lines = {ln["line_id"]: ln for ln in receipt["lines"]}
    part = admin_api.post("/checkout/refund", {"channel": "offline", "order_no": "SO-1", "refund_no": "R1",
                                               "lines": {"L1": lines["L1"]["paid_fen"]}})
    assert part.status_code == 201, part.content
    p = part.json()
    paid, l1 = receipt["paid_fen"], lines["L1"]["paid_fen"]
    assert p["amount_fen"] == l1 and not p["whole"]
    assert p["points_returned"] == 1000 * l1 // paid
    assert p["wallet"]["amount_fen"] == 5000 * l1 // paid
    assert p["gift_cards"] == [{"code": shop.card.code, "amount_fen": 2000 * l1 // paid}]
    assert p["due_fen"] == l1 - p["wallet"]["amount_fen"] - 2000 * l1 // paid
    assert p["coupons"] == [{"code": shop.coupon.code, "restored": False, "reason": "partial_refund"}]
    assert p["points_clawed_back"] > 0
    again = admin_api.post("/checkout/refund", {"channel": "offline", "order_no": "SO-1", "refund_no": "R1",
                                                "lines": {"L1": l1}})
    assert again.status_code == 200 and again.json() == {**p, "replayed": True}

    rest = admin_api.post("/checkout/refund", {"channel": "offline", "order_no": "SO-1", "refund_no": "R2"})
    assert rest.status_code == 201, rest.content
    assert rest.json()["whole"] and rest.json()["coupons"][0]["restored"] is True
    assert shop.points() == 2000  # the points redeemed are back, the points earned taken back
    assert (shop.wallet(), shop.card_balance()) == (5000, 3000)
    coupon = Coupon.objects.get(pk=shop.coupon.pk)
    assert (coupon.status, coupon.uses_left) == ("available", 1)
    assert CouponRedemption.objects.get().status == "redeemed"  # append-only: a reversal row was added
    assert_sound(shop.member.pk)
    nothing = admin_api.post("/checkout/refund", {"channel": "offline", "order_no": "SO-1", "refund_no": "R3"})
    assert nothing.status_code == 422 and nothing.json()["code"] == "nothing_to_refund"


def test_a_refund_of_an_unknown_checkout_is_404(admin_api: Any, shop: Shop) -> None:
    r = admin_api.post("/checkout/refund", {"channel": "offline", "order_no": "NOPE", "refund_no": "R1"})
    assert r.status_code == 404 and r.json()["code"] == "checkout_not_found"
