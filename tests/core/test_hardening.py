"""Production hardening: settings refused in production, HTTPS, the Content-Security-Policy,
`Cache-Control: no-store` on personal data, and the session's idle timeout."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from memberhub.conf import allowed_hosts_problem, fernet_weakness, secret_weakness
from memberhub.core.middleware import LAST_SEEN
from tests.conftest import Api

PASSWORD = "pw-123456789"
GOOD = {
    "MEMBERHUB_ENV": "production",
    "MEMBERHUB_SECRET_KEY": "kq3V_x9Lw2Rz-T8mNcB4yHfJ0pUeA7sDg6QiOvK1tYb5ZnXr_WlMhCjPaEdGuS2oF",
    "MEMBERHUB_ENCRYPTION_KEYS": "Wm0bT3xg2qZ8yJ1sV7nR5uE4cK9hL6dA0fPiXoBtMwY=",
    "MEMBERHUB_BLIND_INDEX_KEY": "p4Z-Gk8sQ2vN7xR1mJ5bT9cW3yH6fL0aD_EuKiOtYrXn",
    "MEMBERHUB_ALLOWED_HOSTS": "crm.example.cn",
}


def _settings(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Import the settings module in a fresh process with this environment."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("MEMBERHUB_") and k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL")}
    clean.update({"MEMBERHUB_DATA_DIR": str(tmp_path), **env})
    code = ("import json, memberhub.settings as s; print(json.dumps([s.SECURE_HSTS_SECONDS, s.SECURE_SSL_REDIRECT, "
            "s.SESSION_COOKIE_AGE, s.SECURE_HSTS_INCLUDE_SUBDOMAINS]))")
    return subprocess.run([sys.executable, "-c", code], env=clean, capture_output=True, text=True, timeout=60)


def test_production_settings_turn_https_on_by_default(tmp_path: Path) -> None:
    r = _settings(tmp_path, **GOOD)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [31536000, True, 1800, False]
    r = _settings(tmp_path, **GOOD, MEMBERHUB_HSTS_SECONDS="600", MEMBERHUB_SSL_REDIRECT="false",
                  MEMBERHUB_SESSION_IDLE_SECONDS="900", MEMBERHUB_HSTS_INCLUDE_SUBDOMAINS="true")
    assert json.loads(r.stdout) == [600, False, 900, True]


ZERO_FERNET = base64.urlsafe_b64encode(bytes(32)).decode()


@pytest.mark.parametrize("change,message", [
    ({"MEMBERHUB_ALLOWED_HOSTS": "*"}, "MEMBERHUB_ALLOWED_HOSTS"),
    ({"MEMBERHUB_ALLOWED_HOSTS": "crm.example.cn,*"}, "wildcard"),
    ({"MEMBERHUB_SECRET_KEY": "x" * 60}, "MEMBERHUB_SECRET_KEY is too weak"),
    ({"MEMBERHUB_SECRET_KEY": "kq3V_x9Lw2Rz-T8mNcB4yHfJ0pUeA7sDg6Qi"}, "shorter than 50"),
    ({"MEMBERHUB_SECRET_KEY": "abcdefghijkl" * 5}, "repeats a pattern"),
    ({"MEMBERHUB_SECRET_KEY": "changeme-" + GOOD["MEMBERHUB_SECRET_KEY"]}, "placeholder"),
    ({"MEMBERHUB_ENCRYPTION_KEYS": ZERO_FERNET}, "MEMBERHUB_ENCRYPTION_KEYS holds a weak key"),
    ({"MEMBERHUB_BLIND_INDEX_KEY": "p4Z-Gk8sQ2vN7xR1mJ5bT9"}, "MEMBERHUB_BLIND_INDEX_KEY is too weak"),
    ({"MEMBERHUB_BLIND_INDEX_KEY": GOOD["MEMBERHUB_SECRET_KEY"]}, "must all differ"),
])
def test_production_refuses_wildcard_hosts_and_weak_keys(tmp_path: Path, change: dict[str, str], message: str) -> None:
    r = _settings(tmp_path, **{**GOOD, **change})
    assert r.returncode != 0 and "ConfigError" in r.stderr and message in r.stderr, r.stderr[-500:]


def test_development_keeps_its_defaults(tmp_path: Path) -> None:
    r = _settings(tmp_path, MEMBERHUB_ALLOWED_HOSTS="*")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [0, False, 1800, False]


def test_the_weakness_rules_pass_generated_keys() -> None:
    import secrets

    from cryptography.fernet import Fernet

    for _ in range(200):
        assert secret_weakness(secrets.token_urlsafe(48), min_length=50) is None
        assert secret_weakness(secrets.token_hex(32), min_length=50) is None
        assert fernet_weakness(Fernet.generate_key().decode()) is None
    assert allowed_hosts_problem(["crm.example.cn", ".example.cn"]) is None


# --- headers ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_answer_carries_a_content_security_policy(client: Client) -> None:
    r = client.get("/api/v1/docs")
    csp = r["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert client.get("/healthz")["Content-Security-Policy"] == csp


@pytest.mark.django_db
def test_the_api_docs_page_works_under_the_policy(client: Client) -> None:
    """Swagger UI from the package's own files, no inline script, nothing from another host."""
    page = client.get("/api/v1/docs").content.decode()
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, flags=re.S)
    assert scripts
    for attrs, body in scripts:
        src = re.search(r'src="([^"]+)"', attrs)
        if src is None:  # a data block is not executed; anything else inline would be blocked
            assert 'type="application/json"' in attrs, attrs
            continue
        assert src.group(1).startswith("/static/") and not body.strip(), src.group(1)
        assert client.get(src.group(1)).status_code == 200
    for href in re.findall(r'<link[^>]*href="([^"]+)"', page):
        assert href.startswith("/static/"), href


