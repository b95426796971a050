"""Stored value through the API: top-up with bonus, draw order, refunds, statement, ledger check."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from memberhub.audit.models import AuditEntry
from memberhub.wallet.models import Wallet, WalletMovement
from tests.members.factories import member_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(stores: Any) -> Any:
    return member_make()


@pytest.fixture
def rules(admin_api: Any) -> None:
    for threshold, bonus in ((100000, 10000), (50000, 3000)):
        assert admin_api.post("/wallet/topup-rules", {"threshold_fen": threshold, "bonus_fen": bonus}).status_code == 201


def _topup(api: Any, member: Any, amount: int, ref: str = "PAY-1") -> Any:
    return api.post(f"/wallet/{member.pk}/topup", {"amount_fen": amount, "payment_ref": ref, "store": "SH"})


def _spend(api: Any, member: Any, amount: int, order: str = "SO-1", **kw: Any) -> Any:
    return api.post(f"/wallet/{member.pk}/spend", {"amount_fen": amount, "order_no": order, "store": "SH", **kw})


def _balance(api: Any, member: Any, **params: Any) -> dict[str, Any]:
    return api.get(f"/wallet/{member.pk}", params=params).json()


def test_it_books_the_topup_bonus_apart_from_the_principal(admin_api: Any, member: Any, rules: None) -> None:
    r = _topup(admin_api, member, 100000)
    assert r.status_code == 201, r.content
    assert (r.json()["principal_fen"], r.json()["bonus_fen"]) == (100000, 10000)
    assert _balance(admin_api, member) == {**_balance(admin_api, member), "principal_fen": 100000, "bonus_fen": 10000,
                                           "total_fen": 110000}
    assert AuditEntry.objects.filter(action="wallet.topup").count() == 1


def test_it_replays_a_topup_with_the_same_payment_ref(admin_api: Any, member: Any, rules: None) -> None:
    first = _topup(admin_api, member, 100000)
    again = _topup(admin_api, member, 100000)
    assert again.json()["id"] == first.json()["id"]
    assert _balance(admin_api, member)["total_fen"] == 110000
    assert _topup(admin_api, member, 5000).json()["code"] == "ref_reused"


def test_it_draws_principal_first_by_default(admin_api: Any, member: Any, rules: None) -> None:
    _topup(admin_api, member, 100000)
    r = _spend(admin_api, member, 105000)
    assert r.status_code == 200, r.content
    assert (r.json()["principal_fen"], r.json()["bonus_fen"]) == (-100000, -5000)


@pytest.mark.parametrize(("order", "expected"), [("bonus_first", (-95000, -10000)), ("proportional", (-95455, -9545))])
def test_it_draws_in_the_configured_order(admin_api: Any, member: Any, rules: None, order: str,
                                          expected: tuple[int, int]) -> None:
    assert admin_api.client.put("/api/v1/wallet/config", data={"draw_order": order}, content_type="application/json",
                                **admin_api.headers).status_code == 200
    _topup(admin_api, member, 100000)
    r = _spend(admin_api, member, 105000)
    assert (r.json()["principal_fen"], r.json()["bonus_fen"]) == expected


def test_it_refuses_to_overdraw_unless_partial(admin_api: Any, member: Any) -> None:
    _topup(admin_api, member, 1000)
    r = _spend(admin_api, member, 1500)
    assert r.status_code == 422 and r.json()["code"] == "insufficient_balance"
    assert r.json()["detail"]["missing_fen"] == 500
    r = _spend(admin_api, member, 1500, allow_partial=True)
    assert r.status_code == 200 and r.json()["principal_fen"] == -1000
    assert _balance(admin_api, member)["total_fen"] == 0


def test_it_refunds_in_the_proportion_the_payment_drew(admin_api: Any, member: Any, rules: None) -> None:
    _topup(admin_api, member, 100000)
    _spend(admin_api, member, 105000)  # 100000 principal + 5000 bonus
    r1 = admin_api.post(f"/wallet/{member.pk}/refund", {"order_no": "SO-1", "amount_fen": 21000, "refund_no": "R1"})
    assert r1.status_code == 201, r1.content
    assert (r1.json()["principal_fen"], r1.json()["bonus_fen"]) == (20000, 1000)
    r2 = admin_api.post(f"/wallet/{member.pk}/refund", {"order_no": "SO-1", "amount_fen": 84000, "refund_no": "R2"})
    assert (r2.json()["principal_fen"], r2.json()["bonus_fen"]) == (80000, 4000)
    r3 = admin_api.post(f"/wallet/{member.pk}/refund", {"order_no": "SO-1", "amount_fen": 1, "refund_no": "R3"})
    assert r3.status_code == 422 and r3.json()["code"] == "refund_exceeds_payment"
    assert _balance(admin_api, member)["total_fen"] == 110000
    assert admin_api.get(f"/wallet/{member.pk}/check").json() == []


def test_it_gives_the_balance_as_of_a_past_moment_and_a_statement(admin_api: Any, member: Any) -> None:
    from memberhub.access.principal import system_principal
    from memberhub.wallet.services import wallet_spend, wallet_topup

    actor = system_principal("test")
    t0 = timezone.now() - timedelta(days=10)
    wallet_topup(actor=actor, member_id=member.pk, amount_fen=5000, payment_ref="P1", now=t0)
    wallet_spend(actor=actor, member_id=member.pk, amount_fen=2000, order_no="O1", now=t0 + timedelta(days=5))
    past = _balance(admin_api, member, as_of=(t0 + timedelta(days=1)).isoformat())
    assert past["total_fen"] == 5000
    assert _balance(admin_api, member)["total_fen"] == 3000
    st = admin_api.get(f"/wallet/{member.pk}/statement", params={"date_from": (t0 + timedelta(days=2)).isoformat()})
    assert st.status_code == 200, st.content
    assert st.json()["opening"]["total_fen"] == 5000
    assert [m["kind"] for m in st.json()["items"]] == ["spend"]


def test_the_ledger_check_finds_a_tampered_balance(admin_api: Any, member: Any) -> None:
    _topup(admin_api, member, 5000)
    Wallet.objects.filter(member=member).update(principal_fen=9999)
    problems = admin_api.get(f"/wallet/{member.pk}/check").json()
    assert [p["code"] for p in problems] == ["balance_mismatch"]


def test_movements_are_append_only(admin_api: Any, member: Any) -> None:
    _topup(admin_api, member, 5000)
    _spend(admin_api, member, 2000)
    assert list(WalletMovement.objects.order_by("pk").values_list("kind", "principal_after_fen")) == [
        ("topup", 5000), ("spend", 3000)]


def test_a_cashier_tops_up_only_in_own_store_and_an_analyst_not_at_all(staff_api: Any, member: Any) -> None:
    # the member's home store is SH: a BJ cashier serves them at BJ only, and reads nothing
    bj = staff_api("cashier", ["BJ"])
    assert _topup(bj, member, 1000).json()["code"] == "store_out_of_scope"
    r = bj.post(f"/wallet/{member.pk}/topup", {"amount_fen": 1000, "payment_ref": "PAY-BJ", "store": "BJ"})
    assert r.status_code == 201, r.content
    assert bj.get(f"/wallet/{member.pk}").status_code == 404
    r = bj.post(f"/wallet/{member.pk}/topup", {"amount_fen": 1000, "payment_ref": "PAY-BJ2"})
    assert (r.status_code, r.json()["code"]) == (404, "member_not_found")
    assert _topup(staff_api("analyst"), member, 1000).status_code == 403
    sh = staff_api("cashier", ["SH"])
    assert _topup(sh, member, 1000).status_code == 201
    # and a cashier of the member's home store may not book it in another store
    r = sh.post(f"/wallet/{member.pk}/topup", {"amount_fen": 1000, "payment_ref": "PAY-2", "store": "BJ"})
    assert r.status_code == 403


def test_a_cashier_spends_only_for_members_of_own_store(staff_api: Any, admin_api: Any, member: Any) -> None:
    _topup(admin_api, member, 5000)
    body = {"amount_fen": 1000, "order_no": "SO-1", "store": "BJ"}
    bj = staff_api("cashier", ["BJ"])
    r = bj.post(f"/wallet/{member.pk}/spend", {**body, "store": None})  # no store: only for BJ's own members
    assert (r.status_code, r.json()["code"]) == (404, "member_not_found")
    r = bj.post(f"/wallet/{member.pk}/spend", body)  # served at BJ
    assert r.status_code == 200, r.content
    r = staff_api("cashier", ["SH"]).post(f"/wallet/{member.pk}/spend", {**body, "order_no": "SO-2", "store": "SH"})
    assert r.status_code == 200, r.content
    assert admin_api.get(f"/wallet/{member.pk}").json()["total_fen"] == 3000


def test_it_rejects_bad_amounts(admin_api: Any, member: Any) -> None:
    assert _topup(admin_api, member, 0).status_code == 422
    assert _topup(admin_api, member, -5).status_code == 422
    assert admin_api.post(f"/wallet/{member.pk}/refund", {"order_no": "X", "amount_fen": 1, "refund_no": "R"}
                          ).json()["code"] == "payment_not_found"


def test_an_unknown_member_has_no_wallet(admin_api: Any, stores: Any) -> None:
    assert admin_api.get("/wallet/999999").status_code == 404
    assert _topup(admin_api, type("M", (), {"pk": 999999})(), 100).status_code == 404


def test_a_spend_replayed_with_another_amount_is_refused(admin_api: Any, member: Any) -> None:
    _topup(admin_api, member, 10000)
    first = _spend(admin_api, member, 3000)
    assert first.status_code == 200, first.content
    assert _spend(admin_api, member, 3000).json()["id"] == first.json()["id"]  # the same request: its first answer
    other = _spend(admin_api, member, 5000)
    assert other.status_code == 409 and other.json()["code"] == "ref_reused", other.content
    assert _balance(admin_api, member)["total_fen"] == 7000


def test_a_partial_spend_replayed_with_another_amount_is_refused(admin_api: Any, member: Any) -> None:
    _topup(admin_api, member, 1000)
    first = _spend(admin_api, member, 1500, allow_partial=True)  # draws the 1000 there is
    assert _spend(admin_api, member, 1500, allow_partial=True).json()["id"] == first.json()["id"]
    other = _spend(admin_api, member, 1200, allow_partial=True)
    assert other.status_code == 409 and other.json()["code"] == "ref_reused"


def test_a_refund_replayed_with_another_amount_or_order_is_refused(admin_api: Any, member: Any) -> None:
    _topup(admin_api, member, 10000)
    _spend(admin_api, member, 3000, order="SO-1")
    _spend(admin_api, member, 3000, order="SO-2")

    def refund(order: str, amount: int) -> Any:
        return admin_api.post(f"/wallet/{member.pk}/refund", {"order_no": order, "amount_fen": amount, "refund_no": "R1"})

    first = refund("SO-1", 1000)
    assert first.status_code == 201, first.content
    assert refund("SO-1", 1000).json()["id"] == first.json()["id"]
    for order, amount in (("SO-1", 2000), ("SO-2", 1000)):
        r = refund(order, amount)
        assert r.status_code == 409 and r.json()["code"] == "ref_reused", (order, amount, r.content)
    assert _balance(admin_api, member)["total_fen"] == 5000
