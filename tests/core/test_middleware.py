"""The browser's middleware steps aside for a request that carries an API key, and only then."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import call_command
from django.http import HttpResponse
from django.test import Client, RequestFactory

from memberhub.core.middleware import AuthenticationMiddleware, MessageMiddleware, SessionMiddleware
from tests.conftest import Api

pytestmark = pytest.mark.django_db

PASSWORD = "pw-123456789"


def _logged_in(make_staff: Callable[..., Any], role: str = "marketing") -> Client:
    make_staff(role)
    client = Client(enforce_csrf_checks=True)
    r = client.post("/api/v1/auth/login", {"username": f"{role}-all", "password": PASSWORD},
                    content_type="application/json")
    assert r.status_code == 200
    return client


@pytest.mark.parametrize(("path", "headers", "browser"), [
    ("/api/v1/auth/me", {"HTTP_AUTHORIZATION": "Bearer x"}, False),
    ("/api/v1/auth/me", {}, True),
    ("/admin/", {"HTTP_AUTHORIZATION": "Bearer x"}, True),
])
def test_the_browser_layers_run_unless_the_api_request_carries_a_key(path: str, headers: dict[str, str],
                                                                     browser: bool) -> None:
    seen: list[Any] = []
    chain = SessionMiddleware(AuthenticationMiddleware(MessageMiddleware(lambda request: seen.append(request)
                                                                          or HttpResponse())))
    chain(RequestFactory().get(path, **headers))
    request = seen[0]
    assert [hasattr(request, a) for a in ("session", "user", "_messages")] == [browser] * 3


def test_a_session_request_still_goes_through_the_session(make_staff: Callable[..., Any]) -> None:
    client = _logged_in(make_staff)
    r = client.get("/api/v1/auth/me")
    assert r.status_code == 200 and r.json()["kind"] == "staff"
    assert "Cookie" in r["Vary"]


def test_a_wrong_key_is_not_rescued_by_a_session_cookie(make_staff: Callable[..., Any]) -> None:
    client = _logged_in(make_staff)
    r = client.get("/api/v1/auth/me", HTTP_AUTHORIZATION="Bearer mh_000000000000_nonsense")
    assert r.status_code == 401 and r.json()["code"] == "not_authenticated"
    token = client.cookies["csrftoken"].value
    r = client.post("/api/v1/members", {"phone": "13800138000"}, content_type="application/json",
                    HTTP_X_CSRFTOKEN=token, HTTP_AUTHORIZATION="Bearer mh_000000000000_nonsense")
    assert r.status_code == 401 and r.json()["code"] == "not_authenticated"


def test_a_session_post_without_the_token_is_still_refused(make_staff: Callable[..., Any]) -> None:
    client = _logged_in(make_staff)
    r = client.post("/api/v1/members", {"phone": "13800138000"}, content_type="application/json")
    assert r.status_code == 403 and r.json()["code"] == "csrf_failed"


def test_an_authorization_header_outside_the_api_keeps_csrf(make_staff: Callable[..., Any]) -> None:
    """The admin is a browser's: a stray Authorization header does not turn CSRF off there."""
    make_staff("admin", username="boss")
    client = Client(enforce_csrf_checks=True)
    r = client.post("/admin/login/", {"username": "boss", "password": PASSWORD}, HTTP_AUTHORIZATION="Bearer x")
    assert r.status_code == 403  # Django's CSRF failure page: no token was sent
    page = client.get("/admin/login/", HTTP_AUTHORIZATION="Bearer x")
    assert page.status_code == 200 and "csrftoken" in page.cookies


def test_the_language_comes_from_accept_language_with_its_headers(admin_api: Api, client: Client) -> None:
    r = admin_api.get("/members/999999", headers={"Accept-Language": "en"})
    assert r.status_code == 404 and r.json()["message"] == "No such member."
    assert r["Content-Language"] == "en" and "Accept-Language" in r["Vary"]
    r = admin_api.get("/members/999999")
    assert r["Content-Language"] == "zh-hans" and r.json()["message"] != "No such member."
    client.cookies["django_language"] = "en"
    assert admin_api.get("/members/999999")["Content-Language"] == "en"


def test_the_admin_still_finds_its_middleware() -> None:
    call_command("check", fail_level="ERROR")  # admin.E408–E410 look for these classes by subclass
