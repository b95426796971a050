"""Templates through the API: create, validate, change once issued, permissions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from memberhub.audit.models import AuditEntry
from tests.coupons.factories import coupon_make, template_make
from tests.members.factories import member_make

pytestmark = pytest.mark.django_db

FULL = {"name": "满100减20", "kind": "amount_off", "amount_off_fen": 2000, "min_spend_fen": 10000,
        "validity_kind": "relative", "valid_days": 7, "store_codes": ["SH"], "channels": ["offline"],
        "exclude_categories": ["特价"], "per_member_limit": 2, "total_quantity": 1000}


def test_it_creates_a_template_and_audits_it(admin_api: Any) -> None:
    r = admin_api.post("/coupons/templates", FULL)
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["kind"] == "amount_off" and body["store_codes"] == ["SH"] and body["issued_count"] == 0
    assert AuditEntry.objects.filter(action="coupon_template.create", target_id=str(body["id"])).exists()
    assert admin_api.get(f"/coupons/templates/{body['id']}").json()["name"] == "满100减20"
    assert [t["id"] for t in admin_api.get("/coupons/templates").json()["items"]] == [body["id"]]


@pytest.mark.parametrize(("change", "code"), [
    ({"amount_off_fen": 0}, "coupon_template_invalid"),
    ({"kind": "free_item"}, "coupon_template_invalid"),  # needs a sku
    ({"validity_kind": "fixed"}, "validity_incomplete"),
    ({"store_codes": ["NOPE"]}, "store_not_found"),
    ({"issue_rules": [{"event": "nope"}]}, "invalid_issue_rule"),
    ({"percent_off_bp": 20000}, "validation_error"),
    ({"surprise": 1}, "validation_error"),
])
def test_it_refuses_an_inconsistent_template(admin_api: Any, change: dict[str, Any], code: str) -> None:
    r = admin_api.post("/coupons/templates", {**FULL, **change})
    assert r.status_code == 422, r.content
    assert r.json()["code"] == code


def test_it_refuses_fixed_dates_in_the_wrong_order(admin_api: Any) -> None:
    now = timezone.now()
    r = admin_api.post("/coupons/templates", {**FULL, "validity_kind": "fixed", "valid_from": now.isoformat(),
                                              "valid_until": (now - timedelta(days=1)).isoformat()})
    assert r.status_code == 422 and r.json()["code"] == "coupon_template_invalid"


def test_it_locks_the_promise_once_coupons_exist(admin_api: Any, stores: Any) -> None:
    t = template_make()
    coupon_make(t, member_make().pk)
    r = admin_api.patch(f"/coupons/templates/{t.pk}", {"name": "新名字", "total_quantity": 10})
    assert r.status_code == 200, r.content
    assert r.json()["name"] == "新名字"
    assert admin_api.patch(f"/coupons/templates/{t.pk}", {"total_quantity": 0}).json()["code"] == "quantity_below_issued"
    assert admin_api.patch(f"/coupons/templates/{t.pk}", {"amount_off_fen": 1}).status_code == 422  # not patchable


def test_a_claim_code_belongs_to_one_template(admin_api: Any) -> None:
    assert admin_api.post("/coupons/templates", {**FULL, "claim_code": "double-11"}).status_code == 201
    r = admin_api.post("/coupons/templates", {**FULL, "claim_code": "DOUBLE11"})
    assert r.status_code == 409 and r.json()["code"] == "claim_code_taken"


def test_only_marketing_and_admin_manage_templates(staff_api: Any) -> None:
    assert staff_api("cashier", ["SH"]).post("/coupons/templates", FULL).status_code == 403
    assert staff_api("marketing").post("/coupons/templates", FULL).status_code == 201
    assert staff_api("analyst").get("/coupons/templates").status_code == 200


def test_an_unknown_template_is_404(admin_api: Any) -> None:
    assert admin_api.get("/coupons/templates/999").json()["code"] == "coupon_template_not_found"
    assert admin_api.get("/coupons/templates/999/stats").status_code == 404
