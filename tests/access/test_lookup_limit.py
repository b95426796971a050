"""Lookups by phone or email: audited, and a budget of misses for callers who see them masked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import override_settings

from memberhub.audit.models import AuditEntry
from tests.conftest import Api
from tests.members.factories import member_make

pytestmark = pytest.mark.django_db

LIMIT = 5


@pytest.fixture
def member(stores: Any) -> Any:
    return member_make(phone="13800138000", store="SH", name="上海会员", email="wang@example.com")


def _guesses(n: int) -> list[str]:
    return [f"1380013{i:04d}" for i in range(1, n + 1)]  # never 13800138000


@override_settings(LOOKUP_MISS_LIMIT=LIMIT, LOOKUP_MISS_WINDOW_SECONDS=600)
def test_a_burst_of_misses_is_stopped_with_retry_after(staff_api: Callable[..., Api], member: Any) -> None:
    cashier = staff_api("cashier", ["SH"])
    for guess in _guesses(LIMIT):
        assert cashier.get("/members/lookup", params={"key": guess}).status_code == 404
    r = cashier.get("/members/lookup", params={"key": "13800138000"})  # even the right number now
    assert r.status_code == 429 and r.json()["code"] == "lookup_rate_limited"
    assert 1 <= int(r["Retry-After"]) <= 600
    listed = cashier.get("/members", params={"phone": "13800138000"})
    assert listed.status_code == 429 and listed.has_header("Retry-After")
    # the till's other ways to name a member by phone are under the same budget
    checkout = {"channel": "offline", "order_no": "X-1", "store": "SH", "member": "13800138000",
                "lines": [{"line_id": "1", "sku": "A", "unit_price_fen": 100}]}
    assert cashier.post("/checkout", checkout).status_code == 429
    # a card code is not a guess at a phone: still served
    assert cashier.get("/members/lookup", params={"key": member.card_code}).status_code == 200


@override_settings(LOOKUP_MISS_LIMIT=LIMIT, LOOKUP_MISS_WINDOW_SECONDS=600)
def test_the_tills_normal_use_is_not_limited(staff_api: Callable[..., Api], member: Any) -> None:
    cashier = staff_api("cashier", ["SH"])
    for _ in range(LIMIT * 4):  # hits cost nothing
        assert cashier.get("/members/lookup", params={"key": "138 0013 8000"}).status_code == 200
    for guess in _guesses(LIMIT - 1):  # a few mistyped numbers
        assert cashier.get("/members/lookup", params={"key": guess}).status_code == 404
    assert cashier.get("/members/lookup", params={"key": "13800138000"}).status_code == 200


@override_settings(LOOKUP_MISS_LIMIT=LIMIT, LOOKUP_MISS_WINDOW_SECONDS=600)
def test_the_budget_is_per_caller_and_spares_who_may_read_phones(
    staff_api: Callable[..., Api], make_key: Callable[..., str], client: Any, member: Any
) -> None:
    analyst = staff_api("analyst")
    for guess in _guesses(LIMIT):
        analyst.get("/members", params={"phone": guess})
    assert analyst.get("/members", params={"phone": "13800138000"}).status_code == 429
    marketing = staff_api("marketing")
    assert marketing.get("/members", params={"phone": "13800138000"}).json()["items"][0]["id"] == member.pk
    service = staff_api("service")  # pii:read: sees phones whole anyway
    for guess in _guesses(LIMIT + 2):
        assert service.get("/members/lookup", params={"key": guess}).status_code == 404
    assert service.get("/members/lookup", params={"key": "13800138000"}).status_code == 200


@override_settings(LOOKUP_MISS_LIMIT=LIMIT, LOOKUP_MISS_WINDOW_SECONDS=600)
def test_a_miss_by_a_member_key_at_the_till_counts(staff_api: Callable[..., Api], member: Any) -> None:
    cashier = staff_api("cashier", ["SH"])
    for i, guess in enumerate(_guesses(LIMIT)):
        r = cashier.post("/loyalty/purchases", {"member": guess, "channel": "offline", "order_no": f"G-{i}",
                                                "store": "SH", "paid_fen": 100})
        assert r.status_code == 404 and r.json()["code"] == "member_not_found"
    assert cashier.get("/members/lookup", params={"key": "13800138000"}).status_code == 429


def test_every_lookup_by_phone_or_email_is_audited(staff_api: Callable[..., Api], member: Any) -> None:
    cashier = staff_api("cashier", ["SH"])
    assert cashier.get("/members/lookup", params={"key": "13800138000"}).status_code == 200
    assert cashier.get("/members/lookup", params={"key": "13900139000"}).status_code == 404
    assert cashier.get("/members/lookup", params={"key": "wang@example.com"}).status_code == 404  # not a lookup key
    rows = list(AuditEntry.objects.filter(action="member.lookup").order_by("pk"))
    assert [(e.actor_label, e.after["by"], e.after["key"], e.after["found"]) for e in rows] == [
        ("cashier-SH", "phone", "138****8000", True),
        ("cashier-SH", "phone", "139****9000", False),
        ("cashier-SH", "email", "wa***@example.com", False),
    ]
    assert rows[0].target_id == str(member.pk) and rows[1].target_id == ""
    assert "13900139000" not in str([e.after for e in rows])  # never the number in the clear


@override_settings(LOOKUP_MISS_LIMIT=LIMIT, LOOKUP_MISS_WINDOW_SECONDS=600)
def test_misses_in_a_bulk_upload_count_though_each_item_is_rolled_back(
    staff_api: Callable[..., Api], member: Any
) -> None:
    cashier = staff_api("cashier", ["SH"])
    items = [{"member": guess, "channel": "offline", "order_no": f"B-{i}", "store": "SH", "paid_fen": 100}
             for i, guess in enumerate(_guesses(LIMIT + 3))]
    r = cashier.post("/loyalty/purchases/bulk", {"purchases": items})
    assert r.status_code == 200, r.content
    codes = [i["code"] for i in r.json()["items"]]
    assert codes == ["member_not_found"] * LIMIT + ["lookup_rate_limited"] * 3
    assert cashier.get("/members/lookup", params={"key": "13800138000"}).status_code == 429
