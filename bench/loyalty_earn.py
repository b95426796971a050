"""Loyalty throughput: earns/s through the service layer and through HTTP (32 concurrent
clients against the real `memberhub serve`), bulk-import rows/s (CDNOW), each beside the
raw database's own commit rate for the same writes.

    .venv/bin/python bench/loyalty_earn.py                     # SQLite in a temp data dir
    DATABASE_URL=postgres://postgres@127.0.0.1:54329/memberhub_bench .venv/bin/python bench/loyalty_earn.py

The PostgreSQL database named in DATABASE_URL is dropped and recreated. Only loopback
traffic; every phase is bounded in count and in time.

The HTTP load comes from wrk (Debian's `wrk` package: C, two threads, 32 connections) when it
is installed, else from a Python client (32 threads of http.client), which itself takes a
good share of a 2-core machine's CPU: `--client` picks. The first line printed calibrates the
machine (a pure-Python loop and SQLite's own commit rate), so runs on different machines can
be compared; it is measured again at the end, as a VM's speed can swing over minutes.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CDNOW = ROOT / "tests" / "data" / "CDNOW_master.txt"


def _setup_env() -> None:
    os.environ.setdefault("MEMBERHUB_DATA_DIR", tempfile.mkdtemp(prefix="mh-bench-"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "memberhub.settings"
    url = os.environ.get("DATABASE_URL")
    if url:
        import psycopg

        base, name = url.rsplit("/", 1)
        with psycopg.connect(base + "/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def service_earns(members: list[int], n: int) -> float:
    from memberhub.access.principal import system_principal
    from memberhub.loyalty.purchases import LineInput, PurchaseInput, purchase_record

    actor = system_principal("bench")
    t = time.perf_counter()
    for i in range(n):
        purchase_record(actor=actor, data=PurchaseInput(
            channel="offline", order_no=f"SVC-{i}", paid_fen=12_800, store="SH", member_id=members[i % len(members)],
            lines=(LineInput(sku="A", category="food", paid_fen=12_800),)))
    return n / (time.perf_counter() - t)


def raw_earns(members: list[int], n: int) -> float:
    """The same rows an earn writes (purchase, line, lot, entry, account), one commit each, raw SQL."""
    from django.db import connection, transaction
    from django.utils import timezone

    from memberhub.loyalty.models import PointsAccount

    ops = connection.ops
    accounts = dict(PointsAccount.objects.filter(member_id__in=members).values_list("member_id", "pk"))
    now = ops.adapt_datetimefield_value(timezone.now())
    t = time.perf_counter()
    with connection.cursor() as c:
        for i in range(n):
            member_id = members[i % len(members)]
            with transaction.atomic():
                c.execute("SELECT id FROM loyalty_pointsaccount WHERE id = %s" +
                          (" FOR UPDATE" if connection.vendor == "postgresql" else ""), [accounts[member_id]])
                c.execute("INSERT INTO loyalty_purchase (member_id, channel, order_no, at, total_fen, paid_fen, discounts,"
                          " refunded_fen, points, clawed_back, earned, external_ref, recorded_by, recorded_at) VALUES"
                          " (%s, 'offline', %s, %s, 12800, 12800, '[]', 0, 128, 0, true, '', 'raw', %s) RETURNING id",
                          [member_id, f"RAW-{i}", now, now])
                pid = c.fetchone()[0]
                c.execute("INSERT INTO loyalty_purchaseline (purchase_id, line_id, sku, category, qty, unit_price_fen,"
                          " paid_fen, points, rounding, refunded_fen, clawed_back) VALUES"
                          " (%s, '1', 'A', 'food', 1, 12800, 12800, 128, 'floor', 0, 0)", [pid])
                c.execute("INSERT INTO loyalty_pointslot (account_id, points, remaining, earned_at, available_at,"
                          " expires_at, pending, purchase_id) VALUES (%s, 128, 128, %s, %s, %s, true, %s) RETURNING id",
                          [accounts[member_id], now, now, now, pid])
                lot = c.fetchone()[0]
                c.execute("INSERT INTO loyalty_pointsentry (account_id, kind, points, at, lot_id, purchase_id, rule,"
                          " reason, trace, actor, reference, created_at) VALUES"
                          " (%s, 'earn', 128, %s, %s, %s, 'purchase', '', '[]', 'raw', '', %s)",
                          [accounts[member_id], now, lot, pid, now])
                c.execute("UPDATE loyalty_pointsaccount SET balance = balance + 128, pending = pending + 128"
                          " WHERE id = %s", [accounts[member_id]])
    return n / (time.perf_counter() - t)


def http_earns(port: int, token: str, members: list[int], total: int, clients: int,
               seconds: float, prefix: str = "HTTP") -> dict[str, Any]:
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(total))
    errors: list[str] = []
    deadline = time.monotonic() + seconds

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: list[float] = []
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        while time.monotonic() < deadline:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            body = json.dumps({"member_id": members[i % len(members)], "channel": "online", "order_no": f"{prefix}-{i}",
                               "store": "SH", "paid_fen": 12_800,
                               "lines": [{"sku": "A", "category": "food", "paid_fen": 12_800}]})
            t = time.perf_counter()
            conn.request("POST", "/api/v1/loyalty/purchases", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            mine.append(time.perf_counter() - t)
            if response.status != 201 and len(errors) < 5:
                errors.append(f"{response.status}")
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join(seconds + 60)
    elapsed = time.perf_counter() - t0
    latencies.sort()
    return {"requests": len(latencies), "per_s": len(latencies) / elapsed,
            "p50_ms": statistics.median(latencies) * 1000,
            "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000, "errors": len(errors), "statuses": errors}


_WRK_LUA = r"""
local counter = 0
local threads = {}
local members = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  token = args[1]; prefix = args[3]
  for id in string.gmatch(args[2], "%d+") do table.insert(members, id) end
  bad = 0
