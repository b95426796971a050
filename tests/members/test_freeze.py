"""停卡: a frozen member earns and redeems nothing; on unfreeze their entitlements are extended
by the time frozen; a freeze racing an earn leaves no earn after it."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, connections
from django.test import Client
from django.utils import timezone

from memberhub.access.principal import system_principal
from memberhub.audit.models import AuditEntry
from memberhub.coupons.expiry import coupons_expire
from memberhub.coupons.models import Coupon
from memberhub.domain.member_status import Act, member_may, statuses_allowing
from memberhub.loyalty.jobs import points_expire
from memberhub.loyalty.models import PointsAccount, PointsLot, Purchase
from memberhub.loyalty.points import adjustment_request
from memberhub.members.models import Member
from memberhub.members.services import member_set_frozen
from memberhub.wallet.services import wallet_topup
from tests.conftest import Api
from tests.coupons.factories import coupon_make, template_make
from tests.loyalty.helpers import assert_sound, member

SYSTEM = system_principal("test")


def test_the_policy_lets_a_frozen_member_only_correct() -> None:
    assert [a for a in Act if member_may("frozen", a) is None] == [Act.CORRECT]
    assert member_may("frozen", Act.EARN) == "member_frozen"
    assert member_may("active", Act.REDEEM_COUPON) is None
    assert member_may("merged", Act.CORRECT) == "member_merged"
    assert statuses_allowing(Act.EARN) == ("active",)


@pytest.mark.django_db
def test_a_frozen_member_neither_earns_nor_redeems_anything(admin_api: Any) -> None:
    m = member()
    adjustment_request(actor=SYSTEM, points=500, reason="welcome", member_id=m.pk)
    wallet_topup(actor=SYSTEM, member_id=m.pk, amount_fen=5000, payment_ref="PAY-1", store="SH")
    coupon = coupon_make(template_make(min_spend_fen=0), m.pk)
    assert admin_api.post(f"/members/{m.pk}/freeze", {"reason": "card reported stolen"}).status_code == 200
    line = [{"line_id": "L1", "sku": "A", "qty": 1, "unit_price_fen": 20000}]
    tries = {
        "earn by id": admin_api.post("/loyalty/purchases", {"member_id": m.pk, "channel": "offline",
                                                            "order_no": "F-1", "store": "SH", "paid_fen": 10000}),
        "earn by phone": admin_api.post("/loyalty/purchases", {"member": m.phone, "channel": "offline",
                                                               "order_no": "F-2", "store": "SH", "paid_fen": 10000}),
        "action": admin_api.post(f"/loyalty/members/{m.pk}/actions", {"action": "check_in", "reference": "d1"}),
        "redeem": admin_api.post("/loyalty/redeem", {"member_id": m.pk, "points": 100, "reference": "r1"}),
        "hold": admin_api.post("/loyalty/holds", {"member_id": m.pk, "points": 100, "reference": "h1"}),
        "coupon": admin_api.post("/coupons/redeem", {"member_id": m.pk, "codes": [coupon.code], "channel": "offline",
                                                     "order_no": "F-3", "basket": {"lines": [
                                                         {"line_id": "L1", "sku": "A", "qty": 1,
                                                          "unit_price_fen": 20000}]}}),
        "wallet spend": admin_api.post(f"/wallet/{m.pk}/spend", {"amount_fen": 100, "order_no": "F-4",
                                                                 "store": "SH"}),
        "wallet top-up": admin_api.post(f"/wallet/{m.pk}/topup", {"amount_fen": 100, "payment_ref": "PAY-2",
                                                                  "store": "SH"}),
        "checkout": admin_api.post("/checkout", {"member_id": m.pk, "channel": "offline", "order_no": "F-5",
                                                 "store": "SH", "lines": line}),
    }
    answers = {what: (r.status_code, r.json().get("code")) for what, r in tries.items()}
    assert answers == {what: (409, "member_frozen") for what in tries}, answers
    assert not Purchase.objects.filter(member=m).exists()
    assert PointsAccount.objects.get(member=m).balance == 500
    assert Coupon.objects.get(pk=coupon.pk).uses_left == 1
    # corrections still go through: a staff adjustment
    assert admin_api.post("/loyalty/adjustments", {"member_id": m.pk, "points": -10, "reason": "fix"}).status_code \
        in (200, 201)
    assert_sound(m.pk)


@pytest.mark.django_db
def test_unfreezing_extends_lots_and_coupons_by_the_time_frozen(stores: Any) -> None:
    m = member()
    now = timezone.now()
    adjustment_request(actor=SYSTEM, points=300, reason="welcome", member_id=m.pk)
    lot = PointsLot.objects.get(account__member=m)
    expires = now + timedelta(days=2)
    PointsLot.objects.filter(pk=lot.pk).update(expires_at=expires)
    coupon = coupon_make(template_make(), m.pk)
    Coupon.objects.filter(pk=coupon.pk).update(valid_until=expires)
    frozen_at = now + timedelta(days=1)
    member_set_frozen(actor=SYSTEM, member_id=m.pk, frozen=True, reason="dispute", now=frozen_at)
    # the nightly jobs, run after the expiry while frozen, leave them alone
    assert points_expire(now=now + timedelta(days=5)) == 0
    coupons_expire(now=now + timedelta(days=5))
    assert PointsLot.objects.get(pk=lot.pk).remaining == 300
    assert Coupon.objects.get(pk=coupon.pk).status == Coupon.Status.AVAILABLE
    unfrozen_at = now + timedelta(days=11)  # frozen for ten days
    member_set_frozen(actor=SYSTEM, member_id=m.pk, frozen=False, reason="resolved", now=unfrozen_at)
    assert PointsLot.objects.get(pk=lot.pk).expires_at == expires + timedelta(days=10)
    assert Coupon.objects.get(pk=coupon.pk).valid_until == expires + timedelta(days=10)
    entry = AuditEntry.objects.filter(action="member.unfreeze").get()
    assert entry.after["points_lots_extended"] == 1 and entry.after["coupons_extended"] == 1
    assert entry.after["extended_by_seconds"] == 10 * 86400
    assert Member.objects.get(pk=m.pk).frozen_at is None
    assert points_expire(now=now + timedelta(days=5)) == 0  # extended: not yet expired
    assert_sound(m.pk)


@pytest.mark.django_db(transaction=True)
def test_an_earn_that_waited_for_a_freeze_is_refused(make_key: Any, stores: Any) -> None:
    """Another connection freezes the member as `member_set_frozen` does (the member row FOR
    UPDATE, then its status) and holds its transaction open while a till earns by id; once
    the freeze commits, the earn must not be booked."""
    m = member()
    token = make_key()
    api = Api(Client(), token)
    assert api.post("/loyalty/purchases", {"member_id": m.pk, "channel": "offline", "order_no": "W-0",
                                           "store": "SH", "paid_fen": 1000}).status_code == 201
    table = Member._meta.db_table
    other = connections.create_connection("default")
    result: list[Any] = []

    def earn() -> None:
        try:
            result.append(Api(Client(), token).post("/loyalty/purchases", {
                "member_id": m.pk, "channel": "offline", "order_no": "W-1", "store": "SH", "paid_fen": 1000}))
        except Exception as exc:  # a crash must fail the test
            result.append(exc)
        finally:
            connection.close()

    try:
        with other.cursor() as cursor:
            if other.vendor == "sqlite":
                cursor.execute("BEGIN IMMEDIATE")
            else:
                other.set_autocommit(False)
                cursor.execute(f'SELECT "id" FROM "{table}" WHERE "id" = %s FOR UPDATE', [m.pk])
            cursor.execute(f'UPDATE "{table}" SET "status" = %s WHERE "id" = %s', ["frozen", m.pk])
        till = threading.Thread(target=earn)
        till.start()
        time.sleep(1.0)
        assert till.is_alive()  # waiting for the freeze
        other.commit()
    finally:
        other.close()
    till.join(60)
    [r] = result
    assert not isinstance(r, Exception), r
    assert (r.status_code, r.json()["code"]) == (409, "member_frozen"), r.content
    assert not Purchase.objects.filter(order_no="W-1").exists()


@pytest.mark.django_db
def test_a_frozen_members_gift_card_and_points_exchange_are_refused(admin_api: Any) -> None:
    from memberhub.wallet.giftcards import gift_cards_issue
    from memberhub.wallet.models import GiftCard

    m = member()
    adjustment_request(actor=SYSTEM, points=900, reason="welcome", member_id=m.pk)
    [card] = gift_cards_issue(actor=SYSTEM, count=1, amount_fen=3000, batch_ref="B-F")
    GiftCard.objects.filter(pk=card.pk).update(member=m)
    exchangeable = template_make(points_price=500)
    member_set_frozen(actor=SYSTEM, member_id=m.pk, frozen=True, reason="fraud check")
    r = admin_api.post(f"/wallet/gift-cards/{card.code}/spend", {"amount_fen": 1000, "order_no": "G-1"})
    assert (r.status_code, r.json()["code"]) == (409, "member_frozen"), r.content
    r = admin_api.post(f"/coupons/templates/{exchangeable.pk}/exchange", {"member_id": m.pk})
    assert (r.status_code, r.json()["code"]) == (409, "member_frozen"), r.content
    assert GiftCard.objects.get(pk=card.pk).balance_fen == 3000
    assert not Coupon.objects.filter(member=m).exists()
    assert PointsAccount.objects.get(member=m).balance == 900
