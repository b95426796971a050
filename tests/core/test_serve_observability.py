"""What an engineer on call sees of a real `memberhub serve` with two worker processes: one
JSON line per request on stdout with its id, and `/metrics` adding up every worker's counts."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from tests.core.test_serve import BIN, _free_port, _get, _wait
from tests.core.test_serve import env as env  # noqa: F401  (a fixture, found by its name)


def _requests_total(text: str, route: str) -> float:
    return sum(float(m.group(1)) for m in re.finditer(
        rf'^memberhub_http_requests_total\{{[^}}]*route="{re.escape(route)}"[^}}]*\}} (\S+)$', text, re.M))


def _status(url: str) -> int:
    try:
        return _get(url)[0]
    except urllib.error.HTTPError as exc:  # /readyz answers 503 while something is not ready
        return exc.code


def test_it_logs_json_lines_and_sums_metrics_across_worker_processes(env: dict[str, str], tmp_path: Path) -> None:
    port = _free_port()
    log = tmp_path / "serve.log"
    proc = subprocess.Popen([str(BIN), "serve", "--port", str(port), "--workers", "2"], env=env,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(f"{base}/healthz", proc, log)
        before = _requests_total(_get(f"{base}/metrics")[1].decode(), "readyz")
        for _ in range(40):  # new connections each: both workers answer some
            assert _status(f"{base}/readyz") in (200, 503)
        after = _requests_total(_get(f"{base}/metrics")[1].decode(), "readyz")
        assert after - before == 40
        request = urllib.request.Request(f"{base}/healthz", headers={"X-Request-ID": "till-3:0001"})
        with urllib.request.urlopen(request, timeout=5) as r:  # noqa: S310 (loopback only)
            assert r.headers["X-Request-ID"] == "till-3:0001"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith('{"ts"')]
    access = [entry for entry in lines if entry["logger"] == "memberhub.access"]
    assert any(entry["request_id"] == "till-3:0001" and entry["route"] == "healthz" for entry in access)
    assert len([entry for entry in access if entry["route"] == "readyz"]) == 40
