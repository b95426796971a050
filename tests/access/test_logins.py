"""The login limit slows an attacker without locking the real user out; passwords are validated
everywhere; login takes JSON only."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import F
from django.test import Client

from memberhub.access.models import LoginFailure
from memberhub.access.services import staff_create
from memberhub.conf import ConfigError
from memberhub.core.bootstrap import admin_ensure
from memberhub.core.demo import DEMO_PASSWORD

pytestmark = pytest.mark.django_db

PASSWORD = "pw-123456789"
ATTACKER, USER = "203.0.113.66", "198.51.100.7"


def _login(username: str, password: str, ip: str = USER, client: Client | None = None) -> Any:
    return (client or Client()).post("/api/v1/auth/login", {"username": username, "password": password},
                                     content_type="application/json", REMOTE_ADDR=ip)


def _wait(r: Any) -> int:
    assert r.status_code == 429, r.content
    assert r.json()["code"] == "login_rate_limited"
    assert r["Retry-After"] == str(r.json()["detail"]["retry_after_seconds"])
    return int(r["Retry-After"])


def _time_passes(seconds: float) -> None:
    LoginFailure.objects.update(at=F("at") - timedelta(seconds=seconds))


def test_an_attacker_elsewhere_never_locks_the_real_user_out(make_staff: Callable[..., Any]) -> None:
    make_staff("analyst")
    for _ in range(30):
        _login("analyst-all", "wrong-password", ATTACKER)
    assert _login("analyst-all", PASSWORD, ATTACKER).status_code == 429
    assert _login("analyst-all", PASSWORD, USER).status_code == 200


def test_the_last_administrator_logs_in_while_attacked_from_many_addresses(stores: Any) -> None:
    staff_create(actor=None, username="root", password="a-Long-unusual-passphrase-42", role="admin", superuser=True)
    assert get_user_model().objects.filter(is_superuser=True).count() == 1
    for i in range(20):
        for _ in range(6):
            _login("root", "guess", f"10.0.{i}.1")
    r = _login("root", "a-Long-unusual-passphrase-42", USER)
    assert r.status_code == 200 and r.json()["label"] == "root"


def test_the_delay_doubles_with_each_failure_and_says_how_long(make_staff: Callable[..., Any], settings: Any) -> None:
    make_staff("analyst")
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        assert _login("analyst-all", "wrong", ATTACKER).status_code == 401
    waits = []
    for _ in range(6):
        wait = _wait(_login("analyst-all", PASSWORD, ATTACKER))  # even the right password waits
        waits.append(wait)
        _time_passes(wait)
        assert _login("analyst-all", "wrong", ATTACKER).status_code == 401  # the wait is over: one more guess
    assert waits == [1, 2, 4, 8, 16, 32]


def test_the_delay_never_exceeds_the_cap(make_staff: Callable[..., Any], settings: Any) -> None:
    make_staff("analyst")
    LoginFailure.objects.bulk_create([LoginFailure(username="analyst-all", ip=ATTACKER) for _ in range(60)])
    assert _wait(_login("analyst-all", PASSWORD, ATTACKER)) == settings.LOGIN_MAX_DELAY_SECONDS
    _time_passes(settings.LOGIN_MAX_DELAY_SECONDS)
    assert _login("analyst-all", PASSWORD, ATTACKER).status_code == 200  # slowed, never locked for good


def test_a_success_forgives_the_earlier_mistakes(make_staff: Callable[..., Any], settings: Any) -> None:
    make_staff("analyst")
    for _ in range(settings.LOGIN_FAILURE_LIMIT - 1):
        _login("analyst-all", "wrong")
    assert _login("analyst-all", PASSWORD).status_code == 200
    for _ in range(settings.LOGIN_FAILURE_LIMIT - 1):
        assert _login("analyst-all", "wrong").status_code == 401
    assert _login("analyst-all", PASSWORD).status_code == 200


def test_an_address_spraying_many_usernames_hits_its_ceiling(make_staff: Callable[..., Any], settings: Any) -> None:
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 12
    make_staff("analyst")
    for i in range(12):
        assert _login(f"guess-{i}", "wrong", ATTACKER).status_code == 401
    r = _login("analyst-all", PASSWORD, ATTACKER)
    assert _wait(r) > settings.LOGIN_FAILURE_WINDOW_SECONDS - 60 and r.json()["detail"]["limit"] == "address"
    assert _login("analyst-all", PASSWORD, USER).status_code == 200  # other addresses are not affected
    _time_passes(settings.LOGIN_FAILURE_WINDOW_SECONDS + 1)
    assert _login("analyst-all", PASSWORD, ATTACKER).status_code == 200


def test_the_admin_site_counts_toward_the_same_limit(make_staff: Callable[..., Any], settings: Any) -> None:
    make_staff("admin")
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        Client().post("/admin/login/", {"username": "admin-all", "password": "wrong"}, REMOTE_ADDR=ATTACKER)
    assert LoginFailure.objects.filter(username="admin-all", ip=ATTACKER).count() == settings.LOGIN_FAILURE_LIMIT
    client = Client()
    r = client.post("/admin/login/", {"username": "admin-all", "password": PASSWORD}, REMOTE_ADDR=ATTACKER)
    assert r.status_code == 200 and "_auth_user_id" not in client.session  # refused while waiting …
    # … and a refused attempt is not counted as one more guess
    assert LoginFailure.objects.filter(username="admin-all", ip=ATTACKER).count() == settings.LOGIN_FAILURE_LIMIT
    _wait(_login("admin-all", PASSWORD, ATTACKER))


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_login_takes_json_only(make_staff: Callable[..., Any], content_type: str) -> None:
    """A page elsewhere can post `text/plain` without a preflight, so could log a victim's
    browser in as the attacker."""
    make_staff("analyst")
    body = json.dumps({"username": "analyst-all", "password": PASSWORD})
    client = Client()
    r = client.post("/api/v1/auth/login", body, content_type=content_type)
    assert r.status_code in (400, 415) and r.json()["code"] in ("unsupported_media_type", "malformed_json"), r.content
    assert "sessionid" not in client.cookies


# --- passwords -------------------------------------------------------------------------------


@pytest.fixture
def admin_env() -> Iterator[Callable[[str], None]]:
    saved = os.environ.get("MEMBERHUB_ADMIN_PASSWORD")

    def set_password(value: str) -> None:
        os.environ["MEMBERHUB_ADMIN_PASSWORD"] = value

    yield set_password
    if saved is None:
        os.environ.pop("MEMBERHUB_ADMIN_PASSWORD", None)
    else:
        os.environ["MEMBERHUB_ADMIN_PASSWORD"] = saved


@pytest.mark.parametrize("weak", ["password", "12345678901", "admin-admin"])
def test_createadmin_refuses_a_weak_password(stores: Any, admin_env: Callable[[str], None], weak: str) -> None:
    admin_env(weak)
    with pytest.raises(CommandError, match="password_too_weak"):
        call_command("createadmin", "--username", "admin-admin", stdout=io.StringIO())
    assert not get_user_model().objects.filter(username="admin-admin").exists()


def test_the_first_administrator_refuses_a_weak_password(db: Any, admin_env: Callable[[str], None]) -> None:
    admin_env("password1")
    with pytest.raises(ConfigError, match="MEMBERHUB_ADMIN_PASSWORD"):
        admin_ensure(io.StringIO())  # type: ignore[arg-type]
    assert not get_user_model().objects.exists()


def test_the_demo_password_passes_the_validators(stores: Any) -> None:
    """The README promises `demo-pass-2026` for the demo staff."""
    for username in ("marketing", "cashier_sh", "service", "analyst"):
        staff_create(actor=None, username=username, password=DEMO_PASSWORD, role="analyst")
    assert _login("cashier_sh", DEMO_PASSWORD).status_code == 200
