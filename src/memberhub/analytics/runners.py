"""The runners: a typed query and the transactions in, per-member figures and fitted params out.

No writes here: `services.run_execute` stores what these return. The per-member numbers
are exactly the domain functions' (`domain.rfm`, `domain.clv`) on the same transactions;
money is fen (floats inside the models, rounded to whole fen for storage).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from memberhub.analytics.queries import ClvQuery, RfmQuery
from memberhub.domain.clv import bgnbd, gammagamma, paretonbd
from memberhub.domain.clv._fitting import fit_or_regularise, fit_status, fit_warning
from memberhub.domain.clv.clv import customer_lifetime_value
from memberhub.domain.clv.lifecycle import Stage, lifecycle_stage
from memberhub.domain.clv.summary import summarise
from memberhub.domain.rfm import RfmConfig, rfm

SNAPSHOT_COLUMNS = (
    "member_id", "recency_days", "frequency", "monetary_fen", "r_score", "f_score", "m_score", "segment",
    "repeat_purchases", "expected_purchases", "p_alive", "expected_spend_fen", "clv_fen", "stage",
)


class NotFittable(ValueError):
    """The data cannot support the model (no purchases, no repeat purchases)."""


@dataclass
class Outcome:
    snapshots: pl.DataFrame  # SNAPSHOT_COLUMNS, one row per member to store
    fitted: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)


def finite(value: float) -> float | None:
    v = float(value)
    return v if math.isfinite(v) else None


def _transactions(purchases: pl.DataFrame) -> pl.DataFrame:
    """The domain functions' input: customer (member id), date, amount (fen)."""
    return purchases.select(
        pl.col("member").alias("customer"), pl.col("day").alias("date"), pl.col("net_fen").cast(pl.Float64).alias("amount")
    )


def _rfm_frame(transactions: pl.DataFrame, query: RfmQuery) -> tuple[pl.DataFrame, dict[str, Any]]:
    config = RfmConfig(observation_end=query.observation_end, window_days=query.window_days,
                       monetary=query.monetary, basis=query.basis)
    try:
        result = rfm(transactions, config=config)
    except ValueError as exc:
        raise NotFittable(str(exc)) from None
    v = result.values
    frame = pl.DataFrame({
        "member_id": v.customer.cast(pl.Int64),
        "recency_days": pl.Series(v.recency).cast(pl.Int64),
        "frequency": pl.Series(v.frequency).cast(pl.Int64),
        "monetary_fen": pl.Series(np.round(v.monetary)).cast(pl.Int64),
        "r_score": pl.Series(result.r_score).cast(pl.Int16),
        "f_score": pl.Series(result.f_score).cast(pl.Int16),
        "m_score": pl.Series(result.m_score).cast(pl.Int16),
        "segment": pl.Series(result.segment).cast(pl.Utf8),
    })
    r_t, f_t, m_t = result.thresholds
    info = {"thresholds": {"recency": r_t, "frequency": f_t, "monetary_fen": m_t},
            "segments": result.segment_counts(), "observation_end": v.observation_end.isoformat()}
    return frame, info


def _keep(frame: pl.DataFrame, purchases: pl.DataFrame) -> pl.DataFrame:
    """Drop erased members (model input only) and members without an id."""
    erased = purchases.filter(pl.col("erased")).select(pl.col("member").alias("member_id")).unique()
    return frame.filter(pl.col("member_id").is_not_null()).join(erased, on="member_id", how="anti")


def rfm_run(purchases: pl.DataFrame, query: RfmQuery) -> Outcome:
    transactions = _transactions(purchases)
    frame, info = _rfm_frame(transactions, query)
    frame = frame.with_columns(
        pl.lit(None, dtype=pl.Int64).alias("repeat_purchases"),
        pl.lit(None, dtype=pl.Float64).alias("expected_purchases"),
        pl.lit(None, dtype=pl.Float64).alias("p_alive"),
        pl.lit(None, dtype=pl.Int64).alias("expected_spend_fen"),
        pl.lit(None, dtype=pl.Int64).alias("clv_fen"),
        pl.lit("", dtype=pl.Utf8).alias("stage"),
    )
    stored = _keep(frame, purchases)
    counts = {"purchases": purchases.height, "members_analysed": frame.height, "snapshots": stored.height,
              "segments": info.pop("segments")}
    return Outcome(stored.select(SNAPSHOT_COLUMNS), fitted={"rfm": info}, counts=counts)


