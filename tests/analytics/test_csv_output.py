"""The fast paths of `analytics clv --from-csv` give what the slow ones gave: the customers
written by Polars in one call parse to exactly the stdlib's encoding of the same rows, and CLV
computed once per distinct history equals CLV computed customer by customer."""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import math

import numpy as np

from memberhub.analytics.csv_io import CsvSpec, read_transactions
from memberhub.analytics.csv_report import clv_report, write_json
from memberhub.domain.clv import bgnbd
from memberhub.domain.clv.clv import customer_lifetime_value
from memberhub.domain.clv.summary import summarise
from tests.analytics.test_csv_cli import DATA


def _cdnow() -> object:
    return read_transactions(CsvSpec(DATA / "CDNOW_master.txt", "customer_id", "date", "dollar_value",
                                     sep="whitespace", date_format="%Y%m%d"))


def test_polars_json_equals_the_stdlib_encoding_of_every_customer() -> None:
    args = argparse.Namespace(model="bgnbd", time_unit="days", horizon_days=365.0, discount_rate=0.1, margin=1.0)
    report = clv_report(_cdnow(), args, dt.date(1998, 6, 30), warn=io.StringIO())  # type: ignore[arg-type]
    out = io.StringIO()
    write_json(report, out)
    rows = [{k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in row.items()}
            for row in report["customers"].to_dicts()]
    expected = json.loads(json.dumps({**report, "customers": rows}, ensure_ascii=False, allow_nan=False))
    assert json.loads(out.getvalue()) == expected and len(expected["customers"]) == 23_570


def test_clv_per_distinct_history_equals_clv_per_customer() -> None:
    s = summarise(_cdnow(), observation_end=dt.date(1998, 6, 30))  # type: ignore[arg-type]
    model = bgnbd.fit(s.x, s.t_x, s.T)
    spend = np.linspace(10, 100, len(s))
    value = np.zeros(len(s))
    previous = np.zeros(len(s))
    for edge in (*range(30, 365, 30), 365):
        cumulative = model.expected_purchases(float(edge), s.x, s.t_x, s.T)
        value += (cumulative - previous) * 1.1 ** (-edge / 365.0)
        previous = cumulative
    got = customer_lifetime_value(model, s.x, s.t_x, s.T, spend, horizon_days=365, annual_discount_rate=0.1)
    np.testing.assert_allclose(got, spend * value, rtol=1e-12)
