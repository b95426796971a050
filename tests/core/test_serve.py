"""`memberhub serve` as a user runs it: a real process, a real port, a fresh data dir.

Two starts race on one empty database: the migration lock lets one migrate while the other
waits, and both then serve.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

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
