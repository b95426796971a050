"""The numbers and times of the API contract: every amount and points field is a JSON integer
within a ceiling, purchase times lie between the programme's start and now (plus a small
clock skew), extreme times answer 422, and validation errors speak the caller's language at
the place in what the caller sent."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from tests.coupons.factories import basket, coupon_make, template_make
from tests.members.factories import member_make

pytestmark = pytest.mark.django_db

HUGE = 9 * 10**18


@pytest.fixture
def member(stores: Any) -> Any:
    return member_make()


def _errors(r: Any) -> list[dict[str, Any]]:
    assert r.status_code == 422, r.content
    return r.json()["detail"]["errors"]


def test_an_amount_above_the_ceiling_is_refused(admin_api: Any, member: Any) -> None:
    r = admin_api.post("/loyalty/purchases", {"member_id": member.pk, "channel": "offline", "order_no": "HUGE",
                                              "store": "SH", "paid_fen": HUGE})
    [error] = _errors(r)
    assert (error["loc"], error["in"], error["type"]) == (["paid_fen"], "body", "less_than_equal")
    assert admin_api.get(f"/loyalty/members/{member.pk}/points").json()["balance"] == 0
    ceiling = settings.MAX_AMOUNT_FEN
    ok = admin_api.post("/loyalty/purchases", {"member_id": member.pk, "channel": "offline", "order_no": "MAX",
                                               "store": "SH", "paid_fen": ceiling})
    assert ok.status_code == 201, ok.content
    for path, body in (
        ("/checkout", {"member_id": member.pk, "channel": "offline", "store": "SH", "order_no": "C1",
                       "lines": [{"line_id": "1", "sku": "A", "qty": 1, "unit_price_fen": HUGE}]}),
        ("/coupons/validate", {"member_id": member.pk, "codes": [], "channel": "offline", "store": "SH",
                               "basket": basket(("L1", "A", HUGE, 1))}),
        ("/loyalty/redeem", {"member_id": member.pk, "points": HUGE}),
        ("/loyalty/holds", {"member_id": member.pk, "points": 100, "order_fen": HUGE}),
        ("/loyalty/adjustments", {"member_id": member.pk, "points": -HUGE, "reason": "typo"}),
        (f"/wallet/{member.pk}/topup", {"amount_fen": HUGE, "payment_ref": "P1"}),
        ("/loyalty/refunds", {"channel": "offline", "order_no": "MAX", "refund_no": "R1", "lines": {"1": HUGE}}),
    ):
        assert {e["type"] for e in _errors(admin_api.post(path, body))} <= {"less_than_equal", "greater_than_equal"}, path


def test_a_ceiling_in_the_programme_document(admin_api: Any) -> None:
    config = admin_api.get("/loyalty/programme").json()["config"]
    config["benefits"]["gold"]["birthday_points"] = HUGE
    r = admin_api._call("put", "/loyalty/programme", {"config": config, "reason": "typo"})
    assert [e["loc"] for e in _errors(r)] == [["config", "benefits", "gold", "birthday_points"]]


@pytest.mark.parametrize("value", [True, "10", 10.5, "1e3"])
def test_numbers_are_json_integers(admin_api: Any, member: Any, value: Any) -> None:
    r = admin_api.post("/loyalty/purchases", {"member_id": member.pk, "channel": "offline", "order_no": "S1",
                                              "store": "SH", "paid_fen": value})
    assert [e["loc"] for e in _errors(r)] == [["paid_fen"]]
    r = admin_api.post("/loyalty/redeem", {"member_id": member.pk, "points": value})
    assert [e["loc"] for e in _errors(r)] == [["points"]]


def _buy(api: Any, member: Any, order_no: str, at: str) -> Any:
    return api.post("/loyalty/purchases", {"member_id": member.pk, "channel": "offline", "order_no": order_no,
                                           "store": "SH", "paid_fen": 1000, "at": at})


def test_a_purchase_time_lies_between_the_programme_start_and_now(admin_api: Any, member: Any) -> None:
    r = _buy(admin_api, member, "OLD", "1989-12-31T12:00:00+08:00")
    assert (r.status_code, r.json()["code"]) == (422, "purchase_before_start"), r.content
    assert _buy(admin_api, member, "FIRST-DAY", "1990-01-01T00:00:00+08:00").status_code == 201
    skew = timedelta(seconds=settings.PURCHASE_CLOCK_SKEW_SECONDS)
    soon = (timezone.now() + skew - timedelta(seconds=30)).isoformat()
    assert _buy(admin_api, member, "SKEWED", soon).status_code == 201
    later = (timezone.now() + skew + timedelta(seconds=60)).isoformat()
    r = _buy(admin_api, member, "FUTURE", later)
    assert (r.status_code, r.json()["code"]) == (422, "purchase_in_future")


def test_the_programme_document_sets_its_start(admin_api: Any, member: Any) -> None:
    config = admin_api.get("/loyalty/programme").json()["config"]
    config["starts_on"] = "2020-06-01"
    r = admin_api._call("put", "/loyalty/programme", {"config": config, "reason": "launch"})
    assert r.status_code == 200, r.content
    assert _buy(admin_api, member, "BEFORE", "2020-05-31T23:59:00+08:00").json()["code"] == "purchase_before_start"
    assert _buy(admin_api, member, "AFTER", "2020-06-01T00:00:00+08:00").status_code == 201


def test_an_overflowing_sum_is_no_retry(admin_api: Any, member: Any) -> None:
    """Two purchases recorded before the ceiling existed, of 5×10¹⁸ fen each: their sum passes
    64 bits. Every later purchase of the member answered 503 "try again" for ever on SQLite
    (the tier's spend is summed in SQL); it is a 422 now, which says trying again will not
    help (PostgreSQL sums into numeric and records the purchase)."""
    from memberhub.loyalty.models import Purchase

    for n in (1, 2):
        Purchase.objects.create(member_id=member.pk, channel="offline", order_no=f"LEGACY-{n}", at=timezone.now(),
                                total_fen=5 * 10**18, paid_fen=5 * 10**18)
    r = admin_api.post("/loyalty/purchases", {"member_id": member.pk, "channel": "offline", "order_no": "NEXT",
                                              "store": "SH", "paid_fen": 100})
    assert r.status_code in (201, 422), r.content
    if r.status_code == 422:
        assert r.json()["code"] == "value_out_of_range"


EXTREMES = ["0001-01-01T00:00:00+08:00", "0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59-08:00", "9999-12-31T23:59:59-12:00", "9999-12-31T23:59:59Z"]


@pytest.mark.parametrize("at", EXTREMES)
def test_extreme_times_answer_422(admin_api: Any, member: Any, at: str) -> None:
    bodies = [
        ("/loyalty/purchases", {"member_id": member.pk, "channel": "offline", "order_no": "X", "store": "SH",
                                "paid_fen": 100, "at": at}),
        ("/checkout", {"member_id": member.pk, "channel": "offline", "store": "SH", "order_no": "X", "at": at,
                       "lines": [{"line_id": "1", "sku": "A", "qty": 1, "unit_price_fen": 100}]}),
        ("/loyalty/refunds", {"channel": "offline", "order_no": "X", "refund_no": "R", "at": at}),
        (f"/loyalty/members/{member.pk}/actions", {"action": "check_in", "at": at}),
        ("/loyalty/tiers/what-if", {"config": {}, "at": at}),
        ("/coupons/templates", {"name": "t", "kind": "amount_off", "amount_off_fen": 100, "validity_kind": "fixed",
                                "valid_from": at, "valid_until": at}),
    ]
    for path, body in bodies:
        types = {e["type"] for e in _errors(admin_api.post(path, body))}
        assert "datetime_out_of_range" in types, (path, types)
    for path, params in (
        (f"/loyalty/members/{member.pk}/points/as-of", {"at": at}),
        (f"/loyalty/members/{member.pk}/points/statement", {"at_from": at}),
        ("/loyalty/expiring", {"until": at}),
        (f"/wallet/{member.pk}", {"as_of": at}),
        (f"/wallet/{member.pk}/statement", {"date_from": at}),
        ("/members", {"registered_from": at}),
        ("/audit", {"since": at}),
    ):
        [error] = _errors(admin_api.get(path, params=params))
        assert (error["in"], error["type"]) == ("query", "datetime_out_of_range"), path


def test_validation_errors_speak_the_callers_language(admin_api: Any, member: Any) -> None:
    body = {"member_id": member.pk, "channel": "offline", "order_no": "L", "store": "SH", "paid_fen": 100,
            "lines": [{"paid_fen": 100, "qty": -1}]}
    [error] = _errors(admin_api.post("/loyalty/purchases", body))
    assert (error["loc"], error["in"], error["type"]) == (["lines", 0, "qty"], "body", "greater_than_equal")
    assert error["msg"] == "不能小于 0。"
    [error] = _errors(admin_api.post("/loyalty/purchases", body, headers={"Accept-Language": "en"}))
    assert error["msg"] == "Must be at least 0."
    [error] = _errors(admin_api.get("/loyalty/members/x/points"))
    assert (error["loc"], error["in"], error["type"]) == (["member_id"], "path", "int_parsing")


def test_a_coupon_basket_speaks_the_programmes_units(admin_api: Any, member: Any) -> None:
    """A line's quantity is `qty` and a tier discount is ‰ of the price paid (8折 = 800), as in
    purchases, checkout and the programme's benefits."""
    coupon = coupon_make(template_make(), member.pk)
    b = basket(("L1", "SKU-A", 6000, 2), tier_permille=800)
    r = admin_api.post("/coupons/validate", {"member_id": member.pk, "codes": [coupon.code], "basket": b,
                                             "channel": "offline", "store": "SH"})
    assert r.status_code == 200, r.content
    assert (r.json()["goods_gross_fen"], r.json()["tier_discount_fen"]) == (12000, 2400)
    b["lines"][0]["quantity"] = b["lines"][0].pop("qty")
    assert _errors(admin_api.post("/coupons/validate", {"member_id": member.pk, "codes": [], "basket": b,
                                                         "channel": "offline", "store": "SH"}))
