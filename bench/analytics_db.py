"""Benchmark: the full database run (read + RFM + CLV + store snapshots) against the CSV path.

    .venv/bin/python bench/analytics_db.py [--purchases 1000000] [--members 200000] [--keep DIR]

Loads synthetic purchases (BG/NBD-like buyers over two years) into a fresh SQLite database
(raw multi-row inserts; loading is not timed as part of the run), writes the same
transactions to a CSV file, then times in separate processes, so each peak resident set
(VmHWM) is its own:

* db rfm / db clv: `run_now` on the database (bulk read -> Polars -> domain models -> snapshot
  rows written in chunks -> made current), with its read / compute / store phases;
* csv rfm / csv clv: the same models through `memberhub analytics ... --from-csv` (the peer).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
START = np.datetime64("2023-01-01T04:00:00")  # noon in Shanghai
DAYS = 730


def peak_mib() -> float:
    with open("/proc/self/status", encoding="utf-8") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def synthesise(members: int, purchases: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(member index, day offset, fen) for about `purchases` rows."""
    rng = np.random.default_rng(seed)
    join = rng.integers(0, DAYS - 30, members)
    mean_extra = max(purchases / members - 1, 0.1)
    p = rng.beta(1.0, 3.0, members)
    lam = rng.gamma(1.5, mean_extra / 1.5, members)
    n = 1 + np.minimum(rng.geometric(np.clip(p, 0.02, 1)) - 1, rng.poisson(lam))
    extra = (n - 1).astype(np.float64)
    factor = max(purchases - members, 0) / max(extra.sum(), 1.0)  # hit the target, keep the shape
    n = 1 + np.floor(extra * factor + rng.random(members)).astype(np.int64)
    who = np.repeat(np.arange(members), n)
    first = np.r_[0, np.cumsum(n)[:-1]]
    is_first = np.zeros(len(who), dtype=bool)
    is_first[first] = True
    span = DAYS - join[who]
    day = np.where(is_first, join[who], join[who] + (rng.random(len(who)) * span).astype(np.int64))
    fen = (rng.gamma(3.0, 3000, len(who)) + 100).astype(np.int64)
    return who, day, fen


def load(data_dir: Path, members: int, purchases: int, csv_path: Path) -> dict[str, float]:
    os.environ["MEMBERHUB_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "memberhub.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from memberhub.loyalty.models import Purchase
    from memberhub.members.models import Member

    call_command("migrate", verbosity=0)
    t0 = time.perf_counter()
    who, day, fen = synthesise(members, purchases)
    when = (START + day.astype("timedelta64[D]")).astype("datetime64[s]").astype(str)
    when = np.char.replace(when, "T", " ")
    with transaction.atomic(), connection.cursor() as cur:
        cur.executemany(
            f"INSERT INTO {Member._meta.db_table} (id, card_code, name, gender, source, status, registered_at, updated_at)"
            " VALUES (%s, %s, '', 'unknown', 'store', 'active', %s, %s)",
            [(i + 1, f"{i + 1:016d}", "2023-01-01 00:00:00", "2023-01-01 00:00:00") for i in range(members)],
        )
        chunk = 200_000
        for s in range(0, len(who), chunk):
            cur.executemany(
                f"INSERT INTO {Purchase._meta.db_table} (member_id, channel, order_no, at, total_fen, paid_fen,"
                " discounts, refunded_fen, points, clawed_back, earned, external_ref, recorded_by, recorded_at)"
                " VALUES (%s, 'offline', %s, %s, %s, %s, '[]', 0, 0, 0, 0, '', 'bench', %s)",
                [(int(m) + 1, f"B{s + i:09d}", w, int(f), int(f), w)
                 for i, (m, w, f) in enumerate(zip(who[s:s + chunk], when[s:s + chunk], fen[s:s + chunk], strict=True))],
            )
    loaded = time.perf_counter() - t0
    local_day = (np.datetime64("2023-01-01") + day.astype("timedelta64[D]")).astype(str)
    with csv_path.open("w", encoding="utf-8") as fh:
        fh.write("customer_id,date,amount\n")
        for m, d, f in zip(who + 1, local_day, fen, strict=True):
            fh.write(f"{m},{d},{f}\n")
    return {"rows": float(len(who)), "members": float(members), "load_s": loaded}


def child_db(data_dir: Path, kind: str) -> None:
    os.environ["MEMBERHUB_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "memberhub.settings")
    import django

    django.setup()
    from memberhub.access.principal import system_principal
    from memberhub.analytics.queries import ClvQuery, RfmQuery
    from memberhub.analytics.services import run_now

    marks: list[tuple[str, float]] = []
    end = "2024-12-31"
    query = RfmQuery(observation_end=end) if kind == "rfm" else ClvQuery(observation_end=end)
    t0 = time.perf_counter()
    run = run_now(actor=system_principal("bench"), query=query,
                  progress=lambda msg: marks.append((msg.split()[0], time.perf_counter())))
    total = time.perf_counter() - t0
    t = dict(marks)
    phases = {"read_s": t["computing"] - t["reading"], "compute_s": t["storing"] - t["computing"],
              "store_s": t0 + total - t["storing"]}
    print(json.dumps({"seconds": total, "peak_mib": peak_mib(), "status": run.status, "error": run.error,
                      "snapshots": run.counts.get("snapshots"), **phases}))


def child_csv(csv_path: Path, kind: str) -> None:
    from memberhub.analytics.csv_cli import run

    t0 = time.perf_counter()
    with open(os.devnull, "w") as sink:
        code = run([kind, "--from-csv", str(csv_path), "--observation-end", "2024-12-31", "--format", "json"],
                   sink, sys.stderr)
    print(json.dumps({"seconds": time.perf_counter() - t0, "peak_mib": peak_mib(), "status": code}))


def child(args: list[str]) -> dict[str, float]:
    proc = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--purchases", type=int, default=1_000_000)
    ap.add_argument("--members", type=int, default=200_000)
    ap.add_argument("--keep", type=Path, help="keep the database and CSV in this directory")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        where, kind, path = args.child
        (child_db if where == "db" else child_csv)(Path(path), kind)
        return
    work = args.keep or Path(tempfile.mkdtemp(prefix="mh-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    csv_path = work / "purchases.csv"
    info = load(work, args.members, args.purchases, csv_path)
    rows = int(info["rows"])
    print(f"loaded {rows:,} purchases by {args.members:,} members into SQLite in {info['load_s']:.1f} s ({work})")
    print(f"{'step':<10}{'seconds':>9}{'rows/s':>12}{'peak MiB':>10}   detail")
    for kind in ("rfm", "clv"):
        db = child(["db", kind, str(work)])
        peer = child(["csv", kind, str(csv_path)])
        print(f"{'db ' + kind:<10}{db['seconds']:>9.2f}{rows / db['seconds']:>12,.0f}{db['peak_mib']:>10.0f}   "
              f"read {db['read_s']:.2f} s, compute {db['compute_s']:.2f} s, store {db['store_s']:.2f} s "
              f"({db['snapshots']:,} snapshots; {db['status']}{': ' + db['error'] if db['error'] else ''})")
        print(f"{'csv ' + kind:<10}{peer['seconds']:>9.2f}{rows / peer['seconds']:>12,.0f}{peer['peak_mib']:>10.0f}   "
              f"csv_cli --format json (exit {peer['status']})")


if __name__ == "__main__":
    main()
