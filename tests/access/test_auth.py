"""Authentication: API keys, sessions with CSRF, and the failed-login limit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from memberhub.access.models import ApiKey
from memberhub.access.services import apikey_revoke
from tests.conftest import Api

pytestmark = pytest.mark.django_db

PASSWORD = "pw-123456789"


def test_it_answers_401_without_credentials() -> None:
    r = Client().get("/api/v1/members")
    assert r.status_code == 401
    assert r.json()["code"] == "not_authenticated"


@pytest.mark.parametrize("token", ["nonsense", "mh_000000000000_secret", "mh_"])
def test_it_answers_401_for_an_unknown_key(client: Client, stores: Any, token: str) -> None:
    r = Api(client, token).get("/members")
    assert r.status_code == 401 and r.json()["code"] == "not_authenticated"


def test_it_answers_401_for_a_key_whose_secret_is_wrong(client: Client, make_key: Callable[..., str]) -> None:
    plain = make_key(["members:read"])
    r = Api(client, plain[:-2] + "xx").get("/members")
    assert r.status_code == 401


def test_it_answers_401_for_a_revoked_key(client: Client, make_key: Callable[..., str], system: Any) -> None:
    plain = make_key(["members:read"])
    api = Api(client, plain)
    assert api.get("/members").status_code == 200
    apikey_revoke(actor=system, prefix=plain.split("_")[1])
    r = api.get("/members")
    assert r.status_code == 401 and r.json()["code"] == "not_authenticated"


def test_it_revokes_a_key_through_the_api(admin_api: Api, make_key: Callable[..., str], client: Client) -> None:
    plain = make_key(["members:read"])
    prefix = plain.split("_")[1]
    r = admin_api.post(f"/auth/apikeys/{prefix}/revoke")
    assert r.status_code == 200 and r.json()["revoked_at"] is not None
    assert Api(Client(), plain).get("/members").status_code == 401
    assert admin_api.post("/auth/apikeys/nosuchprefix/revoke").json()["code"] == "apikey_not_found"


def test_it_creates_a_key_that_is_shown_once_and_stored_hashed(admin_api: Api) -> None:
    r = admin_api.post("/auth/apikeys", {"name": "till", "scopes": ["members:read"], "stores": ["SH"]})
    assert r.status_code == 201
    plain = r.json()["key"]
    stored = ApiKey.objects.get(prefix=r.json()["prefix"])
    assert plain not in (stored.hashed, stored.prefix) and len(stored.hashed) == 64
    assert all("key" not in k for k in admin_api.get("/auth/apikeys").json())
    me = Api(Client(), plain).get("/auth/me").json()
    assert me["kind"] == "apikey" and me["capabilities"] == ["members:read"] and len(me["stores"]) == 1


def test_it_refuses_unknown_scopes(admin_api: Api) -> None:
    r = admin_api.post("/auth/apikeys", {"name": "x", "scopes": ["members:read", "everything"]})
    assert r.status_code == 422
    assert r.json()["code"] == "apikey_invalid_scopes" and r.json()["detail"]["unknown"] == ["everything"]


def test_it_reports_who_is_calling(staff_api: Callable[..., Api]) -> None:
    me = staff_api("cashier", ["SH"]).get("/auth/me").json()
    assert me["kind"] == "staff" and me["label"] == "cashier-SH"
    assert "members:write" in me["capabilities"] and "pii:read" not in me["capabilities"]
    assert len(me["stores"]) == 1


def _login(client: Client, username: str, password: str) -> Any:
    return client.post("/api/v1/auth/login", {"username": username, "password": password},
                       content_type="application/json")


def test_it_refuses_a_session_post_without_the_csrf_token(make_staff: Callable[..., Any]) -> None:
    make_staff("marketing")
    client = Client(enforce_csrf_checks=True)
    assert _login(client, "marketing-all", PASSWORD).status_code == 200
    r = client.post("/api/v1/members", {"phone": "13800138000"}, content_type="application/json")
    assert r.status_code == 403
    assert r.json()["code"] == "csrf_failed"


def test_it_accepts_a_session_post_with_the_csrf_token_from_the_cookie(make_staff: Callable[..., Any]) -> None:
    make_staff("marketing")
    client = Client(enforce_csrf_checks=True)
    assert _login(client, "marketing-all", PASSWORD).status_code == 200
    token = client.cookies["csrftoken"].value
    r = client.post("/api/v1/members", {"phone": "13800138000"}, content_type="application/json",
                    HTTP_X_CSRFTOKEN=token)
    assert r.status_code == 201, r.content
    assert r.json()["pii_masked"] is True


def test_it_reads_with_a_session_without_a_csrf_token(make_staff: Callable[..., Any]) -> None:
    make_staff("analyst")
    client = Client(enforce_csrf_checks=True)
    _login(client, "analyst-all", PASSWORD)
    assert client.get("/api/v1/members").status_code == 200


def test_it_logs_out(make_staff: Callable[..., Any]) -> None:
    make_staff("analyst")
    client = Client()
    _login(client, "analyst-all", PASSWORD)
    assert client.post("/api/v1/auth/logout").status_code == 204
    assert client.get("/api/v1/members").status_code == 401


def test_logging_out_with_an_api_key_says_there_is_no_session(admin_api: Api) -> None:
    """A keyed request skips the session middleware: logout answered 500 (found by fuzzing
    every operation with schemathesis)."""
    r = admin_api.post("/auth/logout")
    assert r.status_code == 400 and r.json()["code"] == "no_session"
    assert admin_api.get("/auth/me").status_code == 200  # the key still works


def test_it_answers_a_wrong_password_with_401(make_staff: Callable[..., Any]) -> None:
    make_staff("analyst")
    r = _login(Client(), "analyst-all", "wrong-password")
    assert r.status_code == 401 and r.json()["code"] == "login_failed"


def test_it_logs_in_with_the_right_password_before_the_limit(make_staff: Callable[..., Any]) -> None:
    make_staff("analyst")
    client = Client()
    for _ in range(4):
        assert _login(client, "analyst-all", "wrong-password").status_code == 401
    r = _login(client, "analyst-all", PASSWORD)
    assert r.status_code == 200 and r.json()["label"] == "analyst-all"


def test_it_rate_limits_after_five_failed_logins(make_staff: Callable[..., Any]) -> None:
    make_staff("analyst")
    client = Client()
    for _ in range(5):
        assert _login(client, "analyst-all", "wrong-password").status_code == 401
    r = _login(client, "analyst-all", PASSWORD)  # even the right password, from this address
    assert r.status_code == 429
    assert r.json()["code"] == "login_rate_limited"
    assert r.json()["detail"]["retry_after_seconds"] > 0
    assert r["Retry-After"] == str(r.json()["detail"]["retry_after_seconds"])


def test_it_limits_per_username_not_for_everyone(make_staff: Callable[..., Any]) -> None:
    make_staff("analyst")
    make_staff("marketing")
    for _ in range(5):
        _login(Client(), "analyst-all", "wrong-password")
    assert _login(Client(), "marketing-all", PASSWORD).status_code == 200


def test_it_forgets_failures_after_the_window(make_staff: Callable[..., Any], settings: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from memberhub.access.models import LoginFailure

    make_staff("analyst")
    for _ in range(5):
        _login(Client(), "analyst-all", "wrong-password")
    LoginFailure.objects.update(at=timezone.now() - timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS + 1))
    assert _login(Client(), "analyst-all", PASSWORD).status_code == 200


# --- staff accounts ------------------------------------------------------------------------------


def test_it_creates_a_store_bound_cashier(admin_api: Api) -> None:
    r = admin_api.post("/auth/staff", {"username": "till-1", "password": PASSWORD, "role": "cashier",
                                       "stores": ["SH"]})
    assert r.status_code == 201 and r.json()["label"] == "till-1" and len(r.json()["stores"]) == 1
    client = Client()
    assert _login(client, "till-1", PASSWORD).status_code == 200
    assert [s["code"] for s in client.get("/api/v1/stores").json()] == ["SH"]


@pytest.mark.parametrize("body,code", [
    ({"username": "x", "password": PASSWORD, "role": "cashier"}, "stores_required"),
    ({"username": "x", "password": PASSWORD, "role": "owner"}, "invalid_role"),
    ({"username": "x", "password": PASSWORD, "role": "service", "stores": ["NOPE"]}, "store_not_found"),
    ({"username": "admin-all", "password": PASSWORD, "role": "service"}, "username_taken"),
    ({"username": "x", "password": "short", "role": "service"}, "validation_error"),
    ({"username": "x", "password": "password123", "role": "service"}, "password_too_weak"),
    ({"username": "x", "password": "8264019375", "role": "service"}, "password_too_weak"),
    ({"username": "zhangwei2026", "password": "zhangwei2026", "role": "service"}, "password_too_weak"),
])
def test_it_refuses_an_invalid_staff_account(
    admin_api: Api, make_staff: Callable[..., Any], body: dict[str, Any], code: str
) -> None:
    make_staff("admin")
    r = admin_api.post("/auth/staff", body)
    assert r.status_code == 422 and r.json()["code"] == code
