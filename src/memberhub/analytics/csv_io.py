"""Reading an analyst's transactions export (CSV or whitespace-separated) into a clean frame.

Every problem with the file becomes an `InputError` whose message names the file, the
column and the first offending row, so the CLI can print it and exit non-zero.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import polars as pl

WHITESPACE_SEPS = {"whitespace", "space", " ", r"\s+"}


class InputError(Exception):
    """A problem with the user's input that deserves a one-line message, not a traceback."""


@dataclass(frozen=True)
class CsvSpec:
    path: Path
    customer_col: str
    date_col: str
    amount_col: str
    sep: str = ","
    date_format: str | None = None
    drop_negative: bool = False


def parse_date(text: str, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{what}: '{text}' is not a date in YYYY-MM-DD form") from None


def read_transactions(spec: CsvSpec) -> pl.DataFrame:
    """Columns customer (str), date (Date), amount (Float64); rows in file order."""
    if not spec.path.is_file():
        raise InputError(f"{spec.path}: no such file")
    raw = _read_whitespace(spec.path) if spec.sep in WHITESPACE_SEPS else _read_delimited(spec)
    if raw.height == 0:
        raise InputError(f"{spec.path}: no data rows")
    missing = [c for c in (spec.customer_col, spec.date_col, spec.amount_col) if c not in raw.columns]
    if missing:
        have = ", ".join(raw.columns)
        raise InputError(f"{spec.path}: column(s) {', '.join(missing)} not found; the file has: {have}")
    frame = raw.select(
        pl.col(spec.customer_col).str.strip_chars().alias("customer"),
        pl.col(spec.date_col).str.strip_chars().alias("date_text"),
        pl.col(spec.amount_col).str.strip_chars().alias("amount_text"),
    ).with_row_index("row", offset=2)  # file line number: the header is line 1
    empty_id = frame.filter(pl.col("customer").is_null() | (pl.col("customer") == ""))
    if empty_id.height:
        raise InputError(f"{spec.path}: line {empty_id['row'][0]}: empty {spec.customer_col}")
    frame = frame.with_columns(
        _date_expr(spec.date_format).alias("date"),
        pl.col("amount_text").cast(pl.Float64, strict=False).alias("amount"),
    )
    bad_date = frame.filter(pl.col("date").is_null())
    if bad_date.height:
        row = bad_date.row(0, named=True)
        fmt = spec.date_format or "an ISO date (YYYY-MM-DD); pass --date-format"
        raise InputError(
            f"{spec.path}: line {row['row']}: cannot read {spec.date_col} '{row['date_text']}' as {fmt}"
        )
    bad_amount = frame.filter(
        pl.col("amount").is_null() | pl.col("amount").is_nan() | pl.col("amount").is_infinite()
    )
    if bad_amount.height:
        row = bad_amount.row(0, named=True)
        raise InputError(
            f"{spec.path}: line {row['row']}: {spec.amount_col} '{row['amount_text']}' is not a number"
        )
    negative = frame.filter(pl.col("amount") < 0)
    if negative.height and not spec.drop_negative:
        row = negative.row(0, named=True)
        raise InputError(
            f"{spec.path}: {negative.height} row(s) with a negative {spec.amount_col} (first at line {row['row']}: "
            f"{row['amount_text']}); refunds are not purchases: remove them or pass --drop-negative"
        )
    out = frame.filter(pl.col("amount") >= 0).select("customer", "date", "amount")
    if out.height == 0:
        raise InputError(f"{spec.path}: no rows left after dropping negative amounts")
    return out


def _date_expr(date_format: str | None) -> pl.Expr:
    text = pl.col("date_text")
    if date_format is None:
        # ISO dates, or ISO date-times truncated to their day.
        return pl.coalesce(
            text.str.to_date("%Y-%m-%d", strict=False), text.str.to_datetime(strict=False).dt.date()
        )
    if any(code in date_format for code in ("%H", "%M", "%S", "%T", "%I", "%p", "%z")):
        return text.str.to_datetime(date_format, strict=False).dt.date()
    return text.str.to_date(date_format, strict=False)


def _read_delimited(spec: CsvSpec) -> pl.DataFrame:
    sep = "\t" if spec.sep in ("\\t", "tab") else spec.sep
    if len(sep.encode()) != 1:
        raise InputError(f"--sep must be one character, 'tab' or 'whitespace' (got {spec.sep!r})")
    try:
        return pl.read_csv(spec.path, separator=sep, infer_schema=False, truncate_ragged_lines=False)
    except (pl.exceptions.PolarsError, UnicodeDecodeError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{spec.path}: cannot read as a '{sep}'-separated file: {first}") from None


def _read_whitespace(path: Path) -> pl.DataFrame:
    """Columns separated by runs of spaces or tabs (e.g. CDNOW_master.txt); no quoting."""
    try:
        lines = pl.read_csv(
            path,
            has_header=False,
            separator="\x1f",
            quote_char=None,
            new_columns=["line"],
            infer_schema=False,
        )["line"]
    except (pl.exceptions.PolarsError, UnicodeDecodeError, OSError) as exc:
        raise InputError(f"{path}: cannot read: {str(exc).strip().splitlines()[0]}") from None
    fields = lines.str.strip_chars().str.replace_all(r"\s+", " ").str.split(" ")
    frame = pl.DataFrame({"f": fields, "n": fields.list.len()}).filter(pl.col("f").list.first() != "")
    if frame.height == 0:
        return pl.DataFrame()
    header = frame["f"][0].to_list()
    body = frame.slice(1).with_row_index("line", offset=2)
    ragged = body.filter(pl.col("n") != len(header))
    if ragged.height:
        raise InputError(
            f"{path}: line {ragged['line'][0]} has {ragged['n'][0]} fields, the header has {len(header)}"
        )
    return body.select(pl.col("f").list.get(i).alias(name) for i, name in enumerate(header))
