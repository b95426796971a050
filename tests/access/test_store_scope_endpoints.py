"""Store scope on every endpoint (docs/access.md): the table below names every route of the API.

A route that touches a member or a record of a store has a case: called by a caller of store
BJ against a member or record of store SH it is refused (404 as if missing, or 403 when the
caller named a store not its own) and never names the SH member; called by a caller of SH it
succeeds. A "serve" route may be used by BJ for SH's member at BJ's own store (and not at
SH). A route with no store-bound data says why. A new route without an entry fails
`test_every_route_is_in_the_table`.

The callers are API keys holding every capability but limited to one store, so a refusal
can only come from the store scope.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from memberhub.access.principal import Principal, system_principal
from memberhub.access.roles import ROLE_CAPS, Role
from memberhub.core.errors import NotFound
from memberhub.coupons.issuing import batch_create
from memberhub.coupons.models import IssueBatch
from memberhub.loyalty import points
from memberhub.loyalty.purchases import purchase_claim
from tests.conftest import Api
from tests.coupons.factories import coupon_make, template_make
from tests.members.factories import member_make

pytestmark = pytest.mark.django_db

Call = Callable[[Api, dict[str, Any]], Any]


@dataclass(frozen=True)
class Refuse:
    """BJ is refused on SH's record; SH succeeds."""

    call: Call


@dataclass(frozen=True)
class Serve:
    """`call(api, w, store)`: BJ may serve SH's member at BJ; nobody may name another's store."""

    call: Callable[[Api, dict[str, Any], str], Any]


def _sh_member(w: dict[str, Any]) -> int:
    return int(w["member"].pk)


LINES = [{"line_id": "1", "sku": "A", "category": "food", "unit_price_fen": 12_000, "qty": 1}]
BASKET = {"lines": [{"line_id": "1", "sku": "A", "category": "food", "unit_price_fen": 12_000, "qty": 1}],
          "shipping_fee_fen": 0, "tier_discount_permille": 1000}


def _checkout(api: Api, w: dict[str, Any], store: str) -> Any:
    return api.post("/checkout", {"channel": "offline", "order_no": f"SV-{store}", "store": store,
                                  "member_id": w["member"].pk, "lines": LINES, "points": 100, "wallet_fen": 100})


