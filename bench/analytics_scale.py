"""Benchmark at scale: RFM over 10M purchases by 1M members, BG/NBD fit on 1M members.

    .venv/bin/python bench/analytics_scale.py [--members 1000000] [--purchases 10000000] [--no-peer]

Our side and the peer (`lifetimes`, in the peer venv, see setup_peer.sh) get the same
synthetic data.  Peak memory is the process's peak resident set (getrusage ru_maxrss: it
counts Polars' native allocations, which tracemalloc cannot see) plus tracemalloc's peak of
Python-level allocations during the step.  Targets: RFM <= 3 s, BG/NBD fit <= 30 s.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import polars as pl

from memberhub.domain.clv import bgnbd
from memberhub.domain.clv.simulate import simulate_bgnbd
from memberhub.domain.rfm import rfm

ROOT = Path(__file__).resolve().parents[1]


def peak_rss_mib() -> float:
    """Peak resident set of this process so far (VmHWM; ru_maxrss where /proc is missing)."""
    try:
        with open("/proc/self/status", encoding="utf-8") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peer(step: str, data: Path, python: str) -> dict[str, float] | None:
    proc = subprocess.run(
        [python, str(Path(__file__).with_name("_peer_scale.py")), step, str(data)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        print(
            f"  peer failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}"
        )
        return None
    result: dict[str, float] = json.loads(proc.stdout)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=1_000_000)
    ap.add_argument("--purchases", type=int, default=10_000_000)
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--peer-python", default=str(ROOT / ".venv-bench" / "bin" / "python"))
    args = ap.parse_args()
    rng = np.random.default_rng(2024)
    tmp = Path(tempfile.mkdtemp(prefix="memberhub-bench-"))

    # Every member buys once; the other purchases go at skewed rates (a few heavy buyers,
    # many one-off ones) over two years.
    rate = rng.gamma(0.5, 2.0, args.members)
    extra = rng.choice(args.members, size=args.purchases - args.members, p=rate / rate.sum())
    customer = rng.permutation(np.concatenate([np.arange(args.members), extra])).astype(np.int64)
    day = (np.datetime64("2023-01-01") + rng.integers(0, 730, args.purchases)).astype("datetime64[D]")
    amount = np.round(rng.gamma(2.0, 60.0, args.purchases), 2)
    tx = pl.DataFrame({"customer": customer, "date": day, "amount": amount})
    print(f"RFM: {tx.height:,} purchases by {tx['customer'].n_unique():,} members")
    tracemalloc.start()
    t0 = time.perf_counter()
    result = rfm(tx)
    seconds = time.perf_counter() - t0
    _, traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"  ours      {seconds:8.2f} s  (target <= 3 s)  peak RSS {peak_rss_mib():,.0f} MiB, Python-heap peak {traced / 2**20:,.0f} MiB"
    )
    print(f"            segments: {result.segment_counts()}")
    if not args.no_peer:
        path = tmp / "tx.npz"
        np.savez(path, customer=customer, day=day.astype(np.int64), amount=amount)
        p = peer("rfm", path, args.peer_python)
        if p:
            print(
                f"  lifetimes {p['seconds']:8.2f} s  (summary_data_from_transaction_data)  peak RSS {p['peak_mib']:,.0f} MiB  ratio {p['seconds'] / seconds:.1f}x"
            )
    del tx, customer, day, amount

    truth = bgnbd.BgNbdParams(r=0.25, alpha=4.0 * 7, a=0.8, b=2.5)
    T = rng.integers(1, 731, args.members).astype(np.float64)
    sim = simulate_bgnbd(truth, T, rng)
    t_x = np.floor(sim.t_x)  # whole days, as a summary of dated purchases has
    print(f"BG/NBD fit: {args.members:,} members (true r, alpha, a, b = {truth.as_dict()})")
    tracemalloc.start()
    t0 = time.perf_counter()
    fit = bgnbd.fit(sim.x, t_x, sim.T)
    seconds = time.perf_counter() - t0
    _, traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    fitted = {k: round(v, 4) for k, v in fit.params.as_dict().items()}
    print(
        f"  ours      {seconds:8.2f} s  (target <= 30 s)  peak RSS {peak_rss_mib():,.0f} MiB, Python-heap peak {traced / 2**20:,.0f} MiB"
    )
    print(
        f"            {fit.n_distinct:,} distinct (x, t_x, T) rows; fitted {fitted}; log-likelihood {fit.log_likelihood:.3f}"
    )
    if not args.no_peer:
        path = tmp / "summary.npz"
        np.savez(path, x=sim.x, t_x=t_x, T=sim.T)
        p = peer("bgnbd", path, args.peer_python)
        if p:
            print(
                f"  lifetimes {p['seconds']:8.2f} s  peak RSS {p['peak_mib']:,.0f} MiB  ratio {p['seconds'] / seconds:.1f}x"
            )


if __name__ == "__main__":
    main()
