"""RFM analysis: recency, frequency and monetary value per member, quintile scores and segments.

* Recency R: days from the member's last purchase in the window to the observation end
  (smaller is better).  Frequency F: purchases in the window.  Monetary M: total spend in the
  window (or the mean per purchase, `monetary="mean"`).
* Scores 1-5 are quintiles of each dimension over the members analysed, ranked with ties
  sharing their average rank so equal values always get equal scores; R is scored so the
  most recent buyers get 5.
* Segments are the eight classic ones (the 重要/一般 x 价值/发展/保持/挽留 grid): each dimension
  is "high" or "low" against a threshold, by default its average over the members analysed.
  R is high when recency <= threshold (bought at least as recently as average); F and M are
  high when >= threshold.  `RfmConfig.basis = "score"` compares the 1-5 scores with their
  averages instead of the raw values (less sensitive to a few very large spenders), and
  explicit thresholds override averages per dimension.

    R F M    segment
    H H H    重要价值客户      H L H    重要发展客户
    L H H    重要保持客户      L L H    重要挽留客户
    H H L    一般价值客户      H L L    一般发展客户
    L H L    一般保持客户      L L L    一般挽留客户

The per-member aggregation runs in Polars (column engine, multi-threaded); scoring is NumPy.
Amounts are floats here: analytics reads money for statistics, it never books it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
from numpy.typing import NDArray

SEGMENTS: dict[tuple[bool, bool, bool], str] = {
    (True, True, True): "重要价值客户",
    (True, False, True): "重要发展客户",
    (False, True, True): "重要保持客户",
    (False, False, True): "重要挽留客户",
    (True, True, False): "一般价值客户",
    (True, False, False): "一般发展客户",
    (False, True, False): "一般保持客户",
    (False, False, False): "一般挽留客户",
}
SEGMENT_ORDER: tuple[str, ...] = tuple(SEGMENTS.values())


@dataclass(frozen=True)
class RfmConfig:
    observation_end: dt.date | None = None  # default: the last transaction date
    window_days: int | None = None  # default: the whole history
    monetary: Literal["sum", "mean"] = "sum"
    basis: Literal["value", "score"] = "value"
    recency_threshold: float | None = None  # None: the average
    frequency_threshold: float | None = None
    monetary_threshold: float | None = None

    def __post_init__(self) -> None:
        if self.window_days is not None and self.window_days <= 0:
            raise ValueError("window_days must be positive")
        if self.monetary not in ("sum", "mean"):
            raise ValueError("monetary must be 'sum' or 'mean'")
        if self.basis not in ("value", "score"):
            raise ValueError("basis must be 'value' or 'score'")


@dataclass(frozen=True)
class RfmValues:
    customer: pl.Series
    recency: NDArray[np.float64]
    frequency: NDArray[np.float64]
    monetary: NDArray[np.float64]
    observation_end: dt.date


@dataclass(frozen=True)
class RfmResult:
    values: RfmValues
    r_score: NDArray[np.int8]
    f_score: NDArray[np.int8]
    m_score: NDArray[np.int8]
    segment: NDArray[np.str_]
    thresholds: tuple[float, float, float]  # R, F, M on the chosen basis

    def to_frame(self) -> pl.DataFrame:
        v = self.values
        return pl.DataFrame(
            {
                "customer": v.customer,
                "recency_days": v.recency,
                "frequency": v.frequency,
                "monetary": v.monetary,
                "r_score": self.r_score,
                "f_score": self.f_score,
                "m_score": self.m_score,
                "segment": self.segment,
            }
        )

    def segment_counts(self) -> dict[str, int]:
        names, counts = np.unique(self.segment, return_counts=True)
        found = dict(zip(names.tolist(), counts.tolist(), strict=True))
        return {name: int(found.get(name, 0)) for name in SEGMENT_ORDER}


def rfm_values(
    transactions: pl.DataFrame | pl.LazyFrame,
    *,
    customer: str = "customer",
    date: str = "date",
    amount: str = "amount",
    config: RfmConfig | None = None,
) -> RfmValues:
    """Aggregate transactions (a Date or Datetime `date` column) to one R, F, M row per member."""
    cfg = config or RfmConfig()
    lf = transactions.lazy().select(
        pl.col(customer).alias("c"),
        pl.col(date).cast(pl.Date).alias("d"),
        pl.col(amount).cast(pl.Float64).alias("v"),
    )
    end = cfg.observation_end
    if end is None:
        end = lf.select(pl.col("d").max()).collect().item()
        if end is None:
            raise ValueError("no transactions")
    keep = pl.col("d") <= end
    if cfg.window_days is not None:
        keep &= pl.col("d") > end - dt.timedelta(days=cfg.window_days)
    money = pl.col("v").sum() if cfg.monetary == "sum" else pl.col("v").mean()
    per = (
        lf.filter(keep)
        .group_by("c")
        .agg(pl.col("d").max().alias("last"), pl.len().alias("f"), money.alias("m"))
        .with_columns((pl.lit(end, dtype=pl.Date) - pl.col("last")).dt.total_days().alias("r"))
        .sort("c")
        .collect()
    )
    if per.height == 0:
        raise ValueError("no transactions in the window")
    return RfmValues(
        customer=per["c"],
        recency=per["r"].to_numpy().astype(np.float64),
        frequency=per["f"].to_numpy().astype(np.float64),
        monetary=per["m"].to_numpy().astype(np.float64),
        observation_end=end,
    )


def average_ranks(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Ranks 1..n, ties sharing the mean of their ranks (scipy.stats.rankdata's "average",
    without importing scipy.stats: half a second of every analytics command's start)."""
    order = np.argsort(values, kind="mergesort")
    ordered = np.asarray(values)[order]
    new_value = np.concatenate(([True], ordered[1:] != ordered[:-1]))
    group = np.cumsum(new_value) - 1
    last = np.cumsum(np.bincount(group))  # the rank of each tie group's last member
    first = last - np.bincount(group) + 1
    ranks = np.empty(len(ordered), dtype=np.float64)
    ranks[order] = ((first + last) / 2.0)[group]
    return ranks