PHONES = {"SH": "13700137001", "BJ": "13700137002"}
CHAIN = "chain-wide: no member or store record"
TABLE: dict[str, Refuse | Serve | str] = {
    # --- members
    "POST /members": Serve(lambda a, w, s: a.post("/members", {"phone": PHONES[s], "home_store": s})),
    "GET /members": Refuse(lambda a, w: _listed(a.get("/members", params={"phone": "13800138000"}), _sh_member(w))),
    "GET /members/lookup": Refuse(lambda a, w: a.get("/members/lookup", params={"key": w["member"].member_no})),
    "GET /members/duplicates": "lists only the caller's members (test_store_scope.py)",
    "POST /members/merge": Refuse(lambda a, w: a.post("/members/merge", {
        "survivor_id": w["member"].pk, "absorbed_id": w["member2"].pk, "reason": "same person"})),
    "POST /members/import": "imports into the caller's stores (home_store checked per row)",
    "GET /members/imports/{job_id}": "a job is seen by whoever started it and by importers of every store, "
                                     "else 404 (tests/imports/test_jobs.py)",
    "GET /members/{member_id}": Refuse(lambda a, w: a.get(f"/members/{_sh_member(w)}")),
    "PATCH /members/{member_id}": Refuse(lambda a, w: a.patch(f"/members/{_sh_member(w)}", {"name": "改名"})),
    "POST /members/{member_id}/freeze": Refuse(lambda a, w: a.post(f"/members/{_sh_member(w)}/freeze",
                                                                   {"reason": "fraud"})),
    "POST /members/{member_id}/unfreeze": Refuse(lambda a, w: a.post(f"/members/{w['frozen'].pk}/unfreeze",
                                                                     {"reason": "cleared"})),
    "POST /members/{member_id}/erase": Refuse(lambda a, w: a.post(f"/members/{_sh_member(w)}/erase",
                                                                  {"reason": "asked"})),
    "GET /members/{member_id}/export": Refuse(lambda a, w: a.get(f"/members/{_sh_member(w)}/export")),
    # --- loyalty
    "POST /loyalty/purchases": Serve(lambda a, w, s: a.post("/loyalty/purchases", {
        "member_id": w["member"].pk, "channel": "offline", "order_no": f"P-{s}", "store": s, "paid_fen": 1_000})),
    "POST /loyalty/purchases/bulk": Serve(lambda a, w, s: a.post("/loyalty/purchases/bulk", {"purchases": [{
        "member_id": w["member"].pk, "channel": "offline", "order_no": f"PB-{s}", "store": s, "paid_fen": 1_000}]})),
    "POST /loyalty/purchases/import": "imports purchases at the stores named per row, each checked",
    "GET /loyalty/purchases/imports/{job_id}": "a job is seen by whoever started it and by importers of every "
                                               "store, else 404 (tests/imports/test_jobs.py)",
    "GET /loyalty/purchases/{int:purchase_id}": Refuse(lambda a, w: a.get(f"/loyalty/purchases/{w['purchase_id']}")),
    "POST /loyalty/purchases/claim": "another store's receipt is refused "
                                     "(test_a_receipt_of_another_store_cannot_be_claimed)",
    "POST /loyalty/refunds": Refuse(lambda a, w: a.post("/loyalty/refunds", {
        "channel": "offline", "order_no": "SH-1", "refund_no": "R-1"})),
    "POST /loyalty/quote": "the till's price for a basket, to serve any member (no store record read)",
    "GET /loyalty/members/{member_id}/points": Refuse(lambda a, w: a.get(f"/loyalty/members/{_sh_member(w)}/points")),
    "GET /loyalty/members/{member_id}/points/statement": Refuse(
        lambda a, w: a.get(f"/loyalty/members/{_sh_member(w)}/points/statement")),
    "GET /loyalty/members/{member_id}/points/as-of": Refuse(
        lambda a, w: a.get(f"/loyalty/members/{_sh_member(w)}/points/as-of", params={"at": "2030-01-01T00:00:00Z"})),
    "GET /loyalty/members/{member_id}/points/expiring": Refuse(
        lambda a, w: a.get(f"/loyalty/members/{_sh_member(w)}/points/expiring")),
    "GET /loyalty/members/{member_id}/points/check": Refuse(
        lambda a, w: a.get(f"/loyalty/members/{_sh_member(w)}/points/check")),
    "POST /loyalty/members/{member_id}/actions": Refuse(lambda a, w: a.post(
        f"/loyalty/members/{_sh_member(w)}/actions", {"action": "check_in", "reference": "x"})),
    "GET /loyalty/expiring": "totals only, over the caller's members",
    "POST /loyalty/redeem": Refuse(lambda a, w: a.post("/loyalty/redeem", {"member_id": w["member"].pk,
                                                                          "points": 10, "reference": "r"})),
    "POST /loyalty/holds": Refuse(lambda a, w: a.post("/loyalty/holds", {"member_id": w["member"].pk, "points": 10})),
    "POST /loyalty/holds/{hold_id}/confirm": Refuse(lambda a, w: a.post(f"/loyalty/holds/{w['hold']}/confirm")),
    "POST /loyalty/holds/{hold_id}/release": Refuse(lambda a, w: a.post(f"/loyalty/holds/{w['hold']}/release")),
    "POST /loyalty/adjustments": Refuse(lambda a, w: a.post("/loyalty/adjustments", {
        "member_id": w["member"].pk, "points": 5, "reason": "goodwill"})),
    "GET /loyalty/adjustments": Refuse(lambda a, w: _listed(a.get("/loyalty/adjustments"), w["adjustment"])),
    "POST /loyalty/adjustments/{adjustment_id}/approve": Refuse(
        lambda a, w: a.post(f"/loyalty/adjustments/{w['adjustment']}/approve", {"reason": "ok"})),
    "POST /loyalty/adjustments/{adjustment_id}/reject": Refuse(
        lambda a, w: a.post(f"/loyalty/adjustments/{w['adjustment']}/reject", {"reason": "no"})),
    "GET /loyalty/members/{member_id}/tier": Refuse(lambda a, w: a.get(f"/loyalty/members/{_sh_member(w)}/tier")),
    "GET /loyalty/members/{member_id}/tier/history": Refuse(
        lambda a, w: a.get(f"/loyalty/members/{_sh_member(w)}/tier/history")),
    "POST /loyalty/members/{member_id}/tier/override": Refuse(lambda a, w: a.post(
        f"/loyalty/members/{_sh_member(w)}/tier/override", {"tier": None, "reason": "reset"})),
    "POST /loyalty/members/{member_id}/tier/evaluate": Refuse(
        lambda a, w: a.post(f"/loyalty/members/{_sh_member(w)}/tier/evaluate")),
    "POST /loyalty/tiers/evaluate": CHAIN + " (the programme's nightly run)",
    "POST /loyalty/tiers/what-if": CHAIN + " (aggregate counts for a proposed ladder)",
    "GET /loyalty/programme": CHAIN,
    "PUT /loyalty/programme": CHAIN,
    # --- checkout
    "POST /checkout": Serve(_checkout),
    "POST /checkout/refund": Refuse(lambda a, w: a.post("/checkout/refund", {
        "channel": "offline", "order_no": "CO-SH", "refund_no": "CR-1"})),
    # --- coupons
    "POST /coupons/templates": CHAIN,
    "GET /coupons/templates": CHAIN,
    "GET /coupons/templates/{template_id}": CHAIN,
    "PATCH /coupons/templates/{template_id}": CHAIN,
    "GET /coupons/templates/{template_id}/stats": CHAIN + " (aggregate figures)",
    "POST /coupons/templates/{template_id}/issue": Refuse(lambda a, w: a.post(
        f"/coupons/templates/{w['template'].pk}/issue", {"member_id": w["member"].pk})),
    "POST /coupons/templates/{template_id}/issue-bulk": Refuse(lambda a, w: a.post(
        f"/coupons/templates/{w['template'].pk}/issue-bulk", {"member_ids": [w["member"].pk]})),
    "POST /coupons/templates/{template_id}/codes": "bearer codes are the chain's: 403 store_scope_too_narrow "
                                                   "(test_it_keeps_bearer_code_batches_from_a_scoped_caller)",
    "POST /coupons/templates/{template_id}/exchange": Refuse(lambda a, w: a.post(
        f"/coupons/templates/{w['points_template'].pk}/exchange", {"member_id": w["member"].pk})),
    "GET /coupons/batches/{batch_id}": Refuse(lambda a, w: a.get(f"/coupons/batches/{w['batch']}")),
    "GET /coupons/batches/{batch_id}/coupons": Refuse(lambda a, w: a.get(f"/coupons/batches/{w['batch']}/coupons")),
    "POST /coupons/claim": Refuse(lambda a, w: a.post("/coupons/claim", {"code": w["claim_code"],
                                                                        "member_id": w["member"].pk})),
    "POST /coupons/validate": Serve(lambda a, w, s: a.post("/coupons/validate", {
        "member_id": w["member"].pk, "codes": [w["coupon"].code], "basket": BASKET, "channel": "offline", "store": s})),
    "POST /coupons/redeem": Serve(lambda a, w, s: a.post("/coupons/redeem", {
        "member_id": w["member"].pk, "codes": [w["coupons"][s].code], "basket": BASKET, "channel": "offline",
        "store": s, "order_no": f"CR-{s}"})),
    "POST /coupons/restore": Refuse(lambda a, w: _restored(a.post("/coupons/restore", {
        "channel": "offline", "order_no": "CP-SH"}))),
    "GET /coupons": Refuse(lambda a, w: _listed(a.get("/coupons", params={"member_id": w["member"].pk}),
                                                w["coupon"].pk)),
    "GET /coupons/code/{code}": Refuse(lambda a, w: a.get(f"/coupons/code/{w['coupon'].code}")),
    "POST /coupons/{coupon_id}/revoke": Refuse(lambda a, w: a.post(f"/coupons/{w['coupon'].pk}/revoke",
                                                                   {"reason": "misissued"})),
    # --- wallet
    "GET /wallet/config": CHAIN,
    "PUT /wallet/config": CHAIN,
    "GET /wallet/topup-rules": CHAIN,
    "POST /wallet/topup-rules": CHAIN,
    "PATCH /wallet/topup-rules/{rule_id}": CHAIN,
    "POST /wallet/gift-cards": "gift cards are bearer instruments of the chain, usable in any store",
    "GET /wallet/gift-cards/{code}": "gift cards are bearer instruments of the chain, usable in any store",
    "GET /wallet/gift-cards/{code}/statement": "gift cards are bearer instruments of the chain",
    "POST /wallet/gift-cards/{code}/spend": "gift cards are bearer instruments; the store named is checked",
    "POST /wallet/gift-cards/{code}/unlock": "gift cards are bearer instruments of the chain (unlock: programme managers)",
    "POST /wallet/gift-cards/{code}/refund": "gift cards are bearer instruments of the chain",
    "GET /wallet/{member_id}": Refuse(lambda a, w: a.get(f"/wallet/{_sh_member(w)}")),
    "GET /wallet/{member_id}/statement": Refuse(lambda a, w: a.get(f"/wallet/{_sh_member(w)}/statement")),
    "GET /wallet/{member_id}/check": Refuse(lambda a, w: a.get(f"/wallet/{_sh_member(w)}/check")),
    "POST /wallet/{member_id}/topup": Serve(lambda a, w, s: a.post(f"/wallet/{_sh_member(w)}/topup", {
        "amount_fen": 1_000, "payment_ref": f"PAY-{s}", "store": s})),
    "POST /wallet/{member_id}/spend": Serve(lambda a, w, s: a.post(f"/wallet/{_sh_member(w)}/spend", {
        "amount_fen": 100, "order_no": f"WS-{s}", "store": s})),
    "POST /wallet/{member_id}/refund": Refuse(lambda a, w: a.post(f"/wallet/{_sh_member(w)}/refund", {
        "order_no": "WS-SH0", "amount_fen": 100, "refund_no": "WR-1"})),
    # --- rewards
    "POST /rewards": CHAIN,
    "GET /rewards": CHAIN,
    "PATCH /rewards/{reward_id}": CHAIN,
    "GET /rewards/orders": Refuse(lambda a, w: _listed(a.get("/rewards/orders"), w["order"])),
    "POST /rewards/orders/{order_id}/status": Refuse(lambda a, w: a.post(f"/rewards/orders/{w['order']}/status",
                                                                         {"status": "shipped"})),
    "POST /rewards/{reward_id}/exchange": Serve(lambda a, w, s: a.post(f"/rewards/{w['reward']}/exchange", {
        "member_id": w["member"].pk, "store": s})),
    # --- analytics
    "POST /analytics/runs": "health runs are limited to the caller's stores (analytics tests)",
    "GET /analytics/runs": "model runs, and the caller's own health runs",
    "GET /analytics/runs/{run_id}": "model runs, and the caller's own health runs",
    "GET /analytics/snapshots": "the caller's members only (analytics tests)",
    "GET /analytics/members/{member_id}/snapshot": "the caller's members only (404 snapshot_not_found)",
    "GET /analytics/health": "limited to the caller's stores (analytics tests)",
    "GET /analytics/export": "as snapshots and health",
    # --- the rest
    "POST /auth/login": CHAIN,
    "POST /auth/logout": CHAIN,
    "GET /auth/me": CHAIN,
    "GET /auth/apikeys": CHAIN + " (access tests)",
    "POST /auth/apikeys": CHAIN + " (access tests)",
    "POST /auth/apikeys/{prefix}/revoke": CHAIN + " (access tests)",
    "POST /auth/staff": CHAIN + " (access tests)",
    "PATCH /auth/staff/{username}": "staff accounts: grants within the caller's own stores and role (tests/access/test_grants.py)",
    "GET /stores": "lists the caller's stores only (test_store_scope.py)",
    "POST /stores": CHAIN,
    "GET /audit": "refused to a store-scoped caller (test_store_scope.py)",
    "GET /events/dead": CHAIN + " (the event outbox; events:manage, admin only: tests/core/test_outbox.py)",
    "GET /events/deliveries": CHAIN + " (the event outbox; events:manage, admin only)",
    "POST /events/dead/{delivery_id}/retry": CHAIN + " (the event outbox; events:manage, admin only)",
}


