"""Bulk import of purchases from CSV, Excel or the CDNOW text format: streamed in chunks,
idempotent (an order number already recorded is `existing`), with a report of rejected rows.

Row shapes:
- one row per order line with headers `order_no, channel, store, at, member, sku, category,
  qty, unit_price, paid` (or the Chinese aliases below; amounts in yuan, or `*_fen`
  columns in fen). Rows of one order must be consecutive.
- CDNOW (`customer_id date number_of_cds dollar_value`, whitespace separated): one
  purchase per row, online, at 12:00 local on the date, amount ×100 as fen. The
  customers are not members: each purchase keeps `external_ref = "<source>:<customer_id>"`
  and is imported unclaimed (no points), or with `create_members` a placeholder member
  per customer (no phone; `import_key = "ext:<source>:<customer_id>"`) is created and the
  purchase earns points through the same ledger code as the till.
Order numbers for CDNOW rows are `<source>-<customer>-<date>-<n>` (n-th purchase of that
customer that day in the file), so importing the same file again changes nothing.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from itertools import chain
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from memberhub.access.principal import Principal
from memberhub.access.roles import Cap
from memberhub.audit.models import AuditEntry
from memberhub.core.errors import ApplicationError
from memberhub.core.rows import execute as sql_execute
from memberhub.domain.errors import DomainError
from memberhub.domain.member_identity import card_code_new
from memberhub.loyalty.models import Purchase, PurchaseLine
from memberhub.loyalty.programme import rules_current
from memberhub.loyalty.purchases import LineInput, PurchaseInput, purchase_record
from memberhub.members.models import Member
from memberhub.stores.models import Store

CHUNK = 5000
MAX_REPORTED = 1000
ALIASES = {
    "order_no": ("order_no", "订单号", "单号"),
    "channel": ("channel", "渠道"),
    "store": ("store", "门店", "门店编码"),
    "at": ("at", "date", "time", "时间", "日期", "下单时间"),
    "member": ("member", "phone", "card", "会员", "手机号", "会员卡号"),
    "member_id": ("member_id", "会员ID"),
    "sku": ("sku", "商品编码"),
    "category": ("category", "品类"),
    "qty": ("qty", "quantity", "数量"),
    "unit_price": ("unit_price", "单价"),
    "unit_price_fen": ("unit_price_fen",),
    "paid": ("paid", "实付", "实付金额"),
    "paid_fen": ("paid_fen",),
    "line_id": ("line_id", "行号"),
}
_CDNOW = ("customer_id", "date", "number_of_cds", "dollar_value")


@dataclass
class OrdersImportReport:
    total: int = 0
    created: int = 0
    existing: int = 0
    rejected: int = 0
    members_created: int = 0
    rejections: list[dict[str, Any]] = field(default_factory=list)

    def reject(self, row: int, code: str, message: str = "") -> None:
        self.rejected += 1
        if len(self.rejections) < MAX_REPORTED:
            self.rejections.append({"row": row, "code": code, "message": message})

    def as_dict(self) -> dict[str, Any]:
        return {"total": self.total, "created": self.created, "existing": self.existing, "rejected": self.rejected,
                "members_created": self.members_created, "rejections": self.rejections,
                "rejections_truncated": self.rejected > len(self.rejections)}


@dataclass(slots=True)
class _Order:
    row: int
    rows: int
    channel: str
    order_no: str
    at: datetime
    store: str | None
    member: str | None
    member_id: int | None
    external: str | None
    lines: list[LineInput]

    # one-line orders (most, and every CDNOW row) without a generator: an import asks each order
    @property
    def paid_fen(self) -> int:
        lines = self.lines
        return lines[0].paid_fen if len(lines) == 1 else sum([line.paid_fen for line in lines])

    @property
    def total_fen(self) -> int:
        """The list price (quantity × unit price), or what was paid when no unit price is given."""
        lines = self.lines
        listed = lines[0].qty * (lines[0].unit_price_fen or 0) if len(lines) == 1 else \
            sum([line.qty * (line.unit_price_fen or 0) for line in lines])
        return listed or self.paid_fen


class _Bad(Exception):
    def __init__(self, code: str, message: str = "") -> None:
        self.code, self.message = code, message


def columns_missing(keys: list[str]) -> list[str]:
    """The columns a purchases file cannot do without: CDNOW's four, or an order number, a time
    and what was paid (by any of their names)."""
    if keys == [" ".join(_CDNOW)] or (len(keys) == 1 and keys[0].split() == list(_CDNOW)) or set(_CDNOW) <= set(keys):
        return []
    have = set(keys)
    needed = {"order_no": ("order_no",), "at": ("at",), "paid": ("paid", "paid_fen")}
    return [name for name, fields in needed.items() if not any(have & set(ALIASES[f]) for f in fields)]


def _pick(row: dict[str, Any], name: str) -> Any:
    for alias in ALIASES[name]:
        value = row.get(alias)
        if value not in (None, ""):
            return value.strip() if isinstance(value, str) else value
    return None


def _fen(row: dict[str, Any], name: str) -> int | None:
    """An amount in fen, within the API's ceiling (MEMBERHUB_MAX_AMOUNT_FEN), as a request's."""
    value = _fen_read(row, name)
    if value is not None and not 0 <= value <= settings.MAX_AMOUNT_FEN:
        raise _Bad(f"{name}_out_of_range", str(value)[:40])
    return value


def _fen_read(row: dict[str, Any], name: str) -> int | None:
    raw = _pick(row, f"{name}_fen")
    if raw is not None:
        try:
            return int(Decimal(str(raw)))
        except InvalidOperation:
            raise _Bad(f"{name}_invalid", str(raw)[:40]) from None
    raw = _pick(row, name)
    if raw is None:
        return None
    try:
        value = Decimal(str(raw).replace(",", "").replace("¥", "").replace("￥", "")) * 100
    except InvalidOperation:
        raise _Bad(f"{name}_invalid", str(raw)[:40]) from None
    if value != value.to_integral_value():
        raise _Bad(f"{name}_invalid", str(raw)[:40])
    return int(value)


def _when(raw: Any, tz: ZoneInfo) -> datetime:
    if isinstance(raw, datetime):
        return raw if raw.tzinfo else raw.replace(tzinfo=tz)
    if isinstance(raw, date):
        return datetime.combine(raw, time(12), tzinfo=tz)
    text = str(raw).strip()
    if len(text) == 8 and text.isdigit():
        return datetime.combine(date(int(text[:4]), int(text[4:6]), int(text[6:])), time(12), tzinfo=tz)
    value = datetime.fromisoformat(text.replace("/", "-"))
    if len(text) <= 10:
        value = datetime.combine(value.date(), time(12))
    return value if value.tzinfo else value.replace(tzinfo=tz)


_cdnow_headers: dict[str, bool] = {}


def _cdnow(row: dict[str, Any]) -> list[str] | None:
    """The four CDNOW fields when the row is CDNOW text (one whitespace-joined column) or CSV."""
    if len(row) == 1:
        key, value = next(iter(row.items()))
        is_cdnow = _cdnow_headers.get(key)
        if is_cdnow is None:
            is_cdnow = _cdnow_headers[key] = key.split() == list(_CDNOW)
        if is_cdnow:
            parts = str(value).split()
            return parts if len(parts) == 4 else ["", "", "", ""]
    if all(k in row for k in _CDNOW):
        return [str(row[k]).strip() for k in _CDNOW]
    return None


def _cents(text: str) -> int | None:
    """"11.77" → 1177 for plain amounts (digits, at most two decimals); None for anything
    else, which then goes the exact `Decimal` way (the same answers, 5× slower)."""
    whole, dot, frac = text.partition(".")
    if not (whole.isascii() and whole.isdigit()) or len(frac) > 2 or (frac and not (frac.isascii() and frac.isdigit())):
        return None
    return int(whole) * 100 + (int(frac.ljust(2, "0")) if frac else 0)


def _orders(rows: Iterable[tuple[int, dict[str, Any]]], report: OrdersImportReport, *, source: str | None,
            tz: ZoneInfo) -> Iterator[_Order]:
    """Rows → orders (consecutive rows of one order number make one order)."""
    current: _Order | None = None
    seen_day: dict[tuple[str, str], int] = {}
    day_cache: dict[str, datetime] = {}
    for number, row in rows:
        report.total += 1
        try:
            cd = _cdnow(row)
            if cd is not None:
                customer, day, cds, dollars = cd
                if not customer or len(day) != 8 or not day.isdecimal():
                    raise _Bad("row_invalid", " ".join(cd)[:60])
                paid = _cents(dollars)
                try:
                    qty = int(cds)
                    if paid is None:
                        exact = Decimal(dollars) * 100
                        if exact < 0 or exact != exact.to_integral_value():
                            raise _Bad("amount_invalid", dollars[:40])
                        paid = int(exact)
                except (InvalidOperation, ValueError):
                    raise _Bad("amount_invalid", dollars[:40]) from None
                if qty < 0:
                    raise _Bad("amount_invalid", dollars[:40])
                n = seen_day.get((customer, day), 0) + 1
                seen_day[(customer, day)] = n
                if current is not None:
                    yield current
                    current = None
                at = day_cache.get(day) or day_cache.setdefault(day, _when(day, tz))
                prefix = source or "cdnow"
                yield _Order(number, 1, "online", f"{prefix}-{customer}-{day}-{n}", at, None, None, None,
                             f"{prefix}:{customer}",
                             [LineInput(paid_fen=paid, sku="CD", category="music", qty=qty, line_id="1",
                                        unit_price_fen=paid // qty if qty else 0)])
                continue
            order_no = _pick(row, "order_no")
            if not order_no:
                raise _Bad("order_no_required")
            channel = str(_pick(row, "channel") or "offline").lower()
            channel = {"线上": "online", "线下": "offline", "门店": "offline"}.get(channel, channel)
            if channel not in Purchase.Channel.values:
                raise _Bad("invalid_channel", channel[:20])
            raw_at = _pick(row, "at")
            if raw_at is None:
                raise _Bad("at_required")
            try:
                at = _when(raw_at, tz)
                at.astimezone(UTC)  # year 1 or 9999 with an offset has no UTC time: refused here
            except (ValueError, OverflowError):
                raise _Bad("at_invalid", str(raw_at)[:40]) from None
            paid_fen = _fen(row, "paid")
            if paid_fen is None or paid_fen < 0:
                raise _Bad("paid_invalid")
            qty = int(Decimal(str(_pick(row, "qty") or 1)))
            member_id = _pick(row, "member_id")
            line = LineInput(paid_fen=paid_fen, sku=str(_pick(row, "sku") or ""), qty=qty,
                             category=str(_pick(row, "category") or ""), unit_price_fen=_fen(row, "unit_price"),
                             line_id=str(_pick(row, "line_id") or "") or None)
            if current is not None and (current.channel, current.order_no) == (channel, str(order_no)):
                current.lines.append(line)
                current.rows += 1
                continue
            if current is not None:
                yield current
            current = _Order(number, 1, channel, str(order_no), at, _pick(row, "store"),
                             str(_pick(row, "member")) if _pick(row, "member") else None,
                             int(member_id) if member_id else None, None, [line])
        except _Bad as bad:
            report.reject(number, bad.code, bad.message)
        except (ValueError, InvalidOperation) as exc:
            report.reject(number, "row_invalid", str(exc)[:80])
    if current is not None:
        yield current


@contextmanager
def _collector_relaxed() -> Iterator[None]:
    """An import allocates millions of small objects that live until their chunk is written;
    with the default threshold (700) the cyclic collector runs thousands of times and keeps
    rescanning them: a quarter of the import's time. Nothing here makes cycles, so collect
    a hundred times less often for the duration."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], 100_000), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def orders_import(*, actor: Principal, rows: Iterable[tuple[int, dict[str, Any]]],
                  progress: Callable[[int], None] | None = None, create_members: bool = False,
                  source: str | None = None) -> OrdersImportReport:
    actor.require(Cap.PURCHASES_WRITE)
    if create_members:
        actor.require(Cap.MEMBERS_IMPORT)
    source = re.sub(r"[^a-z0-9_]", "", (source or "").lower())[:20] or None
    report = OrdersImportReport()
    rules = rules_current()
    tz = ZoneInfo(rules.timezone)
    stores = {s.code: s for s in Store.objects.all()}
    chunk: list[_Order] = []
    last = 0
    with _collector_relaxed():
        for order in _orders(rows, report, source=source, tz=tz):
            chunk.append(order)
            if len(chunk) >= CHUNK:
                _flush(actor, chunk, stores, report, create_members)
                chunk = []
            if progress and report.total - last >= 2000:
                progress(report.total)
                last = report.total
        if chunk:
            _flush(actor, chunk, stores, report, create_members)
    if progress:
        progress(report.total)
    with transaction.atomic():
        AuditEntry.objects.create(actor_kind=actor.kind, actor_id=actor.id, actor_label=actor.label,
                                  action="loyalty.import", target_type="loyalty.purchase", target_id="",
                                  after={k: v for k, v in report.as_dict().items() if k != "rejections"})
    return report


