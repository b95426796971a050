"""The `memberhub` command: configuration errors, API keys and the first administrator."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from tests.conftest import Api

MEMBERHUB = str(Path(sys.executable).with_name("memberhub"))


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("MEMBERHUB_") and k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL")}
    clean.update({"MEMBERHUB_DATA_DIR": str(tmp_path), **env})
    return subprocess.run([MEMBERHUB, *args], env=clean, capture_output=True, text=True, timeout=60)


def test_it_refuses_to_start_in_production_without_a_secret_key(tmp_path: Path) -> None:
    r = _run(tmp_path, "check", MEMBERHUB_ENV="production")
    assert r.returncode != 0
    assert "MEMBERHUB_SECRET_KEY" in r.stderr and "production" in r.stderr
    assert "Traceback" not in r.stderr  # a clear message, not a crash
    assert not (tmp_path / "secret_key").exists()  # no default secret was invented


def test_it_refuses_a_weak_secret_key_in_production(tmp_path: Path) -> None:
    r = _run(tmp_path, "check", MEMBERHUB_ENV="production", MEMBERHUB_SECRET_KEY="short")
    assert r.returncode != 0 and "too weak" in r.stderr


def test_it_names_a_malformed_variable(tmp_path: Path) -> None:
    r = _run(tmp_path, "check", MEMBERHUB_DEBUG="maybe")
    assert r.returncode == 2
    assert "MEMBERHUB_DEBUG='maybe'" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.django_db
def test_it_creates_an_api_key_that_authenticates(stores: Any) -> None:
    out = io.StringIO()
    call_command("apikey", "create", "--name", "pos", "--scopes", "members:read", stdout=out)
    plain = out.getvalue().strip().splitlines()[-1]
    assert plain.startswith("mh_")
    api = Api(Client(), plain)
    me = api.get("/auth/me").json()
    assert (me["kind"], me["label"], me["capabilities"]) == ("apikey", "apikey:pos", ["members:read"])
    assert api.get("/members").status_code == 200
    assert api.post("/members", {"phone": "13800138000"}).status_code == 403


@pytest.mark.django_db
def test_it_lists_and_revokes_api_keys_from_the_command_line(stores: Any) -> None:
    out = io.StringIO()
    call_command("apikey", "create", "--name", "pos", "--scopes", "members:read", "--stores", "SH", stdout=out)
    plain = out.getvalue().strip().splitlines()[-1]
    prefix = plain.split("_")[1]
    listing = io.StringIO()
    call_command("apikey", "list", stdout=listing)
    assert prefix in listing.getvalue() and "active" in listing.getvalue()
    call_command("apikey", "revoke", prefix, stdout=io.StringIO())
    assert Api(Client(), plain).get("/members").status_code == 401


@pytest.mark.django_db
def test_it_refuses_an_api_key_with_unknown_scopes() -> None:
    with pytest.raises(CommandError, match="apikey_invalid_scopes"):
        call_command("apikey", "create", "--name", "x", "--scopes", "members:everything", stdout=io.StringIO())


@pytest.mark.django_db
def test_it_creates_an_administrator_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMBERHUB_ADMIN_USERNAME", "boss")
    monkeypatch.setenv("MEMBERHUB_ADMIN_PASSWORD", "a-long-password-2026")
    monkeypatch.setenv("MEMBERHUB_ADMIN_EMAIL", "boss@example.cn")
    out = io.StringIO()
    call_command("createadmin", stdout=out)
    user = get_user_model().objects.get(username="boss")
    assert user.is_superuser and user.is_staff and user.email == "boss@example.cn"
    assert user.check_password("a-long-password-2026")
    assert user.staff.role == "admin"
    assert "boss" in out.getvalue()
    client = Client()
    r = client.post("/api/v1/auth/login", {"username": "boss", "password": "a-long-password-2026"},
                    content_type="application/json")
    assert r.status_code == 200 and "staff:manage" in r.json()["capabilities"]


@pytest.mark.django_db
def test_it_refuses_a_short_admin_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMBERHUB_ADMIN_USERNAME", "boss")
    monkeypatch.setenv("MEMBERHUB_ADMIN_PASSWORD", "short")
    with pytest.raises(CommandError, match="at least 8"):
        call_command("createadmin", stdout=io.StringIO())
    assert not get_user_model().objects.filter(username="boss").exists()


@pytest.mark.django_db
def test_it_refuses_a_second_admin_with_the_same_name(
    monkeypatch: pytest.MonkeyPatch, make_staff: Callable[..., Any]
) -> None:
    make_staff("service", username="boss")
    monkeypatch.setenv("MEMBERHUB_ADMIN_USERNAME", "boss")
    monkeypatch.setenv("MEMBERHUB_ADMIN_PASSWORD", "a-long-password-2026")
    with pytest.raises(CommandError, match="username_taken"):
        call_command("createadmin", stdout=io.StringIO())


def test_it_refuses_a_malformed_port_with_a_message(tmp_path: Any) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL")}
    env.update(MEMBERHUB_DATA_DIR=str(tmp_path), MEMBERHUB_PORT="eighty")
    r = subprocess.run([str(Path(sys.executable).with_name("memberhub")), "serve"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "MEMBERHUB_PORT" in r.stderr and "Traceback" not in r.stderr


def test_it_says_so_when_the_database_cannot_be_reached(tmp_path: Path) -> None:
    """`serve` (and any command) with nothing listening where DATABASE_URL points: a message
    and exit 1, not a traceback."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    r = _run(tmp_path, "serve", "--port", "0", DATABASE_URL=f"postgres://postgres@127.0.0.1:{port}/nowhere")
    assert r.returncode == 1, r.stderr
    assert "memberhub: the database cannot be reached" in r.stderr and "Traceback" not in r.stderr


def test_help_lists_the_products_commands_without_loading_django(capsys: pytest.CaptureFixture[str]) -> None:
    from memberhub.cli import main

    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("serve", "worker", "check", "backup", "restore", "events", "analytics"):
        assert f"\n  {command} " in out, command
    probe = "import sys; from memberhub.cli import main; main(['--help']); print('django.apps' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip().endswith("False"), r.stdout + r.stderr