class _Listed:
    """A list answer as a response: 200 when `wanted` is among its items, else 404."""

    def __init__(self, r: Any, wanted: Any) -> None:
        items = r.json()["items"] if isinstance(r.json(), dict) else r.json()
        found = r.status_code == 200 and any(i.get("id") == wanted for i in items)
        self.status_code = 200 if found else 404
        self.content = r.content

    def json(self) -> dict[str, Any]:
        return {"code": "not_listed", "detail": {}}


def _listed(r: Any, wanted: Any) -> Any:
    return _Listed(r, wanted)


def _restored(r: Any) -> Any:
    """A restore of another store's order answers as for an order with no coupons: []."""
    return _Listed(type("R", (), {"status_code": r.status_code, "content": r.content,
                                  "json": lambda self: [{"id": 1}] if r.json()["coupons"] else []})(), 1)


def _routes() -> set[str]:
    from memberhub.api import api

    found = set()
    for prefix, router in api._routers:
        for path, view in router.path_operations.items():
            for op in view.operations:
                for method in op.methods:
                    found.add(f"{method} {(prefix + path).rstrip('/') or '/'}")
    return found


def test_every_route_is_in_the_table() -> None:
    routes = _routes()
    assert sorted(routes - set(TABLE)) == [], "a new endpoint needs a store-scope case here"
    assert sorted(set(TABLE) - routes) == []