def _members_for(externals: set[str], report: OrdersImportReport, now: datetime) -> dict[str, int]:
    keys = {f"ext:{e}": e for e in externals}
    found = dict(Member.objects.filter(import_key__in=list(keys)).values_list("import_key", "pk"))
    missing = [k for k in keys if k not in found]
    if missing:
        new = [Member(card_code=card_code_new(), source=Member.Source.IMPORT, registered_at=now, import_key=k,
                      name="") for k in missing]
        with transaction.atomic():
            Member.objects.bulk_create(new)
        found.update((k, pk) for k, pk in Member.objects.filter(import_key__in=missing).values_list("import_key", "pk")
                     if k is not None)
        report.members_created += len(missing)
    return {keys[k]: pk for k, pk in found.items() if k is not None}


def _existing(orders: list[_Order]) -> set[tuple[str, str]]:
    by_channel: dict[str, list[str]] = {}
    for o in orders:
        by_channel.setdefault(o.channel, []).append(o.order_no)
    existing: set[tuple[str, str]] = set()
    table = Purchase._meta.db_table
    for channel, numbers in by_channel.items():
        for start in range(0, len(numbers), 900):
            part = numbers[start:start + 900]
            cursor = sql_execute(f'SELECT order_no FROM {table} WHERE channel = %s AND order_no IN '
                                  f'({", ".join(["%s"] * len(part))})', [channel, *part])
            existing.update((channel, n) for (n,) in cursor.fetchall())
            cursor.close()
    return existing


