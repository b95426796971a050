"""Peer side of analytics_scale.py (run with the peer venv's python): lifetimes on the same data.

  rfm    FILE.npz  -> lifetimes.utils.summary_data_from_transaction_data (its per-customer R/F/M)
  bgnbd  FILE.npz  -> BetaGeoFitter().fit
Prints JSON: seconds, peak RSS (MiB) of this process.
"""

from __future__ import annotations

import json
import resource
import sys
import time
import warnings

import numpy as np
import pandas as pd

warnings.simplefilter("ignore")


def peak_rss_mib() -> float:
    # VmHWM belongs to this process image; ru_maxrss would carry the parent's peak across fork/exec.
    try:
        with open("/proc/self/status", encoding="utf-8") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(step: str, path: str) -> None:
    data = np.load(path)
    if step == "rfm":
        tx = pd.DataFrame(
            {
                "customer": data["customer"],
                "date": data["day"].astype("datetime64[D]"),
                "amount": data["amount"],
            }
        )
        from lifetimes.utils import summary_data_from_transaction_data

        t0 = time.perf_counter()
        out = summary_data_from_transaction_data(
            tx, "customer", "date", monetary_value_col="amount", freq="D"
        )
        seconds = time.perf_counter() - t0
        n = len(out)
    else:
        from lifetimes import BetaGeoFitter

        t0 = time.perf_counter()
        fit = BetaGeoFitter().fit(data["x"], data["t_x"], data["T"])
        seconds = time.perf_counter() - t0
        n = len(data["x"])
        print(json.dumps({"params": {k: float(v) for k, v in fit.params_.items()}}), file=sys.stderr)
    peak = peak_rss_mib()
    print(json.dumps({"seconds": seconds, "peak_mib": peak, "n": n}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
