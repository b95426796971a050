"""Build the rfm/clv reports (plain dicts, JSON-ready) and render them as rich tables."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import polars as pl

from memberhub.domain.clv import bgnbd, gammagamma, paretonbd
from memberhub.domain.clv._fitting import fit_or_regularise, fit_status, fit_warning
from memberhub.domain.clv.clv import customer_lifetime_value
from memberhub.domain.clv.lifecycle import Stage, lifecycle_stage
from memberhub.domain.clv.summary import summarise
from memberhub.domain.rfm import RfmConfig, rfm

if TYPE_CHECKING:
    from rich.console import Console

Report = dict[str, Any]


def _finite_or_null(frame: pl.DataFrame) -> pl.DataFrame:
    """JSON has no NaN/inf: float columns carry them as null."""
    floats = [name for name, dtype in frame.schema.items() if dtype.is_float()]
    return frame.with_columns(pl.when(pl.col(c).is_finite()).then(pl.col(c)).alias(c) for c in floats)


def write_json(report: Report, out: IO[str]) -> None:
    """The report as one JSON object; the customers (a frame) are written by Polars in one
    call, which is what makes a 23,570-customer report take milliseconds, not seconds."""
    head = json.dumps({k: v for k, v in report.items() if k != "customers"}, ensure_ascii=False, indent=1,
                      allow_nan=False)
    out.write(head[:-2] + ',\n "customers": ')  # head ends with "\n}"
    out.write(report["customers"].write_json())
    out.write("\n}\n")


def _rows(report: Report, limit: int) -> list[dict[str, Any]]:
    frame: pl.DataFrame = report["customers"]
    return (frame if limit == 0 else frame.head(limit)).to_dicts()


def _num(value: float) -> float | None:
    """JSON has no NaN/inf: report them as null."""
    v = float(value)
    return v if math.isfinite(v) else None


def rfm_report(transactions: pl.DataFrame, args: argparse.Namespace, end: dt.date | None) -> Report:
    config = RfmConfig(
        observation_end=end,
        window_days=args.window_days,
        monetary=args.monetary,
        basis=args.basis,
        recency_threshold=args.r_threshold,
        frequency_threshold=args.f_threshold,
        monetary_threshold=args.m_threshold,
    )
    result = rfm(transactions, config=config)
    frame = result.to_frame().sort(["monetary", "customer"], descending=[True, False])
    r_t, f_t, m_t = result.thresholds
    return {
        "command": "rfm",
        "observation_end": result.values.observation_end.isoformat(),
        "window_days": args.window_days,
        "monetary": args.monetary,
        "basis": args.basis,
        "thresholds": {"recency": r_t, "frequency": f_t, "monetary": m_t},
        "n_customers": frame.height,
        "segments": result.segment_counts(),
        "customers": _finite_or_null(frame),
    }


def clv_report(
    transactions: pl.DataFrame, args: argparse.Namespace, end: dt.date | None, *, warn: IO[str]
) -> Report:
    unit = 7.0 if args.time_unit == "weeks" else 1.0
    s = summarise(
        transactions,
        customer="customer",
        date="date",
        amount="amount",
        observation_end=end,
        time_unit_days=unit,
    )
    if not np.any(s.x > 0):
        raise ValueError("no customer has a repeat purchase, so purchase rates cannot be estimated")
    model: bgnbd.BgNbdFit | paretonbd.ParetoNbdFit = (
        fit_or_regularise(bgnbd.fit, s.x, s.t_x, s.T) if args.model == "bgnbd"
        else fit_or_regularise(paretonbd.fit, s.x, s.t_x, s.T))
    spend = fit_or_regularise(gammagamma.fit, s.x, s.monetary)
    for name, fit in ((args.model, model), ("gammagamma", spend)):
        if fit.degenerate:
            raise ValueError(f"the {name} fit is degenerate even regularised ({fit.degenerate_reason})")
        if fit.penalty:
            warn.write(f"warning: {fit_warning(name, fit)}\n")
    if spend.params.q <= 1:
        warn.write(
            "warning: Gamma-Gamma q <= 1: the population mean spend is unbounded; customers without repeat purchases get no spend estimate\n"
        )
    if not (model.converged and spend.converged):
        warn.write("warning: the optimiser did not report convergence; treat the parameters with care\n")
    horizon = args.horizon_days / unit
    expected = model.expected_purchases(horizon, s.x, s.t_x, s.T)
    p_alive = model.p_alive(s.x, s.t_x, s.T)
    avg_spend = spend.expected_average_spend(s.x, s.monetary)
    value = customer_lifetime_value(
        model,
        s.x,
        s.t_x,
        s.T,
        avg_spend,
        horizon_days=args.horizon_days,
        annual_discount_rate=args.discount_rate,
        time_unit_days=unit,
        margin=args.margin,
    )
    stage = lifecycle_stage(
        p_alive=p_alive, recency_days=(s.T - s.t_x) * unit, age_days=s.T * unit, repeat_purchases=s.x
    )
    frame = pl.DataFrame(
        {
            "customer": s.customer,
            "x": s.x,
            "t_x": s.t_x,
            "T": s.T,
            "monetary": s.monetary,
            "p_alive": p_alive,
            "expected_purchases": expected,
            "expected_average_spend": avg_spend,
            "clv": value,
            "stage": stage,
        }
    ).sort(["clv", "customer"], descending=[True, False], nulls_last=True)
    customers = _finite_or_null(frame)
    stages, counts = np.unique(stage, return_counts=True)
    found = dict(zip(stages.tolist(), counts.tolist(), strict=True))
    return {
        "command": "clv",
        "model": args.model,
        "time_unit": args.time_unit,
        "observation_end": s.observation_end.isoformat(),
        "horizon_days": args.horizon_days,
        "discount_rate": args.discount_rate,
        "margin": args.margin,
        "n_customers": len(s),
        "purchase_model": _fit_block(
            model.params.as_dict(),
            model.std_errors.as_dict(),
            model.log_likelihood,
            model.converged,
            model.n_customers,
        )
        | fit_status(model),
        "spend_model": {
            "name": "gammagamma",
            **_fit_block(
                spend.params.as_dict(),
                spend.std_errors.as_dict(),
                spend.log_likelihood,
                spend.converged,
                spend.n_customers,
            ),
            **fit_status(spend),
        },
        "stages": {st.value: int(found.get(st.value, 0)) for st in Stage},
        "totals": {"expected_purchases": _num(expected.sum()), "clv": _num(np.nansum(value))},
        "customers": customers,
    }


def _fit_block(params: dict[str, float], se: dict[str, float], ll: float, converged: bool, n: int) -> Report:
    return {
        "params": {k: _num(v) for k, v in params.items()},
        "std_errors": {k: _num(v) for k, v in se.items()},
        "log_likelihood": _num(ll),
        "converged": converged,
        "n_customers": n,
    }


def _console(out: IO[str]) -> Console:
    from rich.console import Console  # tables only: JSON output never loads rich

    return Console(file=out, width=120, soft_wrap=False, highlight=False)


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return str(v)


def print_rfm_table(report: Report, out: IO[str], limit: int) -> None:
    from rich.markup import escape
    from rich.table import Table

    con = _console(out)
    window = f", last {report['window_days']} days" if report["window_days"] else ""
    con.print(
        f"RFM: {report['n_customers']:,} customers, observation end {report['observation_end']}{window}"
    )
    t = report["thresholds"]
    con.print(
        f"thresholds ({report['basis']}): R <= {t['recency']:.2f}, F >= {t['frequency']:.2f}, M >= {t['monetary']:.2f}"
    )
    seg = Table(title="Segments")
    for col in ("segment", "customers", "share"):
        seg.add_column(col, justify="left" if col == "segment" else "right")
    for name, count in report["segments"].items():
        seg.add_row(name, f"{count:,}", f"{count / report['n_customers']:.1%}")
    con.print(seg)
    rows = _rows(report, limit)
    tab = Table(title=f"Customers by monetary value (top {len(rows)} of {report['n_customers']:,})")
    for col in ("customer", "recency_days", "frequency", "monetary", "R", "F", "M", "segment"):
        tab.add_column(col, justify="left" if col in ("customer", "segment") else "right")
    for r in rows:
        tab.add_row(
            escape(str(r["customer"])),
            _fmt(r["recency_days"], 0),
            _fmt(r["frequency"], 0),
            _fmt(r["monetary"]),
            str(r["r_score"]),
            str(r["f_score"]),
            str(r["m_score"]),
            r["segment"],
        )
    con.print(tab)


def print_clv_table(report: Report, out: IO[str], limit: int) -> None:
    from rich.markup import escape
    from rich.table import Table

    con = _console(out)
    con.print(
        f"CLV ({report['model']} + gamma-gamma): {report['n_customers']:,} customers, observation end "
        f"{report['observation_end']}, horizon {report['horizon_days']:g} days, discount {report['discount_rate']:.1%}/year, "
        f"times in {report['time_unit']}"
    )
    params = Table(title="Fitted parameters")
    for col in ("model", "parameter", "value", "std. error"):
        params.add_column(col, justify="left" if col in ("model", "parameter") else "right")
    for label, block in ((report["model"], report["purchase_model"]), ("gammagamma", report["spend_model"])):
        for k, v in block["params"].items():
            params.add_row(label, k, _fmt(v, 4), _fmt(block["std_errors"][k], 4))
        params.add_row(label, "log-likelihood", _fmt(block["log_likelihood"], 3), "")
    con.print(params)
    con.print("stages: " + ", ".join(f"{k} {v:,}" for k, v in report["stages"].items()))
    rows = _rows(report, limit)
    tab = Table(title=f"Customers by CLV (top {len(rows)} of {report['n_customers']:,})")
    for col in ("customer", "x", "t_x", "T", "P(alive)", "E[purchases]", "E[spend]", "CLV", "stage"):
        tab.add_column(escape(col), justify="left" if col in ("customer", "stage") else "right")
    for r in rows:
        tab.add_row(
            escape(str(r["customer"])),
            _fmt(r["x"], 0),
            _fmt(r["t_x"], 1),
            _fmt(r["T"], 1),
            _fmt(r["p_alive"], 3),
            _fmt(r["expected_purchases"], 3),
            _fmt(r["expected_average_spend"]),
            _fmt(r["clv"]),
            r["stage"],
        )
    con.print(tab)