def _flush(actor: Principal, chunk: list[_Order], stores: dict[str, Store], report: OrdersImportReport,
           create_members: bool) -> None:
    """Orders already recorded count as `existing`: those for a member are looked up first
    (each would cost a transaction); unclaimed ones are told by their INSERT (`ON CONFLICT`),
    so a recorded unclaimed order on an invalid row is reported as rejected."""
    now = timezone.now()
    existing = _existing([o for o in chunk if o.member is not None or o.member_id is not None
                          or (create_members and o.external)])
    # compared in the orders' own zone: aware datetimes with one tzinfo compare without utcoffset()
    now_local = now.astimezone(chunk[0].at.tzinfo) if chunk else now
    fresh: list[_Order] = []
    seen: set[tuple[str, str]] = set()
    for o in chunk:
        key = (o.channel, o.order_no)
        if key in existing or key in seen:
            report.existing += 1
            continue
        seen.add(key)
        if o.store is not None and o.store not in stores:
            report.reject(o.row, "store_not_found", o.store)
            continue
        if o.store is not None and not actor.sees_store(stores[o.store].pk):
            report.reject(o.row, "store_out_of_scope", o.store)
            continue
        if o.store is None and actor.store_ids is not None:
            report.reject(o.row, "store_required")
            continue
        if o.at > now_local:
            report.reject(o.row, "purchase_in_future", o.at.isoformat())
            continue
        fresh.append(o)
    members = _members_for({o.external for o in fresh if o.external}, report, now) if create_members else {}
    anonymous = [o for o in fresh if o.member is None and o.member_id is None and o.external not in members]
    anonymous_ids = {id(o) for o in anonymous}
    known = [o for o in fresh if id(o) not in anonymous_ids]
    if anonymous:
        _bulk_anonymous(actor, anonymous, stores, report)
    for o in known:
        _one(actor, o, members.get(o.external or ""), report, now)