@pytest.fixture
def world(stores: dict[str, Any], admin_api: Api) -> dict[str, Any]:
    """A member of SH with something of every kind, made by an all-store administrator."""
    system = system_principal("test")
    m = member_make(phone="13800138000", store="SH", name="上海会员")
    m2 = member_make(phone="13800138002", store="SH", name="上海会员二")
    frozen = member_make(phone="13800138003", store="SH", name="冻结")
    assert admin_api.post(f"/members/{frozen.pk}/freeze", {"reason": "test"}).status_code == 200
    for i in range(4):
        points.adjustment_request(actor=system, member_id=m.pk, points=1_000, reason=f"seed {i}")
    adjustment = points.adjustment_request(actor=system, member_id=m.pk, points=5_000, reason="pending")
    hold = points.hold_create(actor=system, member_id=m.pk, points=100)
    r = admin_api.post("/loyalty/purchases", {"member_id": m.pk, "channel": "offline", "order_no": "SH-1",
                                              "store": "SH", "paid_fen": 10_000})
    assert r.status_code == 201, r.content
    anon = admin_api.post("/loyalty/purchases", {"channel": "offline", "order_no": "ANON-SH", "store": "SH",
                                                 "paid_fen": 1_000})
    assert anon.status_code == 201, anon.content
    assert admin_api.post(f"/wallet/{m.pk}/topup", {"amount_fen": 10_000, "payment_ref": "T1",
                                                    "store": "SH"}).status_code == 201
    assert admin_api.post(f"/wallet/{m.pk}/spend", {"amount_fen": 100, "order_no": "WS-SH0",
                                                    "store": "SH"}).status_code == 200
    template = template_make(store_codes=[])
    coupon = coupon_make(template, m.pk)
    used = coupon_make(template, m.pk)
    coupons = {code: coupon_make(template, m.pk) for code in ("SH", "BJ")}
    assert admin_api.post("/coupons/redeem", {"member_id": m.pk, "codes": [used.code], "basket": BASKET, "channel": "offline",
                                              "store": "SH", "order_no": "CP-SH"}).status_code == 200
    points_template = template_make(name="积分券", points_price=10)
    claim_template = template_make(name="领券", claim_code="SHCLAIM1")
    co = admin_api.post("/checkout", {"channel": "offline", "order_no": "CO-SH", "store": "SH", "member_id": m.pk,
                                      "lines": LINES})
    assert co.status_code == 201, co.content
    batch = batch_create(actor=system, template_id=template.pk, kind=IssueBatch.Kind.MEMBERS, member_ids=[m.pk])
    reward = admin_api.post("/rewards", {"name": "帆布袋", "points_price": 10, "stock_left": 10}).json()
    order = admin_api.post(f"/rewards/{reward['id']}/exchange", {"member_id": m.pk, "store": "SH"})
    assert order.status_code == 201, order.content
    return {"member": m, "member2": m2, "frozen": frozen, "adjustment": adjustment.pk, "hold": hold.pk,
            "purchase_id": r.json()["id"], "template": template, "coupon": coupon, "coupons": coupons,
            "points_template": points_template, "claim_code": claim_template.claim_code, "batch": batch.pk,
            "reward": reward["id"], "order": order.json()["id"]}