end
function request()
  counter = counter + 1
  local body = string.format('{"member_id": %s, "channel": "online", "order_no": "%s-%d-%d", "store": "SH", '
    .. '"paid_fen": 12800, "lines": [{"sku": "A", "category": "food", "paid_fen": 12800}]}',
    members[counter % #members + 1], prefix, tid, counter)
  return wrk.format("POST", "/api/v1/loyalty/purchases",
    {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}, body)
end
function response(status, headers, body)
  if status ~= 201 then bad = bad + 1 end
end
function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + t:get("bad") end
  io.write(string.format("NOT201 %d\n", total))
end
"""

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk_earns(port: int, token: str, members: list[int], clients: int, seconds: float,
              prefix: str) -> dict[str, Any]:
    """wrk for `seconds` (it has no request cap): requests/s, p50/p99 from its --latency table."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(_WRK_LUA)
    try:
        out = subprocess.run(
            ["wrk", "-t2", f"-c{clients}", f"-d{int(seconds)}s", "--latency", "--timeout", "30s", "-s", fh.name,
             f"http://127.0.0.1:{port}", "--", token, ",".join(map(str, members)), prefix],
            capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    finally:
        os.unlink(fh.name)

    def latency(pct: str) -> float:
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")

    done = re.search(r"(\d+) requests in", out)
    bad = re.search(r"NOT201 (\d+)", out)
    per_s = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = int(bad.group(1)) if bad else -1
    return {"requests": int(done.group(1)) if done else 0, "per_s": float(per_s.group(1)) if per_s else 0.0,
            "p50_ms": latency("50"), "p99_ms": latency("99"), "errors": errors,
            "statuses": [f"{errors} not 201"] if errors else []}


def calibrate(tmp: str) -> str:
    """How fast this machine is: a pure-Python loop, and SQLite's commit rate (WAL,
    synchronous=NORMAL, one small INSERT per transaction)."""
    t = time.perf_counter()
    total = 0
    for i in range(3_000_000):
        total += i
    loop = 3.0 / (time.perf_counter() - t)
    path = os.path.join(tmp, "calibrate.db")
    for leftover in (path, path + "-wal", path + "-shm"):  # from the first calibration
        if os.path.exists(leftover):
            os.unlink(leftover)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE t (a INTEGER)")
    t = time.perf_counter()
    for i in range(3000):
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t VALUES (?)", (i,))
        db.execute("COMMIT")
    commits = 3000 / (time.perf_counter() - t)
    db.close()
    return f"machine: python loop {loop:.1f}M iterations/s, sqlite3 commits/s {commits:,.0f}"


def bulk_import() -> float:
    from memberhub.access.principal import system_principal
    from memberhub.core.tabular import rows_from_file
    from memberhub.loyalty.imports import orders_import

    t = time.perf_counter()
    with CDNOW.open("rb") as fh:
        report = orders_import(actor=system_principal("bench"), rows=rows_from_file(fh, filename=CDNOW.name))
    elapsed = time.perf_counter() - t
    assert report.created == 69_659 and report.rejected == 0, report.as_dict()
    return report.total / elapsed


def raw_import() -> float:
    """The same rows (purchase + line per CDNOW row) with multi-row INSERTs, nothing else."""
    from django.db import connection, transaction
    from django.utils import timezone

    now = connection.ops.adapt_datetimefield_value(timezone.now())
    rows = [line.split() for line in CDNOW.read_text().splitlines()[1:]]
    t = time.perf_counter()
    for start in range(0, len(rows), 5000):
        part = rows[start:start + 5000]
        with transaction.atomic(), connection.cursor() as c:
            for s in range(0, len(part), 500):
                chunk = part[s:s + 500]
                c.execute("INSERT INTO loyalty_purchase (channel, order_no, at, total_fen, paid_fen, discounts,"
                          " refunded_fen, points, clawed_back, earned, external_ref, recorded_by, recorded_at) VALUES "
                          + ", ".join(["('online', %s, %s, %s, %s, '[]', 0, 0, 0, false, %s, 'raw', %s)"] * len(chunk))
                          + " RETURNING id",
                          [v for i, r in enumerate(chunk) for v in
                           (f"RAWIMP-{start + s + i}", now, int(float(r[3]) * 100), int(float(r[3]) * 100), r[0], now)])
                ids = [x[0] for x in c.fetchall()]
                c.execute("INSERT INTO loyalty_purchaseline (purchase_id, line_id, sku, category, qty, unit_price_fen,"
                          " paid_fen, points, rounding, refunded_fen, clawed_back) VALUES "
                          + ", ".join(["(%s, '1', 'CD', 'music', %s, 0, %s, 0, 'floor', 0, 0)"] * len(chunk)),
                          [v for pid, r in zip(ids, chunk, strict=True) for v in (pid, int(r[2]), int(float(r[3]) * 100))])
    return len(rows) / (time.perf_counter() - t)


def http_phase(args: argparse.Namespace, token: str, members: list[int]) -> None:
    """The real `memberhub serve` in a subprocess (stopped at the end, whatever happens)."""
    port = _free_port()
    env = dict(os.environ, MEMBERHUB_ADMIN_PASSWORD="bench-pass-123456")
    cmd = [str(ROOT / ".venv" / "bin" / "memberhub"), "serve", "--port", str(port)]
    if args.workers:
        cmd += ["--workers", str(args.workers)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log)
        try:
            for _ in range(100):
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        break
                except OSError:
                    time.sleep(0.2)
            if args.client == "wrk":
                wrk_earns(port, token, members, args.clients, 3, prefix="WARM")  # warm every worker
                result = wrk_earns(port, token, members, args.clients, args.seconds, prefix="HTTP")
            else:
                http_earns(port, token, members, 300, args.clients, 10, prefix="WARM")
                result = http_earns(port, token, members, args.http, args.clients, args.seconds)
        finally:
            server.terminate()
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(5)
        if result["errors"]:
            log.seek(0)
            print(log.read().decode(errors="replace")[-3000:], file=sys.stderr)
    print(f"HTTP earns/s ({args.clients} clients, {args.client}): {result['per_s']:8.0f}   p50 {result['p50_ms']:.1f} ms   "
          f"p99 {result['p99_ms']:.1f} ms   ({result['requests']} requests, errors {result['statuses']})")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--service", type=int, default=2000)
    parser.add_argument("--http", type=int, default=6000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--workers", type=int, default=None, help="web worker processes (default: serve's)")
    parser.add_argument("--threads", type=int, default=None, help="threads per web worker (default: serve's)")
    parser.add_argument("--client", choices=("wrk", "python"), default="wrk" if shutil.which("wrk") else "python",
                        help="the HTTP load generator (default: wrk when installed)")
    parser.add_argument("--phases", default="service,http,import", help="comma-separated subset to run")
    args = parser.parse_args()
    phases = set(args.phases.split(","))
    _setup_env()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from memberhub.access.principal import system_principal
    from memberhub.access.roles import ALL_CAPS
    from memberhub.access.services import apikey_create
    from memberhub.members.models import Member
    from memberhub.stores.models import Store

    Store.objects.get_or_create(code="SH", defaults={"name": "上海"})
    from django.utils import timezone

    from memberhub.domain.member_identity import card_code_new

    Member.objects.bulk_create([Member(card_code=card_code_new(), registered_at=timezone.now(), import_key=f"b{i}")
                                for i in range(200)])
    members = list(Member.objects.values_list("pk", flat=True))
    _key, token = apikey_create(actor=system_principal("bench"), name="bench", scopes=sorted(ALL_CAPS))
    vendor = "postgresql" if os.environ.get("DATABASE_URL") else "sqlite"
    print(f"database: {vendor}, cpus: {os.cpu_count()}")
    print(calibrate(os.environ["MEMBERHUB_DATA_DIR"]))

    if "service" in phases:
        svc = service_earns(members, args.service)
        raw = raw_earns(members, args.service)
        print(f"service earns/s: {svc:8.0f}   raw DB commits/s for the same writes: {raw:8.0f}")
    if "http" in phases:
        http_phase(args, token, members)
    if "import" in phases:
        imp = bulk_import()
        raw_imp = raw_import()
        print(f"bulk import rows/s (CDNOW, 69,659 rows): {imp:8.0f}   raw DB multi-row INSERT rows/s: {raw_imp:8.0f}")
    # again at the end: a VM's speed can swing by half over minutes, and a run is only
    # comparable to another when both lines agree
    print(calibrate(os.environ["MEMBERHUB_DATA_DIR"]).replace("machine:", "machine at the end:"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
