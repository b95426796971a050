"""`memberhub serve` over its life: it runs the background jobs itself, nothing it started
outlives a `kill -9` of it, a start on a taken port names who holds it, and a crash under load
loses no acknowledged effect and applies none twice (the crash test).

The server runs in a subprocess on the test database (on SQLite a copy of it, on PostgreSQL
the test database itself), so that it starts without migrating.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from tests.members.factories import member_make

BIN = Path(sys.executable).with_name("memberhub")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_free(port: int, seconds: float = 5) -> bool:
    """Whether a server could listen on `port` (within `seconds`: the kernel closes a killed
    process's sockets as it reaps it)."""
    deadline = time.monotonic() + seconds
    while True:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
                return True
            except OSError:
                if time.monotonic() > deadline:
                    print(subprocess.run(["ss", "-tanp"], capture_output=True, text=True).stdout)
                    return False
        time.sleep(0.05)


def _server_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a server on the test database (committed: transaction=True)."""
    e = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    e.update(MEMBERHUB_DATA_DIR=str(tmp_path), MEMBERHUB_ADMIN_PASSWORD="first-admin-pass-1",
             MEMBERHUB_TASKS_IMMEDIATE="false")
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        e["DATABASE_URL"] = (f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT']}/{db['NAME']}")
    else:
        e.pop("DATABASE_URL", None)
        connection.ensure_connection()
        with sqlite3.connect(tmp_path / "memberhub.sqlite3") as copy:
            connection.connection.backup(copy)  # migrated: the server starts without migrating
        copy.close()
    connection.close()  # nothing held while the server writes
    return e


class Server:
    def __init__(self, env: dict[str, str], port: int, log: Path, *args: str) -> None:
        self.env, self.port, self.log, self.args = env, port, log, args
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, seconds: float = 90) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([str(BIN), "serve", "--port", str(self.port), "--workers", "2", *self.args],
                                         env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited ({self.proc.returncode}): {self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=2):  # noqa: S310 (loopback)
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"no answer within {seconds}s: {self.log.read_text()[-3000:]}")

    def children(self) -> set[int]:
        assert self.proc is not None
        found: set[int] = set()
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            found.update(int(p) for p in (task / "children").read_text().split())
        return found

    def kill9(self) -> set[int]:
        """SIGKILL to the main process only, as `kill -9 PID`; its children as they were."""
        assert self.proc is not None
        children = self.children()
        self.proc.kill()
        self.proc.wait(10)
        return children

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # whatever is left of the group


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended (whoever reaps it)


def _wait_gone(pids: set[int], seconds: float = 10) -> set[int]:
    deadline = time.monotonic() + seconds
    while (left := {p for p in pids if _alive(p)}) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def _call(base: str, token: str, method: str, path: str, body: Any = None,
          key: str | None = None, timeout: float = 15) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if key:
        headers["Idempotency-Key"] = key
    req = urllib.request.Request(base + "/api/v1" + path, method=method, headers=headers,
                                 data=None if body is None else json.dumps(body).encode())
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 (loopback)
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


@pytest.fixture
def token(make_key: Any) -> str:
    return str(make_key())


@pytest.mark.django_db(transaction=True)
def test_serve_runs_the_jobs_and_a_kill_9_of_it_leaves_nothing_behind(token: str, tmp_path: Path) -> None:
    port = _free_port()
    server = Server(_server_env(tmp_path), port, tmp_path / "serve.log")
    try:
        server.start()
        # a background job runs without a separate `memberhub worker`
        status, run = _call(server.base, token, "POST", "/analytics/runs", {"kind": "health", "params": {}})
        assert status == 202, run
        deadline = time.monotonic() + 60
        while run["status"] in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.5)
            run = _call(server.base, token, "GET", f"/analytics/runs/{run['id']}")[1]
        assert run["status"] == "succeeded", run
        children = server.children()
        assert len(children) == 3, children  # two web workers and the job consumer
        left = _wait_gone(server.kill9())
        assert not left, f"processes outlived the server: {left}"
        assert _port_free(port)
        server.start()  # the same port, at once
        assert _call(server.base, token, "GET", "/members")[0] == 200
    finally:
        server.stop()
    assert "Traceback" not in server.log.read_text(), server.log.read_text()[-5000:]


def test_a_start_on_a_taken_port_names_the_process_holding_it() -> None:
    from django.core.management.base import CommandError

    from memberhub.core.server import bind_address

    port = _free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        with pytest.raises(CommandError, match=f"Address already in use; it is held by process {os.getpid()} "):
            bind_address("127.0.0.1", port)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_crash_kill_9_under_load_keeps_every_acknowledged_effect_once(token: str, tmp_path: Path) -> None:
    """Tills send earns and top-ups with Idempotency-Keys and retry until answered, while the
    server's workers and the server itself are killed with SIGKILL and it is started again:
    afterwards every answered effect is there exactly once and the ledgers check out."""
    members = [member_make(phone=f"1380013800{i}").pk for i in range(4)]
    port = _free_port()
    server = Server(_server_env(tmp_path), port, tmp_path / "serve.log", "--no-worker")
    rng = random.Random(21)
    acked: list[tuple[str, int, int, str]] = []  # (kind, member, amount, key)
    stop, lock = threading.Event(), threading.Lock()
    retried = Counter[str]()

    def till(n: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            member = members[(n + i) % len(members)]
            key = f"T{n}-{i}"
            if i % 3:
                kind, amount = "earn", 100 * (1 + (n + i) % 5)
                path, body = "/loyalty/purchases", {
                    "member_id": member, "channel": "offline", "order_no": key, "store": "SH", "paid_fen": amount,
                    "lines": [{"sku": "A", "category": "food", "paid_fen": amount}]}
            else:
                kind, amount = "topup", 500
                path, body = f"/wallet/{member}/topup", {"amount_fen": amount, "payment_ref": key, "store": "SH"}
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # a till retries, with the same key, until answered
                try:
                    status, answer = _call(server.base, token, "POST", path, body, key=key, timeout=10)
                except OSError:
                    status, answer = 0, None
                if status in (200, 201):
                    with lock:
                        acked.append((kind, member, amount, key))
                    break
                assert status in (0, 409, 503), (status, answer)
                with lock:
                    retried[str(status)] += 1
                time.sleep(0.1)
            else:
                raise AssertionError(f"{key} was never answered")

    threads = [threading.Thread(target=till, args=(n,)) for n in range(4)]
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            till(n)
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    try:
        server.start()
        for t in threads:
            t.start()
        time.sleep(2)
        worker = rng.choice(sorted(server.children()))
        os.kill(worker, signal.SIGKILL)  # a worker: granian starts another
        for _ in range(2):
            time.sleep(2)
            left = _wait_gone(server.kill9())  # the server: its workers go with it
            assert not left, f"processes outlived the server: {left}"
            assert _port_free(port)
            server.start()
        time.sleep(2)
        stop.set()
        for t in threads:
            t.join(90)
        assert not errors, errors
        assert len(acked) > 20, acked
        print(f"crash test: {len(acked)} effects answered; retries by status (0: no answer) {dict(retried)}")

        earns = {key for kind, _m, _a, key in acked if kind == "earn"}
        for member in members:
            assert _call(server.base, token, "GET", f"/loyalty/members/{member}/points/check") == (200, [])
            assert _call(server.base, token, "GET", f"/wallet/{member}/check") == (200, [])
            entries: list[dict[str, Any]] = []
            cursor: str | None = ""
            while cursor is not None:
                page = _call(server.base, token, "GET", f"/loyalty/members/{member}/points/statement?limit=200"
                             + (f"&cursor={cursor}" if cursor else ""))[1]
                entries += page["items"]
                cursor = page["next_cursor"]
            mine = {key for kind, m, _a, key in acked if kind == "earn" and m == member}
            per_order = Counter(e["order_no"] for e in entries if e["order_no"] in earns)
            assert set(per_order) == mine  # every answered earn is there, and nothing else
            assert set(per_order.values()) == {1}, per_order  # once
            wallet = _call(server.base, token, "GET", f"/wallet/{member}")[1]
            assert wallet["principal_fen"] == sum(a for kind, m, a, _k in acked if kind == "topup" and m == member)
    finally:
        stop.set()
        server.stop()
    assert _port_free(port)