@pytest.fixture
def callers(make_key: Callable[..., str]) -> dict[str, Api]:
    return {code: Api(Client(), make_key(None, [code])) for code in ("SH", "BJ")}


def _refused(r: Any) -> None:
    assert r.status_code in (403, 404), (r.status_code, r.content[:300])
    assert "member_id" not in r.json().get("detail", {}), r.content[:300]


def _ok(r: Any) -> None:
    assert 200 <= r.status_code < 300, (r.status_code, r.content[:300])


CASES = sorted(k for k, v in TABLE.items() if not isinstance(v, str))


@pytest.mark.parametrize("route", CASES)
def test_a_caller_of_another_store_is_refused_and_its_own_store_served(
    route: str, world: dict[str, Any], callers: dict[str, Api]
) -> None:
    case = TABLE[route]
    if isinstance(case, Refuse):
        _refused(case.call(callers["BJ"], world))  # first: a refusal must change nothing
        _ok(case.call(callers["SH"], world))
    else:
        assert isinstance(case, Serve)
        r = case.call(callers["BJ"], world, "SH")  # naming a store not its own
        assert r.status_code == 403 and r.json()["code"] == "store_out_of_scope", (r.status_code, r.content[:300])
        _ok(case.call(callers["BJ"], world, "BJ"))  # SH's member served at BJ
        _ok(case.call(callers["SH"], world, "SH"))


