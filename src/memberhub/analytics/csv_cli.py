"""`memberhub analytics rfm|clv --from-csv FILE ...`: the analytics models on any transactions export.

No database and no Django: an analyst points it at a CSV (or whitespace-separated) file of
purchases and gets a table (rich) or JSON with the fitted parameters and one row per
customer.  `run()` is what the Django management command calls; `python -m
memberhub.analytics.csv_cli rfm --from-csv ...` runs it directly.

Exit codes: 0 success, 2 bad arguments or bad input (message on stderr), 3 a model that
could not be fitted to this data.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, NoReturn


class _Exit(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


class _Parser(argparse.ArgumentParser):
    """argparse that writes to the streams it is given and never calls sys.exit."""

    out: IO[str]
    err: IO[str]

    def _print_message(self, message: str, file: Any = None) -> None:
        if message:
            (self.err if file is sys.stderr else self.out).write(message)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            self.err.write(message)
        raise _Exit(status)

    def error(self, message: str) -> NoReturn:
        self.err.write(self.format_usage())
        self.exit(2, f"{self.prog}: error: {message}\n")


def _build_parser(stdout: IO[str], stderr: IO[str]) -> _Parser:
    def make(**kwargs: Any) -> _Parser:
        p = _Parser(**kwargs)
        p.out, p.err = stdout, stderr
        return p

    parser = make(
        prog="memberhub analytics",
        description="RFM segments and customer lifetime value from a transactions file.",
    )
    subs = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    common = make(add_help=False)
    src = common.add_argument_group("input")
    src.add_argument(
        "--from-csv", type=Path, required=True, metavar="FILE", help="transactions file, one purchase per row"
    )
    src.add_argument(
        "--customer-col", default="customer_id", help="customer id column (default: customer_id)"
    )
    src.add_argument("--date-col", default="date", help="purchase date column (default: date)")
    src.add_argument("--amount-col", default="amount", help="purchase value column (default: amount)")
    src.add_argument(
        "--date-format", help="strftime format of the dates, e.g. %%Y%%m%%d (default: ISO dates)"
    )
    src.add_argument(
        "--sep", default=",", help="field separator: one character, 'tab' or 'whitespace' (default: ,)"
    )
    src.add_argument(
        "--drop-negative",
        action="store_true",
        help="skip rows with a negative amount (refunds) instead of failing",
    )
    src.add_argument(
        "--observation-end", help="YYYY-MM-DD; later purchases are ignored (default: the last purchase date)"
    )
    common.add_argument(
        "--format", choices=("table", "json"), default="table", help="output format (default: table)"
    )
    common.add_argument(
        "--limit", type=int, default=20, help="customer rows shown in the table (default 20, 0 for all)"
    )
    rfm = subs.add_parser("rfm", parents=[common], help="recency/frequency/monetary scores and segments")
    rfm.out, rfm.err = stdout, stderr
    rfm.add_argument(
        "--window-days", type=_positive_int, help="only purchases in the last N days (default: all)"
    )
    rfm.add_argument(
        "--monetary", choices=("sum", "mean"), default="sum", help="total or mean spend (default: sum)"
    )
    rfm.add_argument(
        "--basis",
        choices=("value", "score"),
        default="value",
        help="compare values or 1-5 scores with the thresholds",
    )
    rfm.add_argument("--r-threshold", type=float, help="recency threshold (default: the average)")
    rfm.add_argument("--f-threshold", type=float, help="frequency threshold (default: the average)")
    rfm.add_argument("--m-threshold", type=float, help="monetary threshold (default: the average)")
    clv = subs.add_parser("clv", parents=[common], help="BG/NBD or Pareto/NBD + Gamma-Gamma lifetime value")
    clv.out, clv.err = stdout, stderr
    clv.add_argument(
        "--model", choices=("bgnbd", "paretonbd"), default="bgnbd", help="purchase model (default: bgnbd)"
    )
    clv.add_argument(
        "--horizon-days",
        type=_positive_float,
        default=365.0,
        help="CLV and expected purchases horizon (default 365)",
    )
    clv.add_argument("--discount-rate", type=float, default=0.10, help="annual discount rate (default 0.10)")
    clv.add_argument(
        "--time-unit",
        choices=("days", "weeks"),
        default="days",
        help="unit the models are fitted in (default days)",
    )
    clv.add_argument(
        "--margin", type=float, default=1.0, help="profit margin applied to spend in CLV (default 1.0)"
    )
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError("must be a positive number")
    return value


def run(argv: Sequence[str], stdout: IO[str], stderr: IO[str]) -> int:
    parser = _build_parser(stdout, stderr)
    try:
        args = parser.parse_args(list(argv))
    except _Exit as stop:
        return stop.status
    # The libraries load once the arguments are good: `--help` and a typo answer at once.
    # The models' linear algebra is on vectors of a few parameters: a BLAS thread pool only
    # adds wake-ups (set before NumPy loads; a no-op when it is loaded already).
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    import numpy as np

    from memberhub.analytics.csv_io import CsvSpec, InputError, parse_date, read_transactions
    from memberhub.analytics.csv_report import (
        clv_report,
        print_clv_table,
        print_rfm_table,
        rfm_report,
        write_json,
    )

    try:
        if args.command == "clv" and args.discount_rate <= -1:
            raise InputError("--discount-rate must be greater than -1")
        spec = CsvSpec(
            path=args.from_csv,
            customer_col=args.customer_col,
            date_col=args.date_col,
            amount_col=args.amount_col,
            sep=args.sep,
            date_format=args.date_format,
            drop_negative=args.drop_negative,
        )
        end = parse_date(args.observation_end, "--observation-end") if args.observation_end else None
        transactions = read_transactions(spec)
        if end is not None and transactions.filter(transactions["date"] <= end).height == 0:
            raise InputError(f"no purchases on or before --observation-end {end}")
        if args.command == "rfm":
            report = rfm_report(transactions, args, end)
        else:
            report = clv_report(transactions, args, end, warn=stderr)
    except InputError as exc:
        stderr.write(f"error: {exc}\n")
        return 2
    except (ValueError, FloatingPointError, np.linalg.LinAlgError) as exc:
        stderr.write(f"error: the {args.command} model could not be computed on this data: {exc}\n")
        return 3
    if args.format == "json":
        write_json(report, stdout)
    elif args.command == "rfm":
        print_rfm_table(report, stdout, args.limit)
    else:
        print_clv_table(report, stdout, args.limit)
    return 0


def main() -> None:
    sys.exit(run(sys.argv[1:], sys.stdout, sys.stderr))


if __name__ == "__main__":
    main()
