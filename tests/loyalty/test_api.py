"""The loyalty HTTP API: envelopes, permissions, idempotency and the till flow end to end."""

from __future__ import annotations

from typing import Any

import pytest

from tests.loyalty.helpers import member

pytestmark = pytest.mark.django_db


def _buy(api: Any, member_id: int, order_no: str, paid: int = 12_800, **kw: Any) -> Any:
    return api.post("/loyalty/purchases", {"member_id": member_id, "channel": "offline", "order_no": order_no,
                                           "store": "SH", "paid_fen": paid, **kw})


def test_the_till_flow_over_http(admin_api: Any) -> None:
    m = member()
    r = _buy(admin_api, m.pk, "H-1", lines=[{"sku": "A", "category": "food", "qty": 2, "unit_price_fen": 6_400,
                                              "paid_fen": 12_800}])
    assert r.status_code == 201, r.content
    assert r.json()["points"] == 128 and r.json()["lines"][0]["points"] == 128
    again = _buy(admin_api, m.pk, "H-1", lines=[{"sku": "A", "category": "food", "qty": 2, "unit_price_fen": 6_400,
                                                  "paid_fen": 12_800}])
    assert again.status_code == 200 and again.json()["replayed"]
    conflict = _buy(admin_api, m.pk, "H-1", paid=1)
    assert conflict.status_code == 409 and conflict.json()["code"] == "order_exists"
    balance = admin_api.get(f"/loyalty/members/{m.pk}/points").json()
    assert (balance["balance"], balance["pending"], balance["available"]) == (128, 128, 0)
    page = admin_api.get(f"/loyalty/members/{m.pk}/points/statement", params={"limit": 1}).json()
    assert page["items"][0]["order_no"] == "H-1" and page["items"][0]["trace"]
    refund = admin_api.post("/loyalty/refunds", {"channel": "offline", "order_no": "H-1", "refund_no": "R-1"})
    assert refund.status_code == 201 and refund.json()["settlement"]["from_pending"] == 128
    assert admin_api.get(f"/loyalty/members/{m.pk}/points/check").json() == []


def test_redeem_errors_are_envelopes(admin_api: Any) -> None:
    m = member()
    r = admin_api.post("/loyalty/redeem", {"member_id": m.pk, "points": 100})
    assert r.status_code == 422 and r.json()["code"] == "insufficient_points"
    assert r.json()["detail"] == {"available": 0, "requested": 100}
    assert admin_api.post("/loyalty/redeem", {"member_id": m.pk, "points": 100, "bogus": 1}).status_code == 422
    assert admin_api.post("/loyalty/redeem", {"points": 100}).status_code == 422
    assert admin_api.post("/loyalty/redeem", {"member_id": 999999, "points": 100}).status_code == 404


def test_holds_and_adjustments_over_http(admin_api: Any, staff_api: Any) -> None:
    m = member()
    service = staff_api("service")
    r = service.post("/loyalty/adjustments", {"member_id": m.pk, "points": 5_000, "reason": "lost card"})
    assert r.status_code == 201 and r.json()["state"] == "pending"
    same = service.post(f"/loyalty/adjustments/{r.json()['id']}/approve", {})
    assert same.status_code == 422 and same.json()["code"] == "self_approval"
    ok = admin_api.post(f"/loyalty/adjustments/{r.json()['id']}/approve", {"reason": "checked"})
    assert ok.status_code == 200 and ok.json()["state"] == "applied"
    hold = admin_api.post("/loyalty/holds", {"member_id": m.pk, "points": 1_000, "order_fen": 10_000})
    assert hold.status_code == 201 and hold.json()["deduction_fen"] == 1_000
    assert admin_api.post(f"/loyalty/holds/{hold.json()['id']}/release").json()["state"] == "released"
    assert admin_api.get(f"/loyalty/members/{m.pk}/points").json()["available"] == 5_000


def test_cashiers_record_purchases_only_in_their_stores(staff_api: Any) -> None:
    m = member()
    cashier = staff_api("cashier", ["SH"])
    assert _buy(cashier, m.pk, "C-1").status_code == 201
    r = cashier.post("/loyalty/purchases", {"member_id": m.pk, "channel": "offline", "order_no": "C-2", "store": "BJ",
                                            "paid_fen": 100})
    assert r.status_code == 403 and r.json()["code"] == "store_out_of_scope"
    analyst = staff_api("analyst")
    assert _buy(analyst, m.pk, "C-3").status_code == 403
    assert analyst.post("/loyalty/adjustments", {"member_id": m.pk, "points": 5, "reason": "x"}).status_code == 403


