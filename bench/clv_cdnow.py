"""Benchmark: summary + BG/NBD + Gamma-Gamma on the whole CDNOW master file, ours vs `lifetimes`.

    .venv/bin/python bench/clv_cdnow.py [--repeats 3] [--peer-python .venv-bench/bin/python]

Each side runs in its own interpreter and environment (the peer needs NumPy 1.x and pandas
1.x, see setup_peer.sh).  Reported: wall time of each step (best of the repeats), the ratio,
and the maximised log-likelihood of each side.  Both log-likelihoods are evaluated with the
same function on the same per-customer data, so they are comparable: lifetimes maximises a
time-rescaled likelihood internally, which differs from ours by a data-dependent constant.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from memberhub.analytics.csv_io import CsvSpec, read_transactions
from memberhub.domain.clv import bgnbd, gammagamma
from memberhub.domain.clv.summary import summarise

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "CDNOW_master.txt"
END = dt.date(1998, 6, 30)


def ours(repeats: int) -> tuple[dict[str, float], object, bgnbd.BgNbdFit, gammagamma.GammaGammaFit]:
    spec = CsvSpec(DATA, "customer_id", "date", "dollar_value", sep="whitespace", date_format="%Y%m%d")
    best: dict[str, float] = {}
    for _ in range(repeats):
        t0 = time.perf_counter()
        tx = read_transactions(spec)
        t1 = time.perf_counter()
        s = summarise(tx, observation_end=END)
        t2 = time.perf_counter()
        bg = bgnbd.fit(s.x, s.t_x, s.T)
        t3 = time.perf_counter()
        gg = gammagamma.fit(s.x, s.monetary)
        t4 = time.perf_counter()
        run = {"read": t1 - t0, "summary": t2 - t1, "bgnbd": t3 - t2, "gammagamma": t4 - t3}
        best = run if not best else {k: min(best[k], v) for k, v in run.items()}
    return best, s, bg, gg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--peer-python", default=str(ROOT / ".venv-bench" / "bin" / "python"))
    args = ap.parse_args()

    our_t, s, bg, gg = ours(args.repeats)
    proc = subprocess.run(
        [
            args.peer_python,
            str(Path(__file__).with_name("_peer_lifetimes.py")),
            str(DATA),
            END.isoformat(),
            str(args.repeats),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        sys.exit(f"peer failed (did you run bench/setup_peer.sh?):\n{proc.stderr}")
    peer = json.loads(proc.stdout)
    peer_t = {k: min(r[k] for r in peer["runs"]) for k in peer["runs"][0]}

    ours_totals = [float(s.x.sum()), float(s.t_x.sum()), float(s.T.sum())]
    same_data = peer["n_customers"] == len(s) and np.allclose(peer["summary_totals"], ours_totals)
    pb = peer["bgnbd"]
    peer_bg_ll = float(
        bgnbd.log_likelihood(bgnbd.BgNbdParams(pb["r"], pb["alpha"], pb["a"], pb["b"]), s.x, s.t_x, s.T).sum()
    )
    pg = peer["gammagamma"]
    rep = (s.x > 0) & (s.monetary > 0)
    peer_gg_ll = float(
        gammagamma.log_likelihood(
            gammagamma.GammaGammaParams(pg["p"], pg["q"], pg["v"]), s.x[rep], s.monetary[rep]
        ).sum()
    )

    print(
        f"CDNOW master: {len(s):,} customers, {int(s.x.sum() + len(s)):,} purchase days; observation end {END}"
    )
    print(
        f"peer: lifetimes {peer['version']} (numpy {peer['numpy']}, pandas {peer['pandas']}); best of {args.repeats} runs"
    )
    print(f"same per-customer data on both sides: {same_data}")
    print(f"{'step':<28}{'ours (s)':>12}{'lifetimes (s)':>16}{'ratio':>10}")
    core = ("summary", "bgnbd", "gammagamma")
    for step in (*core, "read"):
        print(f"{step:<28}{our_t[step]:>12.4f}{peer_t[step]:>16.4f}{peer_t[step] / our_t[step]:>9.1f}x")
    ours_core, peer_core = sum(our_t[k] for k in core), sum(peer_t[k] for k in core)
    print(f"{'summary + BG/NBD + GG':<28}{ours_core:>12.4f}{peer_core:>16.4f}{peer_core / ours_core:>9.1f}x")
    ours_all, peer_all = ours_core + our_t["read"], peer_core + peer_t["read"]
    print(f"{'... including reading':<28}{ours_all:>12.4f}{peer_all:>16.4f}{peer_all / ours_all:>9.1f}x")
    print()
    print(f"BG/NBD ours      {bg.params.as_dict()}")
    print(f"BG/NBD lifetimes {pb}")
    rel = abs(bg.log_likelihood - peer_bg_ll) / abs(peer_bg_ll)
    print(
        f"BG/NBD max log-likelihood: ours {bg.log_likelihood:.6f}  lifetimes {peer_bg_ll:.6f}  rel. diff {rel:.2e}"
    )
    print(f"Gamma-Gamma ours      {gg.params.as_dict()}")
    print(f"Gamma-Gamma lifetimes {pg}")
    rel = abs(gg.log_likelihood - peer_gg_ll) / abs(peer_gg_ll)
    print(
        f"Gamma-Gamma max log-likelihood: ours {gg.log_likelihood:.6f}  lifetimes {peer_gg_ll:.6f}  rel. diff {rel:.2e}"
    )


if __name__ == "__main__":
    main()
