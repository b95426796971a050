"""The peer side of clv_cli_vs_lifetimes.py: lifetimes doing the whole `analytics clv` job.

    <peer python> bench/_peer_clv_cli.py CDNOW_master.txt 1998-06-30 OUT.json

Read the file, summarise per customer, fit BG/NBD and Gamma-Gamma, and write every customer's
P(alive), expected purchases in 365 days, expected average spend and 12-month CLV at 10 %/year
as JSON records: what `memberhub analytics clv --from-csv ... --format json` writes.
"""

from __future__ import annotations

import sys
import warnings

import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.utils import summary_data_from_transaction_data

warnings.simplefilter("ignore")


def main(path: str, end: str, out: str) -> None:
    tx = pd.read_csv(path, sep=r"\s+", dtype={"customer_id": str, "date": str})
    tx["date"] = pd.to_datetime(tx["date"], format="%Y%m%d")
    s = summary_data_from_transaction_data(
        tx, "customer_id", "date", monetary_value_col="dollar_value", observation_period_end=end, freq="D"
    )
    bg = BetaGeoFitter().fit(s["frequency"], s["recency"], s["T"])
    repeaters = s[(s["frequency"] > 0) & (s["monetary_value"] > 0)]
    gg = GammaGammaFitter().fit(repeaters["frequency"], repeaters["monetary_value"])
    s["p_alive"] = bg.conditional_probability_alive(s["frequency"], s["recency"], s["T"])
    s["expected_purchases"] = bg.conditional_expected_number_of_purchases_up_to_time(
        365, s["frequency"], s["recency"], s["T"]
    )
    s["expected_average_spend"] = gg.conditional_expected_average_profit(s["frequency"], s["monetary_value"])
    s["clv"] = gg.customer_lifetime_value(
        bg, s["frequency"], s["recency"], s["T"], s["monetary_value"], time=12, discount_rate=0.10 / 12, freq="D"
    )
    s.sort_values("clv", ascending=False).reset_index().to_json(out, orient="records", force_ascii=False)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