def quintile_scores(values: NDArray[np.float64], *, higher_is_better: bool = True) -> NDArray[np.int8]:
    """1-5 by average rank, so ties share a score (a plain quantile cut would split them)."""
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=np.int8)
    ranks = average_ranks(values if higher_is_better else -values)
    return np.clip(np.ceil(5.0 * ranks / n), 1, 5).astype(np.int8)


def rfm_score(values: RfmValues, config: RfmConfig | None = None) -> RfmResult:
    cfg = config or RfmConfig()
    r_score = quintile_scores(values.recency, higher_is_better=False)
    f_score = quintile_scores(values.frequency)
    m_score = quintile_scores(values.monetary)
    if cfg.basis == "value":
        r_basis, f_basis, m_basis = values.recency, values.frequency, values.monetary
    else:
        # Negate R's score so "<= threshold" means "better than average" on both bases.
        r_basis, f_basis, m_basis = (
            -r_score.astype(np.float64),
            f_score.astype(np.float64),
            m_score.astype(np.float64),
        )
    r_t = _threshold(r_basis, cfg.recency_threshold, negate=cfg.basis == "score")
    f_t = _threshold(f_basis, cfg.frequency_threshold)
    m_t = _threshold(m_basis, cfg.monetary_threshold)
    r_high, f_high, m_high = r_basis <= r_t, f_basis >= f_t, m_basis >= m_t
    code = r_high.astype(np.int8) * 4 + f_high.astype(np.int8) * 2 + m_high.astype(np.int8)
    by_code = np.empty(8, dtype=object)
    for (r, f, m), name in SEGMENTS.items():
        by_code[int(r) * 4 + int(f) * 2 + int(m)] = name
    segment = by_code[code].astype(str)
    reported_r = -r_t if cfg.basis == "score" else r_t
    return RfmResult(values, r_score, f_score, m_score, segment, (float(reported_r), float(f_t), float(m_t)))


def _threshold(basis: NDArray[np.float64], explicit: float | None, *, negate: bool = False) -> float:
    if explicit is None:
        return float(np.mean(basis))
    return -float(explicit) if negate else float(explicit)


def rfm(
    transactions: pl.DataFrame | pl.LazyFrame,
    *,
    customer: str = "customer",
    date: str = "date",
    amount: str = "amount",
    config: RfmConfig | None = None,
) -> RfmResult:
    """Transactions in, scored and segmented members out."""
    values = rfm_values(transactions, customer=customer, date=date, amount=amount, config=config)
    return rfm_score(values, config)