def test_a_refused_revoke_changes_nothing(world: dict[str, Any], callers: dict[str, Api]) -> None:
    """It used to revoke the coupon, commit, and then answer 500."""
    coupon = world["coupon"]
    _refused(callers["BJ"].post(f"/coupons/{coupon.pk}/revoke", {"reason": "x"}))
    coupon.refresh_from_db()
    assert coupon.status == "available"


def test_it_keeps_bearer_code_batches_from_a_scoped_caller(
    world: dict[str, Any], callers: dict[str, Api], admin_api: Api
) -> None:
    r = callers["SH"].post(f"/coupons/templates/{world['template'].pk}/codes", {"count": 5, "prefix": "SC"})
    assert r.status_code == 403 and r.json()["code"] == "store_scope_too_narrow"
    made = admin_api.post(f"/coupons/templates/{world['template'].pk}/codes", {"count": 5, "prefix": "SC"})
    assert made.status_code == 202, made.content
    for api in callers.values():
        assert api.get(f"/coupons/batches/{made.json()['id']}/coupons").status_code == 404
    assert admin_api.get(f"/coupons/batches/{made.json()['id']}/coupons").status_code == 200


def test_a_registration_conflict_names_the_member_only_in_scope(
    world: dict[str, Any], callers: dict[str, Api]
) -> None:
    theirs = callers["BJ"].post("/members", {"phone": "13800138000", "home_store": "BJ"})
    assert theirs.status_code == 409 and theirs.json()["code"] == "member_phone_taken"
    assert theirs.json()["detail"] == {}
    ours = callers["SH"].post("/members", {"phone": "13800138000", "home_store": "SH"})
    assert ours.status_code == 409 and ours.json()["detail"]["member_id"] == world["member"].pk


