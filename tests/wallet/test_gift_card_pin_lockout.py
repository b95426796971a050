"""Gift-card PIN guessing: a card locks after 5 refused PINs (the right one too, until staff
unlock it with a reason), every refusal is counted and audited although the payment rolls
back, and a caller with too many refusals waits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from memberhub.audit.models import AuditEntry
from memberhub.wallet.models import GiftCard
from tests.conftest import Api, race_posts

CASHIER_SCOPES = ["wallet:read", "wallet:spend", "purchases:write"]


def _issue(api: Api, count: int = 1, ref: str = "PIN-B1") -> list[dict[str, Any]]:
    r = api.post("/wallet/gift-cards", {"count": count, "amount_fen": 20000, "batch_ref": ref})
    assert r.status_code == 201, r.content
    return list(r.json())


def _wrong(pin: str) -> str:
    return "000000" if pin != "000000" else "111111"


def _spend(api: Api, card: dict[str, Any], pin: str, order: str = "O1", **kw: Any) -> Any:
    return api.post(f"/wallet/gift-cards/{card['code']}/spend",
                    {"amount_fen": 1000, "order_no": order, "store": "SH", "pin": pin}, **kw)


def _failures(card: dict[str, Any]) -> int:
    return GiftCard.objects.get(code=card["code"]).pin_failures


def _audits(card: dict[str, Any], action: str = "gift_card.pin_failed") -> int:
    pk = GiftCard.objects.get(code=card["code"]).pk
    return AuditEntry.objects.filter(action=action, target_id=str(pk)).count()


@pytest.mark.django_db
def test_a_card_locks_after_five_wrong_pins_and_then_refuses_the_right_one(admin_api: Api,
                                                                           staff_api: Callable[..., Api]) -> None:
    [card] = _issue(admin_api)
    cashier = staff_api("cashier", ["SH"])
    for n in range(5):
        r = _spend(cashier, card, _wrong(card["pin"]))
        assert (r.status_code, r.json()["code"]) == (403, "gift_card_pin_invalid")
        assert r.json()["detail"]["attempts_left"] == 4 - n
        assert _failures(card) == n + 1 and _audits(card) == n + 1
    r = _spend(cashier, card, card["pin"])
    assert (r.status_code, r.json()["code"]) == (423, "gift_card_locked")
    assert _audits(card, "gift_card.lock") == 1 and _audits(card) == 6
    assert admin_api.get(f"/wallet/gift-cards/{card['code']}").json()["pin_locked_at"] is not None
    # nobody spends a locked card, not even a caller who may waive the PIN
    r = admin_api.post(f"/wallet/gift-cards/{card['code']}/spend", {"amount_fen": 1000, "order_no": "O2"})
    assert r.status_code == 423
    assert GiftCard.objects.get(code=card["code"]).balance_fen == 20000


@pytest.mark.django_db
def test_the_right_pin_starts_the_count_again(admin_api: Api, staff_api: Callable[..., Api]) -> None:
    [card] = _issue(admin_api)
    cashier = staff_api("cashier", ["SH"])
    for _ in range(4):
        assert _spend(cashier, card, _wrong(card["pin"])).status_code == 403
    assert _spend(cashier, card, card["pin"]).status_code == 200
    assert _failures(card) == 0
    for _ in range(4):
        assert _spend(cashier, card, _wrong(card["pin"]), order="O2").status_code == 403
    assert _spend(cashier, card, card["pin"], order="O2").status_code == 200


@pytest.mark.django_db
def test_a_refusal_is_recorded_under_an_idempotency_key_and_inside_a_checkout(
        admin_api: Api, make_key: Callable[..., str]) -> None:
    [card] = _issue(admin_api)
    till = Api(Client(), make_key(CASHIER_SCOPES, ["SH"]))
    r = _spend(till, card, _wrong(card["pin"]), headers={"Idempotency-Key": "k-1"})
    assert r.status_code == 403 and _failures(card) == 1
    checkout = {"channel": "offline", "store": "SH", "order_no": "C-1",
                "lines": [{"line_id": "1", "sku": "TEA", "qty": 1, "unit_price_fen": 3000}],
                "gift_cards": [{"code": card["code"], "amount_fen": 3000, "pin": _wrong(card["pin"])}]}
    r = till.post("/checkout", checkout)
    assert (r.status_code, r.json()["code"]) == (403, "gift_card_pin_invalid")
    assert _failures(card) == 2
    r = till.post("/checkout", {**checkout, "order_no": "C-2"}, headers={"Idempotency-Key": "k-2"})
    assert r.status_code == 403 and _failures(card) == 3 and _audits(card) == 3


@pytest.mark.django_db
def test_staff_unlock_a_card_with_a_reason(admin_api: Api, staff_api: Callable[..., Api]) -> None:
    [card] = _issue(admin_api)
    cashier = staff_api("cashier", ["SH"])
    for _ in range(5):
        _spend(cashier, card, _wrong(card["pin"]))
    unlock = f"/wallet/gift-cards/{card['code']}/unlock"
    assert cashier.post(unlock, {"reason": "customer called"}).status_code == 403  # the guesser may not unlock
    assert admin_api.post(unlock, {"reason": ""}).status_code == 422
    r = admin_api.post(unlock, {"reason": "holder showed the receipt"})
    assert r.status_code == 200 and r.json()["pin_locked_at"] is None
    entry = AuditEntry.objects.get(action="gift_card.unlock")
    assert entry.reason == "holder showed the receipt" and entry.before["failures"] == 5
    assert _spend(cashier, card, card["pin"]).status_code == 200
    r = admin_api.post(unlock, {"reason": "again"})
    assert (r.status_code, r.json()["code"]) == (409, "gift_card_not_locked")


@pytest.mark.django_db
def test_a_caller_with_too_many_wrong_pins_waits_on_every_card(admin_api: Api, staff_api: Callable[..., Api],
                                                               settings: Any) -> None:
    settings.GIFT_CARD_PIN_CALLER_LIMIT = 6
    cards = _issue(admin_api, count=3)
    guesser, colleague = staff_api("cashier", ["SH"]), staff_api("cashier", ["BJ", "SH"])
    for card in cards[:2]:
        for _ in range(3):
            assert _spend(guesser, card, _wrong(card["pin"])).status_code == 403
    r = _spend(guesser, cards[2], cards[2]["pin"])
    assert (r.status_code, r.json()["code"]) == (429, "gift_card_pin_throttled")
    assert 1 <= int(r["Retry-After"]) <= settings.GIFT_CARD_PIN_CALLER_WINDOW_SECONDS
    assert _failures(cards[2]) == 0  # the PIN was not looked at
    assert _spend(colleague, cards[2], cards[2]["pin"]).status_code == 200  # others are not held up


@pytest.mark.django_db(transaction=True)
def test_parallel_wrong_pins_lock_the_card_and_each_one_counts(admin_api: Api, make_key: Callable[..., str]) -> None:
    [card] = _issue(admin_api)
    token = make_key(CASHIER_SCOPES, ["SH"])
    bodies = [{"amount_fen": 1000, "order_no": f"P{i}", "store": "SH", "pin": _wrong(card["pin"])} for i in range(10)]
    results = race_posts(token, f"/wallet/gift-cards/{card['code']}/spend", bodies)
    codes = sorted(r.json()["code"] for r in results)
    assert set(codes) <= {"gift_card_pin_invalid", "gift_card_locked"}, codes
    # each refusal is counted under the card's lock: a burst gets exactly the 5 tries a queue would
    assert codes.count("gift_card_pin_invalid") == 5 and codes.count("gift_card_locked") == 5, codes
    assert _failures(card) == 10 and _audits(card) == 10 and _audits(card, "gift_card.lock") == 1
    r = _spend(Api(Client(), token), card, card["pin"], order="P-right")
    assert (r.status_code, r.json()["code"]) == (423, "gift_card_locked")
    assert GiftCard.objects.get(code=card["code"]).balance_fen == 20000