@pytest.mark.django_db
def test_api_answers_are_never_cached(admin_api: Api, make_staff: Callable[..., Any]) -> None:
    assert admin_api.get("/members")["Cache-Control"] == "no-store"
    assert admin_api.get("/members/999999")["Cache-Control"] == "no-store"  # errors too
    assert Client().get("/api/v1/members")["Cache-Control"] == "no-store"
    make_staff("service")
    client = Client()
    client.post("/api/v1/auth/login", {"username": "service-all", "password": PASSWORD},
                content_type="application/json")
    assert client.get("/api/v1/auth/me")["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_pages_for_a_signed_in_staff_member_are_not_cached(make_staff: Callable[..., Any]) -> None:
    client = Client()
    client.force_login(make_staff("admin"))
    r = client.get("/admin/")
    assert r.status_code == 200 and "no-store" in r["Cache-Control"]
    assert client.get("/")["Cache-Control"] == "no-store"  # any page, not only the admin's own
    assert "no-store" not in Client().get("/healthz").get("Cache-Control", "")


@pytest.mark.django_db
def test_hsts_is_sent_on_https(settings: Any) -> None:
    settings.SECURE_HSTS_SECONDS = 31536000
    r = Client().get("/healthz", secure=True)
    assert r["Strict-Transport-Security"] == "max-age=31536000"


# --- sessions ----------------------------------------------------------------------------------


def _session(client: Client) -> Session:
    return Session.objects.get(session_key=client.cookies[settings.SESSION_COOKIE_NAME].value)


def _signed_in(make_staff: Callable[..., Any]) -> Client:
    make_staff("analyst")
    client = Client()
    assert client.post("/api/v1/auth/login", {"username": "analyst-all", "password": PASSWORD},
                       content_type="application/json").status_code == 200
    return client


@pytest.mark.django_db
def test_a_session_expires_after_the_idle_timeout(make_staff: Callable[..., Any]) -> None:
    client = _signed_in(make_staff)
    left = (_session(client).expire_date - timezone.now()).total_seconds()
    assert settings.SESSION_COOKIE_AGE - 60 < left <= settings.SESSION_COOKIE_AGE == 1800
    assert int(client.cookies[settings.SESSION_COOKIE_NAME]["max-age"]) == 1800
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))  # idle past the timeout
    assert client.get("/api/v1/auth/me").status_code == 401


@pytest.mark.django_db
def test_using_a_session_keeps_it_alive(make_staff: Callable[..., Any]) -> None:
    client = _signed_in(make_staff)
    # 25 minutes later, with 5 left: the session was last renewed 25 minutes ago
    store = client.session
    store[LAST_SEEN] = int(store[LAST_SEEN]) - 1500
    store.save()
    Session.objects.update(expire_date=timezone.now() + timedelta(seconds=300))
    assert client.get("/api/v1/auth/me").status_code == 200
    left = (_session(client).expire_date - timezone.now()).total_seconds()
    assert left > settings.SESSION_COOKIE_AGE - 60
    # a request a moment later does not write the session again
    before = _session(client).expire_date
    assert client.get("/api/v1/auth/me").status_code == 200
    assert _session(client).expire_date == before
