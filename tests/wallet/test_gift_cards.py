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
    typo = code[:-2] + code[-1] + code[-2]
    r = admin_api.get(f"/wallet/gift-cards/{typo}")
    assert r.status_code == 404 and r.json()["detail"].get("format") in ("bad_check_character", None)
