"""The peer side of clv_cdnow.py: run with the peer venv's python (lifetimes 0.11.3), prints JSON.

Times the same steps as our side: per-customer summary, BG/NBD fit, Gamma-Gamma fit, with
the library's own defaults; the file is read with pandas beforehand (timed separately).
"""

from __future__ import annotations

import json
import sys
import time
import warnings

import lifetimes
import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.utils import summary_data_from_transaction_data

warnings.simplefilter("ignore")


def main(path: str, end: str, repeats: int) -> None:
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        tx = pd.read_csv(path, sep=r"\s+", dtype={"customer_id": str, "date": str})
        tx["date"] = pd.to_datetime(tx["date"], format="%Y%m%d")
        t1 = time.perf_counter()
        summary = summary_data_from_transaction_data(
            tx, "customer_id", "date", monetary_value_col="dollar_value", observation_period_end=end, freq="D"
        )
        t2 = time.perf_counter()
        bg = BetaGeoFitter().fit(summary["frequency"], summary["recency"], summary["T"])
        t3 = time.perf_counter()
        # Same subset as our fit: repeaters with a positive mean spend (CDNOW has some $0 ones).
        repeaters = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
        gg = GammaGammaFitter().fit(repeaters["frequency"], repeaters["monetary_value"])
        t4 = time.perf_counter()
        runs.append({"read": t1 - t0, "summary": t2 - t1, "bgnbd": t3 - t2, "gammagamma": t4 - t3})
    print(
        json.dumps(
            {
                "version": lifetimes.__version__,
                "numpy": np.__version__,
                "pandas": pd.__version__,
                "runs": runs,
                "bgnbd": {k: float(v) for k, v in bg.params_.items()},
                "gammagamma": {k: float(v) for k, v in gg.params_.items()},
                "n_customers": int(len(summary)),
                "summary_totals": [
                    float(summary["frequency"].sum()),
                    float(summary["recency"].sum()),
                    float(summary["T"].sum()),
                ],
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
