"""Benchmark: the whole `memberhub analytics clv --from-csv` process against lifetimes doing the same job.

    .venv/bin/python bench/clv_cli_vs_lifetimes.py [--runs 5] [--peer-python .venv-bench/bin/python]

Both sides run as whole processes on the full CDNOW master file (69,659 purchases, 23,570
customers): read, summarise, fit BG/NBD and Gamma-Gamma, and write every customer's P(alive),
expected purchases, expected spend and CLV as JSON (ours: the command itself; the peer:
bench/_peer_clv_cli.py).  Printed: the median wall time and CPU (user + system of the process)
of each side over the runs, interleaved so that a change in machine load hits both, and the
ratio; the target is at least 3x on both.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "CDNOW_master.txt"
END = "1998-06-30"
OURS = ["-m", "memberhub.cli", "analytics", "clv", "--from-csv", str(DATA), "--sep", "whitespace",
        "--date-format", "%Y%m%d", "--customer-col", "customer_id", "--amount-col", "dollar_value",
        "--observation-end", END, "--horizon-days", "365", "--discount-rate", "0.10", "--format", "json"]


def _timed(cmd: list[str], stdout_path: str | None) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(stdout_path or os.devnull, "w") as out:
        subprocess.run(cmd, check=True, stdout=out, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--peer-python", default=str(ROOT / ".venv-bench" / "bin" / "python"))
    args = ap.parse_args()
    peer_script = str(Path(__file__).with_name("_peer_clv_cli.py"))
    ours, peer = [], []
    with tempfile.TemporaryDirectory() as tmp:
        our_out, peer_out = f"{tmp}/ours.json", f"{tmp}/peer.json"
        for _ in range(args.runs):
            ours.append(_timed([sys.executable, *OURS], our_out))
            peer.append(_timed([args.peer_python, peer_script, str(DATA), END, peer_out], None))
        mine = json.loads(Path(our_out).read_text())["customers"]
        theirs = json.loads(Path(peer_out).read_text())
    print(f"CDNOW master, whole process: read + summary + BG/NBD + Gamma-Gamma + per-customer "
          f"P(alive), E[purchases], E[spend], CLV written as JSON; median of {args.runs} interleaved runs")
    print(f"customers written: ours {len(mine):,}, lifetimes {len(theirs):,}")
    print(f"{'':<14}{'ours':>10}{'lifetimes':>12}{'ratio':>9}")
    for i, label in enumerate(("wall (s)", "CPU (s)")):
        o, p = statistics.median(r[i] for r in ours), statistics.median(r[i] for r in peer)
        print(f"{label:<14}{o:>10.3f}{p:>12.3f}{p / o:>8.1f}x")
    by_id = {c["customer_id"]: c for c in theirs}
    worst = max(abs(c["p_alive"] - by_id[c["customer"]]["p_alive"]) for c in mine)
    print(f"largest |P(alive) ours - lifetimes| over all customers: {worst:.2e}")


if __name__ == "__main__":
    main()