def _insert_many(head: str, values: list[tuple[Any, ...]], *, constants: str = "", tail: str = "",
                 per: int = 1000) -> list[Any]:
    """Multi-row VALUES, one statement per `per` rows (fast on SQLite and PostgreSQL alike),
    each row's parameters followed by the same SQL literals (`constants`); the rows a
    `RETURNING` tail gives back."""
    back: list[Any] = []
    for part in _parts(values, per):
        cursor = _insert_part(head, part, constants, tail)
        if tail:
            back += cursor.fetchall()
        cursor.close()
    return back


def _parts(values: list[tuple[Any, ...]], per: int) -> Iterator[list[tuple[Any, ...]]]:
    return (values[start:start + per] for start in range(0, len(values), per))


def _insert_part(head: str, part: list[tuple[Any, ...]], constants: str, tail: str) -> Any:
    one = "(" + ", ".join(["%s"] * len(part[0])) + constants + ")"
    return sql_execute(head + ", ".join([one] * len(part)) + tail, list(chain.from_iterable(part)))


def _insert_purchases(table: str, purchase_rows: list[tuple[Any, ...]]) -> dict[tuple[str, str], int]:
    """The new unclaimed purchases' ids by (channel, order number); an order already recorded
    is left alone (`ON CONFLICT DO NOTHING`) and not in the answer.

    PostgreSQL hands the ids back with `RETURNING`. On SQLite that costs a step per row, so
    instead: inside the write transaction nobody else inserts, every new row's id is above
    the `max(id)` read just before, and ids grow in the order the rows are inserted; when every
    row went in and the last id is that maximum plus their number, the ids are exactly the
    ones in between, in order. Otherwise (some were there already) the new rows are read back."""
    head = (f"INSERT INTO {table} (channel, order_no, store_id, at, total_fen, paid_fen, discounts, external_ref, "
            "recorded_by, recorded_at, refunded_fen, points, clawed_back, earned) VALUES ")
    constants = ", 0, 0, 0, FALSE"  # what every new unclaimed purchase starts with, as literals
    if connection.vendor != "sqlite":
        return {(channel, n): pk for channel, n, pk in _insert_many(
            head, purchase_rows, constants=constants,
            tail=" ON CONFLICT (channel, order_no) DO NOTHING RETURNING channel, order_no, id")}
    ids: dict[tuple[str, str], int] = {}
    for part in _parts(purchase_rows, 1000):
        cursor = sql_execute(f"SELECT max(id) FROM {table}", [])
        before = cursor.fetchone()[0] or 0
        cursor.close()
        cursor = _insert_part(head, part, constants, " ON CONFLICT (channel, order_no) DO NOTHING")
        added, last = cursor.rowcount, cursor.lastrowid
        cursor.close()
        if added == len(part) and last == before + added:
            ids.update(zip([(row[0], row[1]) for row in part], range(before + 1, last + 1), strict=True))
        elif added:
            cursor = sql_execute(f"SELECT channel, order_no, id FROM {table} WHERE id > %s", [before])
            ids.update(((channel, n), pk) for channel, n, pk in cursor.fetchall())
            cursor.close()
    return ids


