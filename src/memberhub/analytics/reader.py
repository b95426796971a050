"""Reading purchases and members in bulk: one SQL query each, straight into Polars.

Rows are fetched as plain tuples of integers (times as epoch seconds, computed by the
database), so a million purchases cost one round trip and no model instances. Then:

* net paid = paid_fen - refunded_fen; a purchase refunded in full (net <= 0) is not a
  purchase for analytics and is dropped; a partial refund counts at its net amount;
* a merged member's purchases are folded into the survivor, following `merged_into` to
  the end of the chain (the loyalty merge moves them too; this also covers history that
  was loaded before the merge hook existed);
* erased members are kept, anonymously, as model input (they are real sales and dropping
  them would shift everyone else's scores); `erased` marks them so no per-member row is
  ever written for them.

Days are calendar days in the programme's time zone (settings.TIME_ZONE).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import polars as pl
from django.conf import settings
from django.db import connection

FETCH = 100_000


def _epoch(column: str) -> str:
    if connection.vendor == "postgresql":
        return f"CAST(FLOOR(EXTRACT(EPOCH FROM {column})) AS BIGINT)"
    return f"CAST(strftime('%%s', {column}) AS INTEGER)"


def _param(value: dt.datetime) -> Any:
    """A datetime as the backend compares it (SQLite stores naive UTC text)."""
    return connection.ops.adapt_datetimefield_value(value)


def _fetch(sql: str, params: Sequence[Any], schema: dict[str, Any]) -> pl.DataFrame:
    frames = []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(FETCH):
            frames.append(pl.DataFrame(rows, schema=schema, orient="row"))
    if not frames:
        return pl.DataFrame(schema=schema)
    return pl.concat(frames, rechunk=True)


def _local_day(epoch_col: str) -> pl.Expr:
    return (
        pl.from_epoch(pl.col(epoch_col), time_unit="s")
        .dt.replace_time_zone("UTC")
        .dt.convert_time_zone(settings.TIME_ZONE)
        .dt.date()
    )


def members_frame() -> pl.DataFrame:
    """Every member: id, survivor (after following merges), status, home store, join day."""
    from memberhub.members.models import Member

    table = Member._meta.db_table
    raw = _fetch(
        f"SELECT id, merged_into_id, status, home_store_id, {_epoch('registered_at')} FROM {table}",
        (),
        {"id": pl.Int64, "merged_into": pl.Int64, "status": pl.Utf8, "home_store": pl.Int64, "registered": pl.Int64},
    )
    return raw.with_columns(
        survivor=_survivors(raw),
        joined=_local_day("registered"),
    ).drop("registered")


def _survivors(members: pl.DataFrame) -> pl.Expr:
    """Follow merged_into to the member that absorbed everyone in the chain."""
    merged = members.filter(pl.col("merged_into").is_not_null())
    target = dict(zip(merged["id"].to_list(), merged["merged_into"].to_list(), strict=True))
    resolved: dict[int, int] = {}
    for member_id in target:
        seen, current = {member_id}, member_id
        while (nxt := target.get(current)) is not None and nxt not in seen:  # a cycle would be a bug; stop
            seen.add(nxt)
            current = nxt
        resolved[member_id] = current
    return pl.col("id").replace(resolved) if resolved else pl.col("id")


def purchases_frame(
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    members: pl.DataFrame | None = None,
    store_ids: Iterable[int] | None = None,
    channel: str | None = None,
    members_only: bool = True,
) -> pl.DataFrame:
    """Purchases with net > 0 in [start, end): member (the survivor), day, net_fen, store, channel.

    `erased` is true when the (surviving) member is erased."""
    from memberhub.loyalty.models import Purchase

    where, params = ["paid_fen - refunded_fen > 0"], []
    if members_only:
        where.append("member_id IS NOT NULL")
    if start is not None:
        where.append("at >= %s")
        params.append(_param(start))
    if end is not None:
        where.append("at < %s")
        params.append(_param(end))
    if store_ids is not None:
        ids = sorted({int(i) for i in store_ids})
        if not ids:
            where.append("1 = 0")
        else:
            where.append(f"store_id IN ({', '.join(['%s'] * len(ids))})")
            params.extend(ids)
    if channel is not None:
        where.append("channel = %s")
        params.append(channel)
    sql = (
        f"SELECT id, member_id, {_epoch('at')}, paid_fen - refunded_fen, store_id, channel "
        f"FROM {Purchase._meta.db_table} WHERE {' AND '.join(where)}"
    )
    raw = _fetch(sql, params, {"purchase": pl.Int64, "member_raw": pl.Int64, "at": pl.Int64, "net_fen": pl.Int64,
                               "store": pl.Int64, "channel": pl.Utf8})
    frame = raw.with_columns(day=_local_day("at"))
    members = members if members is not None else members_frame()
    fold = members.select(pl.col("id").alias("member_raw"), pl.col("survivor").alias("member"))
    status = members.select(pl.col("id").alias("member"), (pl.col("status") == "erased").alias("erased"))
    return (
        frame.join(fold, on="member_raw", how="left")
        .join(status, on="member", how="left")
        .with_columns(pl.col("erased").fill_null(False))
        .drop("member_raw")
    )


def local_midnight(day: dt.date) -> dt.datetime:
    """The start of a calendar day in the programme's time zone, as an aware datetime."""
    from zoneinfo import ZoneInfo

    return dt.datetime.combine(day, dt.time.min, tzinfo=ZoneInfo(settings.TIME_ZONE))


def local_today() -> dt.date:
    from django.utils import timezone

    return timezone.localdate()
