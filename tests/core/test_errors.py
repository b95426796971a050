"""One error envelope everywhere: {code, message, detail}."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import OperationalError
from django.test import Client

from tests.conftest import Api, database_held

pytestmark = pytest.mark.django_db


def _envelope(r: Any) -> dict[str, Any]:
    assert r["Content-Type"].startswith("application/json"), r.content[:200]
    body = r.json()
    assert set(body) == {"code", "message", "detail", "request_id"} and body["message"]
    assert body["request_id"] == r["X-Request-ID"]
    return body


@pytest.mark.parametrize("path", ["/nope", "/members/1/nope", "/members/1/freeze/extra", "/v2/members"])
def test_it_answers_an_unknown_route_with_the_envelope(admin_api: Api, path: str) -> None:
    r = admin_api.get(path)
    assert r.status_code == 404
    assert _envelope(r)["code"] == "not_found"


def test_it_answers_an_unknown_route_without_credentials_with_the_envelope() -> None:
    r = Client().post("/api/v1/nope", {}, content_type="application/json")
    assert r.status_code == 404 and _envelope(r)["code"] == "not_found"


def test_it_answers_an_unknown_route_under_another_api_version() -> None:
    r = Client().get("/api/v9/members")
    assert r.status_code == 404 and _envelope(r)["code"] == "not_found"


def test_it_answers_wrong_types_with_the_fields_at_fault(admin_api: Api, stores: Any) -> None:
    r = admin_api.post("/members", {"phone": "13800138000", "birthday": "not-a-date", "consents": "sms"})
    assert r.status_code == 422
    body = _envelope(r)
    assert body["code"] == "validation_error"
    fields = {e["loc"][-1] for e in body["detail"]["errors"]}
    assert fields == {"birthday", "consents"}
    assert all(e["msg"] and e["type"] for e in body["detail"]["errors"])


def test_it_answers_a_wrong_path_type_with_the_envelope(admin_api: Api) -> None:
    r = admin_api.get("/members/abc")
    assert r.status_code == 422
    [error] = _envelope(r)["detail"]["errors"]
    assert (error["loc"], error["in"]) == (["member_id"], "path")


def test_it_answers_a_wrong_query_type_with_the_envelope(admin_api: Api) -> None:
    r = admin_api.get("/members", params={"birth_month": "May"})
    assert r.status_code == 422 and _envelope(r)["code"] == "validation_error"


def test_it_answers_a_missing_field_with_the_envelope(admin_api: Api) -> None:
    r = admin_api.post("/members", {"name": "无电话"})
    assert r.status_code == 422
    assert [e["loc"][-1] for e in _envelope(r)["detail"]["errors"]] == ["phone"]


def test_it_answers_malformed_json_with_400(admin_api: Api) -> None:
    r = admin_api.post("/members", "{oops")
    assert r.status_code == 400 and _envelope(r)["code"] == "malformed_json"


def test_it_answers_a_non_object_body_with_422(admin_api: Api) -> None:
    r = admin_api.post("/members", "[1, 2]")
    assert r.status_code == 422 and _envelope(r)["code"] == "validation_error"


def test_it_answers_401_with_the_envelope() -> None:
    r = Client().get("/api/v1/members")
    assert r.status_code == 401 and _envelope(r)["code"] == "not_authenticated"


def test_it_answers_in_english_on_request(admin_api: Api) -> None:
    r = admin_api.get("/members/424242", headers={"Accept-Language": "en"})
    assert _envelope(r)["message"] == "No such member."


def test_it_serves_the_openapi_schema(admin_api: Api) -> None:
    r = Client().get("/api/v1/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    assert "/api/v1/members" in paths and "/api/v1/members/{member_id}/erase" in paths


@pytest.mark.django_db
def test_it_answers_a_wrong_method_with_the_envelope(admin_api: Any) -> None:
    r = admin_api._call("delete", "/members")
    assert r.status_code == 405
    assert r.json()["code"] == "method_not_allowed"
    assert "GET" in r["Allow"]


@pytest.mark.django_db(transaction=True)
def test_an_earn_the_database_cannot_take_in_time_answers_503_and_can_be_sent_again(
        admin_api: Api, stores: Any) -> None:
    from memberhub.loyalty.models import PointsAccount, Purchase

    member = admin_api.post("/members", {"phone": "13800138111"}).json()

    def earn(order_no: str) -> Any:
        return admin_api.post("/loyalty/purchases", {
            "member_id": member["id"], "channel": "offline", "order_no": order_no, "store": "SH", "paid_fen": 10_000,
            "lines": [{"sku": "A", "category": "food", "paid_fen": 10_000}]})

    assert earn("BUSY-1").status_code == 201
    before = PointsAccount.objects.get(member_id=member["id"]).balance
    with database_held(f"SELECT id FROM {PointsAccount._meta.db_table} WHERE member_id = %s FOR UPDATE",
                       [member["id"]]):
        r = earn("BUSY-2")
    assert r.status_code == 503 and r["Retry-After"] == "1"
    assert _envelope(r)["code"] == "database_unavailable"
    assert not Purchase.objects.filter(order_no="BUSY-2").exists()  # rolled back whole
    again = earn("BUSY-2")
    assert again.status_code == 201
    assert earn("BUSY-2").status_code == 200  # and once only
    assert PointsAccount.objects.get(member_id=member["id"]).balance == before + again.json()["points"] > before


@pytest.mark.parametrize(("exc", "status", "text"), [
    (OperationalError("database is locked"), 503, "数据库繁忙或暂不可用"),
    (ValueError("a bug"), 500, "内部错误"),
])
def test_an_error_outside_any_view_is_answered_by_its_kind(exc: Exception, status: int, text: str) -> None:
    """Django's handler500 (an exception raised in a middleware): the envelope under /api/, a
    page elsewhere; a database that is down or busy is 503 with Retry-After."""
    from django.test import RequestFactory

    from memberhub.core.http import server_error

    for path in ("/api/v1/members", "/admin/"):
        try:
            raise exc
        except Exception:
            r = server_error(RequestFactory().post(path))
        assert r.status_code == status and (r.get("Retry-After") == "1") == (status == 503)
        if path.startswith("/api/"):
            assert r["Content-Type"].startswith("application/json")
            body = json.loads(r.content)
            assert body["code"] == ("database_unavailable" if status == 503 else "internal_error")
            assert text in body["message"]
        else:
            assert r["Content-Type"].startswith("text/html") and text in r.content.decode()


@pytest.mark.parametrize("path", [
    "/coupons/code/AB%00C", "/wallet/gift-cards/AB%00C", "/coupons?status=%00", "/audit?action=%00",
    "/members?store=%00", "/members?q=a%00b", "/analytics/snapshots?segment=%00",
])
def test_a_nul_in_the_path_or_query_is_refused_with_400(admin_api: Api, stores: Any, path: str) -> None:
    """PostgreSQL's text cannot hold U+0000: these lookups answered 500 there. Refused alike on
    every database."""
    r = admin_api.get(path)
    assert r.status_code == 400 and _envelope(r)["code"] == "invalid_characters"


@pytest.mark.parametrize("body", [
    {"channel": "offline", "order_no": "N\u0000-1", "store": "SH", "paid_fen": 100},
    {"channel": "offline", "order_no": "N-2", "store": "SH", "paid_fen": 100,
     "lines": [{"sku": "A\u0000", "category": "food", "paid_fen": 100}]},
])
def test_a_nul_in_a_json_body_is_refused_with_400(admin_api: Api, stores: Any, body: dict[str, Any]) -> None:
    from memberhub.loyalty.models import Purchase

    for raw in (json.dumps(body).encode(), json.dumps(body).encode("utf-16")):  # escaped, and raw in UTF-16
        r = admin_api.post("/loyalty/purchases", raw)
        assert r.status_code == 400 and _envelope(r)["code"] == "invalid_characters"
    assert not Purchase.objects.exists()
    # a backslash followed by "u0000" is text, not a NUL
    ok = admin_api.post("/loyalty/purchases", {**body, "order_no": "N-\\u0000", "lines": []})
    assert ok.status_code == 201 and ok.json()["order_no"] == "N-\\u0000"


def test_a_nul_outside_the_api_is_a_plain_400(client: Client) -> None:
    r = client.get("/admin/?q=%00")
    assert r.status_code == 400 and "U+0000" in r.content.decode()


def test_a_number_the_database_cannot_hold_is_422_and_writes_nothing(admin_api: Api, stores: Any) -> None:
    """Beyond 64 bits: SQLite's driver raised OverflowError and PostgreSQL a DataError, both 500."""
    from memberhub.loyalty.models import Purchase

    big = 10**20
    r = admin_api.post("/loyalty/purchases", {"channel": "offline", "order_no": "BIG-1", "store": "SH", "paid_fen": big})
    assert r.status_code == 422 and _envelope(r)["code"] == "validation_error"  # above the ceiling
    assert not Purchase.objects.exists()
    for path, body in (("/loyalty/purchases", {"member_id": big, "channel": "offline", "order_no": "BIG-2",
                                               "store": "SH", "paid_fen": 100}),
                       (f"/coupons?member_id={big}", None), (f"/coupons?template_id={big}", None)):
        r = admin_api.post(path, body) if body else admin_api.get(path)
        assert r.status_code < 500, (path, r.status_code)  # PostgreSQL finds nothing: 200, an empty page
        if r.status_code >= 400:
            _envelope(r)


@pytest.mark.parametrize("content_type", ["multipart/form-data", "multipart/form-data; boundary=x"])
def test_an_upload_django_cannot_read_is_400(admin_api: Api, stores: Any, content_type: str) -> None:
    """A broken multipart body (found by the API fuzz test) answered 500."""
    r = admin_api.post("/members/import", b"--x\r\n" + b"X-Long: " + b"a" * 20_000 + b"\r\n\r\n",
                       content_type=content_type)
    assert r.status_code == 400 and _envelope(r)["code"] == "malformed_body"
