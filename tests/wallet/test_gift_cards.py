"""Gift cards: issued with verified codes, spent and refunded on one balance."""

from __future__ import annotations

from typing import Any

import pytest

from memberhub.domain.coupon_codes import code_verify
from memberhub.wallet.giftcards import CODE_LENGTH, CODE_PREFIX

pytestmark = pytest.mark.django_db


def _issue(api: Any, count: int = 3, amount: int = 20000, ref: str = "GC-B1") -> Any:
    return api.post("/wallet/gift-cards", {"count": count, "amount_fen": amount, "batch_ref": ref})


def test_it_issues_cards_with_unique_verifiable_codes(admin_api: Any) -> None:
    r = _issue(admin_api)
    assert r.status_code == 201, r.content
    codes = [c["code"] for c in r.json()]
    assert len(set(codes)) == 3
    assert all(code_verify(code=c, prefix=CODE_PREFIX, length=CODE_LENGTH).valid for c in codes)
    assert [c["code"] for c in _issue(admin_api).json()] == codes  # a replayed batch makes no new cards


def test_it_spends_and_refunds_a_card(admin_api: Any, stores: Any) -> None:
    code = _issue(admin_api, count=1).json()[0]["code"]
    r = admin_api.post(f"/wallet/gift-cards/{code}/spend", {"amount_fen": 15000, "order_no": "O1", "store": "SH"})
    assert r.status_code == 200 and r.json()["balance_after_fen"] == 5000
    over = admin_api.post(f"/wallet/gift-cards/{code}/spend", {"amount_fen": 6000, "order_no": "O2"})
    assert over.status_code == 422 and over.json()["code"] == "insufficient_balance"
    back = admin_api.post(f"/wallet/gift-cards/{code}/refund", {"order_no": "O1", "amount_fen": 15000, "refund_no": "R1"})
    assert back.json()["balance_after_fen"] == 20000
    too_much = admin_api.post(f"/wallet/gift-cards/{code}/refund", {"order_no": "O1", "amount_fen": 1, "refund_no": "R2"})
    assert too_much.json()["code"] == "refund_exceeds_payment"
    dashed = "-".join(code[i:i + 4] for i in range(0, len(code), 4)).lower()
    assert admin_api.get(f"/wallet/gift-cards/{dashed}").json()["balance_fen"] == 20000
    assert [m["kind"] for m in admin_api.get(f"/wallet/gift-cards/{code}/statement").json()] == ["issue", "spend", "refund"]


def test_a_mistyped_code_is_not_found(admin_api: Any) -> None:
    code = _issue(admin_api, count=1).json()[0]["code"]
    # swap the last two neighbours that differ: swapping equal characters would be no typo
    i = max(j for j in range(len(code) - 1) if code[j] != code[j + 1])
    typo = code[:i] + code[i + 1] + code[i] + code[i + 2:]
    r = admin_api.get(f"/wallet/gift-cards/{typo}")
    assert r.status_code == 404 and r.json()["detail"].get("format") in ("bad_check_character", None)


def test_a_card_needs_its_pin_which_is_shown_once_and_stored_hashed(admin_api: Any, staff_api: Any) -> None:
    from memberhub.wallet.models import GiftCard

    [card] = _issue(admin_api, count=1).json()
    pin = card["pin"]
    assert pin and len(pin) == 6 and pin.isdigit()
    stored = GiftCard.objects.get(code=card["code"])
    assert stored.pin_hash and pin not in stored.pin_hash
    assert "pin" not in admin_api.get(f"/wallet/gift-cards/{card['code']}").json()
    assert _issue(admin_api, count=1).json()[0]["pin"] is None  # a replayed batch cannot show it again
    cashier = staff_api("cashier", ["SH"])
    spend = {"amount_fen": 1000, "order_no": "O1", "store": "SH"}
    r = cashier.post(f"/wallet/gift-cards/{card['code']}/spend", spend)
    assert (r.status_code, r.json()["code"]) == (422, "gift_card_pin_required")
    wrong = "000000" if pin != "000000" else "111111"
    r = cashier.post(f"/wallet/gift-cards/{card['code']}/spend", {**spend, "pin": wrong})
    assert (r.status_code, r.json()["code"]) == (403, "gift_card_pin_invalid")
    r = cashier.post(f"/wallet/gift-cards/{card['code']}/spend", {**spend, "pin": pin})
    assert r.status_code == 200 and r.json()["balance_after_fen"] == 19000
    # programme:manage with wallet:spend waives the PIN (back office, the system)
    r = admin_api.post(f"/wallet/gift-cards/{card['code']}/spend", {**spend, "order_no": "O2"})
    assert r.status_code == 200 and r.json()["balance_after_fen"] == 18000