def test_the_quote_gives_member_price_points_and_benefits(admin_api: Any) -> None:
    m = member()
    admin_api.post(f"/loyalty/members/{m.pk}/tier/override", {"tier": "gold", "reason": "test"})
    q = admin_api.post("/loyalty/quote", {"member_id": m.pk, "lines": [
        {"line_id": "1", "sku": "A", "category": "food", "qty": 2, "unit_price_fen": 5_000}]})
    assert q.status_code == 200, q.content
    body = q.json()
    assert (body["tier"], body["list_fen"], body["member_fen"], body["points"]) == ("gold", 10_000, 9_000, 135)
    assert "member_discount" in body["benefits"] and body["free_shipping"]


def test_programme_changes_are_validated_and_audited(admin_api: Any, staff_api: Any) -> None:
    from memberhub.audit.models import AuditEntry

    current = admin_api.get("/loyalty/programme").json()
    config = current["config"]
    config["earn"]["points_per_yuan"] = "2"
    r = admin_api.put("/loyalty/programme", {"config": config, "reason": "double points"}) \
        if hasattr(admin_api, "put") else admin_api._call("put", "/loyalty/programme",
                                                          {"config": config, "reason": "double points"})
    assert r.status_code == 200, r.content
    assert AuditEntry.objects.filter(action="loyalty.programme_update").exists()
    bad = dict(config, tiers={"tiers": [{"code": "vip", "name": "VIP", "min_purchases": 1}]})
    r = admin_api._call("put", "/loyalty/programme", {"config": bad, "reason": "oops"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_rule"
    cashier = staff_api("cashier", ["SH"])
    assert cashier._call("put", "/loyalty/programme", {"config": config, "reason": "x"}).status_code == 403


def test_tier_progress_what_if_and_history(admin_api: Any) -> None:
    m = member()
    for i in range(5):
        _buy(admin_api, m.pk, f"T-{i}", paid=1_000)
    progress = admin_api.get(f"/loyalty/members/{m.pk}/tier").json()
    assert progress["tier"] == "silver" and progress["next"]["tier"] == "gold"
    history = admin_api.get(f"/loyalty/members/{m.pk}/tier/history").json()
    assert history[0]["reason"] == "upgrade"
    config = admin_api.get("/loyalty/programme").json()["config"]
    r = admin_api.post("/loyalty/tiers/what-if", {"config": config})
    assert r.status_code == 200 and r.json()["members"] == 1
    assert admin_api.post("/loyalty/tiers/evaluate").status_code == 200


def test_bulk_endpoint_reports_each_purchase(admin_api: Any) -> None:
    m = member()
    body = {"purchases": [
        {"member_id": m.pk, "channel": "online", "order_no": "B-1", "paid_fen": 1_000, "store": "ONLINE"},
        {"member_id": m.pk, "channel": "online", "order_no": "B-1", "paid_fen": 1_000, "store": "ONLINE"},
        {"member_id": m.pk, "channel": "online", "order_no": "B-2", "paid_fen": 1_000, "store": "NOPE"},
    ]}
    r = admin_api.post("/loyalty/purchases/bulk", body)
    assert r.status_code == 200, r.content
    assert [i["status"] for i in r.json()["items"]] == ["created", "replayed", "rejected"]


def test_idempotency_key_replays_a_redeem(admin_api: Any) -> None:
    m = member()
    admin_api.post("/loyalty/adjustments", {"member_id": m.pk, "points": 500, "reason": "seed"})
    first = admin_api.post("/loyalty/redeem", {"member_id": m.pk, "points": 100}, headers={"Idempotency-Key": "k1"})
    second = admin_api.post("/loyalty/redeem", {"member_id": m.pk, "points": 100}, headers={"Idempotency-Key": "k1"})
    assert first.status_code == second.status_code == 200 and second["Idempotent-Replayed"] == "true"
    assert admin_api.get(f"/loyalty/members/{m.pk}/points").json()["available"] == 400


def test_openapi_documents_the_loyalty_endpoints(admin_api: Any) -> None:
    spec = admin_api.client.get("/api/v1/openapi.json").json()
    assert "/api/v1/loyalty/purchases" in spec["paths"] and "/api/v1/loyalty/holds/{hold_id}/confirm" in spec["paths"]
