"""Benchmark: CPU of `memberhub` commands that compute no model, as whole processes.

    .venv/bin/python bench/cli_start.py [--runs 7]

Each command runs in a fresh process against a fresh SQLite data directory (migrated once
beforehand, so `migrate` is the no-op an operator's restart sees); printed: the median of the
runs' user + system CPU (from the OS, children included) and wall time, beside the 0.5 s target.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

TARGET_CPU_S = 0.5
COMMANDS = (("--help",), ("check",), ("migrate",), ("analytics", "--help"))


def _once(args: tuple[str, ...], env: dict[str, str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "memberhub.cli", *args], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as data:
        env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL")}
        env["MEMBERHUB_DATA_DIR"] = data
        _once(("migrate",), env)  # the later runs are the no-op migrate
        print(f"median of {args.runs} runs, each a whole process (python {sys.version.split()[0]})")
        print(f"{'command':<28}{'CPU user+sys (s)':>18}{'wall (s)':>10}{'target CPU':>12}")
        for command in COMMANDS:
            runs = [_once(command, env) for _ in range(args.runs)]
            cpu = statistics.median(r[0] for r in runs)
            wall = statistics.median(r[1] for r in runs)
            verdict = "ok" if cpu <= TARGET_CPU_S else "OVER"
            print(f"{'memberhub ' + ' '.join(command):<28}{cpu:>18.3f}{wall:>10.3f}{TARGET_CPU_S:>9.1f} {verdict}")


if __name__ == "__main__":
    main()
