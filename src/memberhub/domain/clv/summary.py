"""Transactions -> the per-customer statistics the CLV models need (Polars).

Definitions follow Fader-Hardie and the `lifetimes` convention so figures are comparable:
purchases on the same calendar day are one purchase (amounts summed); the first purchase
opens the customer's history and is not counted;

* x (frequency): number of repeat purchase days,
* t_x (recency): time from the first to the last purchase,
* T (age): time from the first purchase to the end of observation,
* monetary: mean value of the repeat purchases (0 when x = 0), the Gamma-Gamma input.

Times are returned in units of `time_unit_days` (1 = days, 7 = weeks).  Transactions after
the observation end are ignored.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from memberhub.domain.clv._fitting import FloatArray


@dataclass(frozen=True)
class CustomerSummary:
    customer: pl.Series
    x: FloatArray
    t_x: FloatArray
    T: FloatArray
    monetary: FloatArray
    first_purchase: pl.Series
    observation_end: dt.date
    time_unit_days: float

    def __len__(self) -> int:
        return len(self.x)


def summarise(
    transactions: pl.DataFrame | pl.LazyFrame,
    *,
    customer: str = "customer",
    date: str = "date",
    amount: str | None = "amount",
    observation_end: dt.date | None = None,
    time_unit_days: float = 1.0,
) -> CustomerSummary:
    """`date` must be a Date (or Datetime, truncated to its day) column."""
    lf = transactions.lazy()
    day = pl.col(date).cast(pl.Date)
    value = pl.col(amount).cast(pl.Float64) if amount else pl.lit(0.0)
    lf = lf.select(pl.col(customer).alias("c"), day.alias("d"), value.alias("v"))
    if observation_end is None:
        end_value = lf.select(pl.col("d").max()).collect().item()
        if end_value is None:
            raise ValueError("no transactions")
        observation_end = end_value
    lf = lf.filter(pl.col("d") <= observation_end)
    daily = lf.group_by("c", "d").agg(pl.col("v").sum())
    per = (
        daily.group_by("c")
        .agg(
            pl.col("d").min().alias("first"),
            pl.col("d").max().alias("last"),
            pl.len().alias("n"),
            pl.col("v").sum().alias("total"),
            pl.col("v").sort_by("d").first().alias("first_v"),
        )
        .sort("c")
        .collect()
    )
    if per.height == 0:
        raise ValueError("no transactions on or before the observation end")
    end = pl.lit(observation_end, dtype=pl.Date)
    per = per.with_columns(
        ((pl.col("last") - pl.col("first")).dt.total_days()).alias("span"),
        ((end - pl.col("first")).dt.total_days()).alias("age"),
    )
    n = per["n"].to_numpy().astype(np.float64)
    x = n - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        monetary = np.where(
            x > 0, (per["total"].to_numpy() - per["first_v"].to_numpy()) / np.maximum(x, 1), 0.0
        )
    return CustomerSummary(
        customer=per["c"],
        x=x,
        t_x=per["span"].to_numpy().astype(np.float64) / time_unit_days,
        T=per["age"].to_numpy().astype(np.float64) / time_unit_days,
        monetary=monetary.astype(np.float64),
        first_purchase=per["first"],
        observation_end=observation_end,
        time_unit_days=time_unit_days,
    )
