"""`memberhub serve` as a user runs it: a real process, a real port, a fresh data dir.

Two starts race on one empty database: the migration lock lets one migrate while the other
waits, and both then serve. Through granian: JSON posts reach Django whole, a local proxy's
X-Forwarded-For is the client address, and SIGTERM drains what is in flight, then exits.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

BIN = Path(sys.executable).with_name("memberhub")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 (loopback only)
        return r.status, r.read()


def _wait(url: str, proc: subprocess.Popen[bytes], log: Path, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early: {log.read_text()}")
        try:
            _get(url)
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {seconds}s: {log.read_text()[-5000:]}")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    e.pop("DATABASE_URL", None)  # the embedded database, as the README's first command uses
    e.update(MEMBERHUB_DATA_DIR=str(tmp_path), MEMBERHUB_ADMIN_PASSWORD="first-admin-pass-1")
    return e


def test_it_serves_two_racing_starts_on_one_fresh_database(env: dict[str, str], tmp_path: Path) -> None:
    ports = [_free_port(), _free_port()]
    # Output goes to files, not pipes: a pipe nobody reads fills up and blocks the server.
    logs = [tmp_path / f"serve-{i}.log" for i in range(2)]
    procs = [
        subprocess.Popen([str(BIN), "serve", "--port", str(p), "--workers", "1", *(["--demo"] if i == 0 else [])],
                         env=env, stdout=logs[i].open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
        for i, p in enumerate(ports)
    ]
    try:
        for p, proc, log in zip(ports, procs, logs, strict=True):
            _wait(f"http://127.0.0.1:{p}/healthz", proc, log)
        status, body = _get(f"http://127.0.0.1:{ports[1]}/api/v1/openapi.json")
        assert status == 200 and b'"/api/v1/members"' in body
        status, body = _get(f"http://127.0.0.1:{ports[0]}/static/admin/css/base.css")
        assert status == 200 and len(body) > 1000  # static files served by the app itself
        status, _ = _get(f"http://127.0.0.1:{ports[0]}/api/v1/docs")
        assert status == 200
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=30)
    outputs = [log.read_text() for log in logs]
    assert sum("Created administrator" in out for out in outputs) == 1
    assert "first-admin-pass-1" not in "".join(outputs)  # a chosen password is never printed
    assert "Demo data:" in outputs[0]
    assert "Traceback" not in "".join(outputs), "".join(outputs)[-8000:]


def _post(opener: urllib.request.OpenerDirector, url: str, body: bytes,
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with opener.open(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_it_answers_posts_and_stops_gracefully_on_sigterm(env: dict[str, str], tmp_path: Path) -> None:
    port, log = _free_port(), tmp_path / "serve.log"
    proc = subprocess.Popen([str(BIN), "serve", "--port", str(port), "--workers", "1"],
                            env={**env, "MEMBERHUB_BEHIND_PROXY": "true"}, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(f"{base}/healthz", proc, log)
        jar = http.cookiejar.CookieJar()
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        status, me = _post(browser, f"{base}/api/v1/auth/login",
                           json.dumps({"username": "admin", "password": "first-admin-pass-1"}).encode())
        assert status == 200 and me["kind"] == "staff", me
        csrf = {"X-CSRFToken": next(c.value for c in jar if c.name == "csrftoken")}
        # An authenticated JSON body, UTF-8 and all, through the real server to Django and back.
        status, member = _post(browser, f"{base}/api/v1/members",
                               json.dumps({"phone": "13800138000", "name": "张三"}).encode(), csrf)
        assert status == 201 and member["name"] == "张三", member
        # A body over the limit answers 413 in the error envelope, not a dropped connection. The
        # answer comes from the declared length, before the body is read; so the client sends
        # only the start of it (a client still pushing 3 MB into a connection the server has
        # answered and closed gets a broken pipe before it reads anything, now and then).
        cookies = "; ".join(f"{c.name}={c.value}" for c in jar)
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(b"POST /api/v1/members HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                      b"Content-Type: application/json\r\nContent-Length: %d\r\nCookie: %s\r\n"
                      b"X-CSRFToken: %s\r\n\r\n{\"name\": \"xxxx" % (
                          (3 << 20) + 12, cookies.encode(), csrf["X-CSRFToken"].encode()))
            answer = b""
            try:
                while chunk := s.recv(65536):
                    answer += chunk
            except ConnectionResetError:
                pass  # closed with the unsent rest unread, the server's side may reset: after the answer
        head, _, payload = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413"), answer[:300]
        assert json.loads(payload)["code"] == "payload_too_large", payload

        # The address a local reverse proxy forwards is the one the login limit counts: the
        # nearest hop it appended, not what the client claimed before it.
        bad = json.dumps({"username": "nobody", "password": "wrong-password"}).encode()
        plain = urllib.request.build_opener()
        assert _post(plain, f"{base}/api/v1/auth/login", bad)[0] == 401
        assert _post(plain, f"{base}/api/v1/auth/login", bad,
                     {"X-Forwarded-For": "198.51.100.1, 203.0.113.7"})[0] == 401
        with sqlite3.connect(tmp_path / "memberhub.sqlite3") as db:
            ips = [ip for (ip,) in db.execute("SELECT ip FROM access_loginfailure ORDER BY id")]
        assert ips == ["127.0.0.1", "203.0.113.7"]

        # SIGTERM (to the main process, as systemd or `docker stop` sends it) while a request is
        # half sent: that request still gets its answer, then every process exits.
        body = json.dumps({"username": "admin", "password": "first-admin-pass-1"}).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                      b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body[:10])
            time.sleep(0.5)
            stopping = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            s.sendall(body[10:])
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200"), answer[:500]
        assert proc.wait(timeout=15) == 0
        assert time.monotonic() - stopping < 10
        with pytest.raises(ProcessLookupError):
            os.killpg(proc.pid, 0)  # no worker left behind
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    out = log.read_text()
    access = [json.loads(line) for line in out.splitlines() if line.startswith('{"ts"')]
    assert any(a.get("logger") == "memberhub.access" and (a["method"], a["path"], a["status"]) ==
               ("POST", "/api/v1/members", 201) for a in access)  # the access log, on stdout
    assert "Traceback" not in out, out[-8000:]


def test_it_resolves_a_host_name_and_names_a_busy_port() -> None:
    from django.core.management.base import CommandError

    from memberhub.core.server import bind_address

    port = _free_port()
    assert bind_address("localhost", port) in ("127.0.0.1", "::1")  # granian itself takes addresses only
    assert bind_address("0.0.0.0", port) == "0.0.0.0"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        with pytest.raises(CommandError, match=f"127.0.0.1:{port}: Address already in use"):
            bind_address("127.0.0.1", port)


def test_forwarded_for_is_believed_only_behind_a_proxy(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import memberhub.wsgi as wsgi_module
    from memberhub.core.server import load_application

    seen: list[str] = []

    def peer(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(environ["REMOTE_ADDR"])
        return []

    monkeypatch.setattr(wsgi_module, "application", peer)
    settings.SECURE_PROXY_SSL_HEADER = None
    assert load_application("memberhub.wsgi:application") is peer  # headers untouched
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    app = load_application("memberhub.wsgi:application")
    assert app is not peer
    app({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "198.51.100.1, 203.0.113.7"}, None)
    app({"REMOTE_ADDR": "192.0.2.9", "HTTP_X_FORWARDED_FOR": "203.0.113.7"}, None)  # not our proxy
    app({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "not-an-address"}, None)
    assert seen == ["203.0.113.7", "192.0.2.9", "127.0.0.1"]