def _bulk_anonymous(actor: Principal, orders: list[_Order], stores: dict[str, Store],
                    report: OrdersImportReport) -> None:
    """Unclaimed purchases earn nothing yet: multi-row INSERTs on the driver's cursor, without
    the ORM's per-object cost. `ON CONFLICT DO NOTHING` (`_insert_purchases`) gives the new ids
    and leaves alone an order recorded meanwhile by the till or a twin import (`existing`)."""
    ops = connection.ops
    now = ops.adapt_datetimefield_value(timezone.now())
    no_discounts = Purchase._meta.get_field("discounts").get_db_prep_save([], connection)
    p_table, l_table = Purchase._meta.db_table, PurchaseLine._meta.db_table
    days: dict[int, Any] = {}  # by identity: the parser shares one datetime per day, and hashing
    # an aware datetime asks its zone for the offset

    def adapt(at: datetime) -> Any:
        value = days.get(id(at))
        if value is None:
            value = days[id(at)] = ops.adapt_datetimefield_value(at)
        return value

    label = actor.label
    purchase_rows = []
    for o in orders:
        purchase_rows.append((o.channel, o.order_no, stores[o.store].pk if o.store else None, adapt(o.at),
                              o.total_fen, o.paid_fen, no_discounts, o.external or "", label, now))
    try:
        ids = _bulk_write(p_table, l_table, orders, purchase_rows)
    except IntegrityError:  # a row the database refuses (say a repeated line id): one by one, with reasons
        for o in orders:
            _one(actor, o, None, report, timezone.now())
        return
    report.created += len(ids)
    report.existing += len(orders) - len(ids)


def _bulk_write(p_table: str, l_table: str, orders: list[_Order],
                purchase_rows: list[tuple[Any, ...]]) -> dict[tuple[str, str], int]:
    with transaction.atomic():
        ids = _insert_purchases(p_table, purchase_rows)
        _insert_many(f"INSERT INTO {l_table} (purchase_id, line_id, sku, category, qty, unit_price_fen, paid_fen, "
                     "points, rounding, refunded_fen, clawed_back) VALUES ",
                     [(pk, ln.line_id or str(i), ln.sku, ln.category, ln.qty, ln.unit_price_fen or 0, ln.paid_fen)
                      for o in orders if (pk := ids.get((o.channel, o.order_no))) is not None
                      for i, ln in enumerate(o.lines, start=1)],
                     constants=", 0, 'floor', 0, 0")
    return ids


def _one(actor: Principal, o: _Order, member_id: int | None, report: OrdersImportReport, now: datetime) -> None:
    data = PurchaseInput(channel=o.channel, order_no=o.order_no, paid_fen=o.paid_fen, at=o.at, lines=tuple(o.lines),
                         store=o.store, member_id=member_id if member_id is not None else o.member_id,
                         member_key=o.member, external_ref=o.external or "")
    try:
        result = purchase_record(actor=actor, data=data, now=now)
        if result.replayed:
            report.existing += 1
        else:
            report.created += 1
    except ApplicationError as exc:
        report.reject(o.row, exc.code, str(exc.message))
    except DomainError as exc:
        report.reject(o.row, exc.code, exc.message)