def clv_run(purchases: pl.DataFrame, query: ClvQuery) -> Outcome:
    """RFM plus the purchase model, Gamma-Gamma spend, discounted CLV and lifecycle stage."""
    transactions = _transactions(purchases)
    rfm_frame, rfm_info = _rfm_frame(transactions, query)
    unit = 7.0 if query.time_unit == "weeks" else 1.0
    try:
        s = summarise(transactions, observation_end=query.observation_end, time_unit_days=unit)
    except ValueError as exc:
        raise NotFittable(str(exc)) from None
    if not np.any(s.x > 0):
        raise NotFittable("no member has a repeat purchase, so purchase rates cannot be estimated")
    model: bgnbd.BgNbdFit | paretonbd.ParetoNbdFit = (
        fit_or_regularise(bgnbd.fit, s.x, s.t_x, s.T) if query.model == "bgnbd"
        else fit_or_regularise(paretonbd.fit, s.x, s.t_x, s.T))
    spend = fit_or_regularise(gammagamma.fit, s.x, s.monetary)
    for name, fit in ((query.model, model), ("gammagamma", spend)):
        if fit.degenerate:
            raise NotFittable(f"the {name} fit is degenerate even regularised ({fit.degenerate_reason}); "
                              "the data cannot support the model")
    expected = model.expected_purchases(query.horizon_days / unit, s.x, s.t_x, s.T)
    p_alive = model.p_alive(s.x, s.t_x, s.T)
    avg_spend = spend.expected_average_spend(s.x, s.monetary)
    value = customer_lifetime_value(model, s.x, s.t_x, s.T, avg_spend, horizon_days=query.horizon_days,
                                    annual_discount_rate=query.discount_rate, time_unit_days=unit,
                                    margin=query.margin)
    stage = lifecycle_stage(p_alive=p_alive, recency_days=(s.T - s.t_x) * unit, age_days=s.T * unit,
                            repeat_purchases=s.x)
    model_frame = pl.DataFrame({
        "member_id": s.customer.cast(pl.Int64),
        "repeat_purchases": pl.Series(s.x).cast(pl.Int64),
        "expected_purchases": pl.Series(expected, dtype=pl.Float64),
        "p_alive": pl.Series(p_alive, dtype=pl.Float64),
        "expected_spend_fen": _fen(avg_spend),
        "clv_fen": _fen(value),
        "stage": pl.Series(stage).cast(pl.Utf8),
    }).with_columns(pl.col("expected_purchases", "p_alive").fill_nan(None))
    missing = model_frame.filter(pl.any_horizontal(pl.col("expected_purchases", "p_alive", "clv_fen").is_null()))
    if missing.height:  # never a success with empty figures
        why = " (Gamma-Gamma q <= 1: the population mean spend is unbounded)" if spend.params.q <= 1 else ""
        raise NotFittable(f"the models give no finite P(alive), expected purchases or CLV for {missing.height} "
                          f"of {model_frame.height} members{why}")
    # With window_days, members who bought only before the window have no RFM row and are
    # left out, as in an RFM run with the same window (the model is still fitted on everyone).
    frame = rfm_frame.join(model_frame, on="member_id", how="inner")
    stored = _keep(frame, purchases)
    found = dict(zip(*np.unique(stage, return_counts=True), strict=True))
    fitted = {
        "rfm": {k: v for k, v in rfm_info.items() if k != "segments"},
        "purchase_model": {"name": query.model, **_fit_block(model.params.as_dict(), model.std_errors.as_dict(),
                                                              model.log_likelihood, model.converged,
                                                              model.n_customers), **fit_status(model)},
        "spend_model": {"name": "gammagamma", "population_mean_fen": finite(spend.population_mean),
                        **_fit_block(spend.params.as_dict(), spend.std_errors.as_dict(), spend.log_likelihood,
                                     spend.converged, spend.n_customers), **fit_status(spend)},
        "warnings": [w for w in (fit_warning(query.model, model), fit_warning("gammagamma", spend)) if w],
    }
    counts = {
        "purchases": purchases.height, "members_analysed": len(s), "snapshots": stored.height,
        "segments": rfm_info["segments"], "stages": {st.value: int(found.get(st.value, 0)) for st in Stage},
        "expected_purchases": finite(np.nansum(expected)), "clv_fen": int(stored["clv_fen"].sum() or 0),
    }
    return Outcome(stored.select(SNAPSHOT_COLUMNS), fitted=fitted, counts=counts)


def _fen(values: Any) -> pl.Series:
    """Whole fen; a non-finite value (Gamma-Gamma q <= 1: unbounded mean spend) is stored as null."""
    arr = np.asarray(values, dtype=np.float64)
    arr = np.where(np.isfinite(arr), np.round(arr), np.nan)
    return pl.Series(arr).fill_nan(None).cast(pl.Int64)


def _fit_block(params: dict[str, float], se: dict[str, float], ll: float, converged: bool, n: int) -> dict[str, Any]:
    return {"params": {k: finite(v) for k, v in params.items()}, "std_errors": {k: finite(v) for k, v in se.items()},
            "log_likelihood": finite(ll), "converged": bool(converged), "n_customers": int(n)}