def test_a_checkout_replay_tells_another_store_nothing(world: dict[str, Any], callers: dict[str, Api]) -> None:
    body = {"channel": "offline", "order_no": "CO-SH", "store": "SH", "member_id": world["member"].pk,
            "lines": LINES}
    assert callers["SH"].post("/checkout", body).json()["replayed"] is True
    for again in (body, {**body, "store": "BJ"}, {**body, "store": "BJ", "member_id": None}):
        r = callers["BJ"].post("/checkout", again)
        assert r.status_code in (403, 409), r.content
        assert str(world["member"].pk) not in json.dumps(r.json()["detail"])
        assert "member_id" not in r.json() and "purchase_id" not in r.json()


def test_a_member_of_another_store_is_found_masked_to_be_served(
    world: dict[str, Any], callers: dict[str, Api]
) -> None:
    """By phone or card (what the member presents): masked even for a key with pii:read."""
    for key in ("13800138000", world["member"].card_code):
        r = callers["BJ"].get("/members/lookup", params={"key": key})
        assert r.status_code == 200, r.content
        assert r.json()["pii_masked"] is True and r.json()["phone"] == "138****8000"
    mine = callers["SH"].get("/members/lookup", params={"key": "13800138000"}).json()
    assert mine["pii_masked"] is False and mine["phone"] == "+8613800138000"


def test_a_visiting_members_checkout_is_a_record_of_the_serving_store(
    world: dict[str, Any], callers: dict[str, Api]
) -> None:
    r = _checkout(callers["BJ"], world, "BJ")
    assert r.status_code == 201 and r.json()["store"] == "BJ", r.content
    # BJ refunds its own sale of SH's member; SH cannot refund BJ's sale
    _refused(callers["SH"].post("/checkout/refund", {"channel": "offline", "order_no": "SV-BJ", "refund_no": "X"}))
    _ok(callers["BJ"].post("/checkout/refund", {"channel": "offline", "order_no": "SV-BJ", "refund_no": "X"}))


def test_a_receipt_of_another_store_cannot_be_claimed(world: dict[str, Any], stores: dict[str, Any]) -> None:
    def cashier(code: str) -> Principal:
        return Principal(kind="staff", id=None, label=f"cashier-{code}", caps=ROLE_CAPS[Role.CASHIER],
                         store_ids=frozenset({stores[code].pk}))

    claim = {"channel": "offline", "order_no": "ANON-SH", "paid_fen": 1_000, "member_id": world["member"].pk}
    with pytest.raises(NotFound):
        purchase_claim(actor=cashier("BJ"), **claim)
    assert purchase_claim(actor=cashier("SH"), **claim).purchase.member_id == world["member"].pk



def test_a_purchase_without_a_store_is_its_members_stores(
    world: dict[str, Any], callers: dict[str, Api], admin_api: Api
) -> None:
    """An online order has no store: it is the member's home store's record, not everyone's."""
    r = admin_api.post("/loyalty/purchases", {"member_id": world["member"].pk, "channel": "online",
                                              "order_no": "WEB-1", "paid_fen": 1_000})
    assert r.status_code == 201, r.content
    assert callers["BJ"].get(f"/loyalty/purchases/{r.json()['id']}").status_code == 404
    assert callers["SH"].get(f"/loyalty/purchases/{r.json()['id']}").status_code == 200


def test_a_purchase_replay_tells_another_store_nothing(world: dict[str, Any], callers: dict[str, Api]) -> None:
    body = {"member_id": world["member"].pk, "channel": "offline", "order_no": "SH-1", "paid_fen": 10_000}
    r = callers["BJ"].post("/loyalty/purchases", {**body, "store": "BJ"})
    assert r.status_code == 409 and r.json()["code"] == "order_exists" and r.json()["detail"] == {}, r.content
    r = callers["BJ"].post("/loyalty/purchases", {**body, "store": "BJ", "paid_fen": 1})
    assert r.status_code == 409 and r.json()["detail"] == {}, r.content
    again = callers["SH"].post("/loyalty/purchases", {**body, "store": "SH"})
    assert again.status_code == 200 and again.json()["replayed"] is True