def test_the_expiry_job_writes_off_what_is_left_by_an_entry(admin_api: Any, stores: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from memberhub.access.principal import system_principal
    from memberhub.wallet.giftcards import gift_card_check, gift_cards_expire, gift_cards_issue
    from memberhub.wallet.models import GiftCard

    now = timezone.now()
    system = system_principal("test")
    [soon] = gift_cards_issue(actor=system, count=1, amount_fen=5000, batch_ref="B-SOON", expires_at=now + timedelta(days=1))
    [later] = gift_cards_issue(actor=system, count=1, amount_fen=5000, batch_ref="B-LATER",
                               expires_at=now + timedelta(days=30))
    [never] = gift_cards_issue(actor=system, count=1, amount_fen=5000, batch_ref="B-NEVER")
    admin_api.post(f"/wallet/gift-cards/{soon.code}/spend", {"amount_fen": 1500, "order_no": "O1"})
    assert gift_cards_expire(now=now) == 0
    assert gift_cards_expire(now=now + timedelta(days=2)) == 1
    assert gift_cards_expire(now=now + timedelta(days=2)) == 0  # re-run safe
    soon = GiftCard.objects.get(pk=soon.pk)
    assert soon.balance_fen == 0 and gift_card_check(card=soon) == []
    moves = admin_api.get(f"/wallet/gift-cards/{soon.code}/statement").json()
    assert [(m["kind"], m["amount_fen"]) for m in moves] == [("issue", 5000), ("spend", -1500), ("expire", -3500)]
    assert GiftCard.objects.get(pk=later.pk).balance_fen == GiftCard.objects.get(pk=never.pk).balance_fen == 5000
    r = admin_api.post(f"/wallet/gift-cards/{soon.code}/spend", {"amount_fen": 1, "order_no": "O2"})
    assert r.json()["code"] == "insufficient_balance"


def test_a_members_gift_cards_move_to_the_survivor_on_merge(stores: Any) -> None:
    from memberhub.access.principal import system_principal
    from memberhub.members.merge import member_merge
    from memberhub.wallet.giftcards import gift_cards_issue
    from memberhub.wallet.member_hooks import wallet_member_export
    from memberhub.wallet.models import GiftCard
    from tests.members.factories import member_make

    system = system_principal("test")
    survivor, absorbed = member_make(phone="13900000001"), member_make(phone="13900000002")
    cards = gift_cards_issue(actor=system, count=2, amount_fen=5000, batch_ref="B-M")
    GiftCard.objects.filter(pk__in=[c.pk for c in cards]).update(member=absorbed)
    member_merge(actor=system, survivor_id=survivor.pk, absorbed_id=absorbed.pk, reason="duplicate")
    assert set(GiftCard.objects.filter(member=survivor).values_list("pk", flat=True)) == {c.pk for c in cards}
    assert all(c.balance_fen == 5000 for c in GiftCard.objects.all())
    assert len(wallet_member_export(survivor)["gift_cards"]) == 2


def test_a_card_payment_or_refund_replayed_with_another_amount_is_refused(admin_api: Any, stores: Any) -> None:
    code = _issue(admin_api, count=1).json()[0]["code"]

    def spend(amount: int, order: str = "O1") -> Any:
        return admin_api.post(f"/wallet/gift-cards/{code}/spend", {"amount_fen": amount, "order_no": order})

    def refund(amount: int, order: str = "O1") -> Any:
        return admin_api.post(f"/wallet/gift-cards/{code}/refund",
                              {"order_no": order, "amount_fen": amount, "refund_no": "R1"})

    first = spend(5000)
    assert spend(5000).json()["id"] == first.json()["id"]
    assert spend(7000).status_code == 409 and spend(7000).json()["code"] == "ref_reused"
    spend(2000, "O2")
    back = refund(1000)
    assert back.status_code == 200, back.content
    assert refund(1000).json()["id"] == back.json()["id"]
    assert refund(1500).status_code == 409 and refund(1500).json()["code"] == "ref_reused"
    assert refund(1000, "O2").json()["code"] == "ref_reused"
    assert admin_api.get(f"/wallet/gift-cards/{code}").json()["balance_fen"] == 20000 - 5000 - 2000 + 1000
