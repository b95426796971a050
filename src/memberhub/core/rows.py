"""Plain SQL for the till's hot path (an earn), built once per process from the models.

Compiling an ORM statement costs several times what running it costs on SQLite (about
0.2 ms against 0.02 ms), and an earn is a dozen statements, so the earn's rows are read and
written here. The table, the columns and the value conversions are still the models' own
(`Field.pre_save` / `get_db_prep_save`, the backend's converters); only the ORM's query
compiler is skipped. Nothing here decides anything, and no signal is sent (none is
connected to the loyalty models). Everything runs in the caller's transaction.

Each call looks the connection up once (`connections[DEFAULT_DB_ALIAS]`): every attribute
read through the `django.db.connection` proxy is a thread-local lookup (~3 µs), and an earn
made about eighty of them.
"""

from __future__ import annotations

import datetime as dt
import json
import operator
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import DateField, DateTimeField, Field, JSONField, Model
from django.db.models.base import ModelState

from memberhub.core import durability, wal_flush

try:
    import fcntl
except ImportError:  # Windows: the processes fall back to SQLite's busy_timeout
    fcntl = None  # type: ignore[assignment]

M = TypeVar("M", bound=Model)

_plans: dict[tuple[Any, ...], Any] = {}


def _db() -> BaseDatabaseWrapper:
    """The connection wrapper the ORM uses here and now, asked of Django each time (~1.4 µs,
    a dozen times an earn). Keeping it per thread was wrong: Django keeps a second set of
    connections for a thread while an event loop runs in it (a Playwright test, an async
    server), and the fast path then wrote on one connection while the ORM's transaction held
    the other: outside that transaction, and waiting for its lock."""
    return connections[DEFAULT_DB_ALIAS]


def _qn(db: BaseDatabaseWrapper, name: str | None) -> str:
    assert name is not None  # concrete fields always have a column
    return db.ops.quote_name(name)


def _sql(db: BaseDatabaseWrapper, sql: str) -> str:
    """`%s` placeholders in the driver's own style (SQLite's sqlite3 wants `?`)."""
    return sql.replace("%s", "?") if db.vendor == "sqlite" else sql


def _run(db: BaseDatabaseWrapper, sql: str, params: Sequence[Any]) -> Any:
    """Execute on the driver's cursor: Django's cursor wrapper (placeholder rewriting by regex,
    debug logging, wrappers) costs as much as a small statement. Errors are still Django's
    (`IntegrityError` …). `sql` comes from `_sql`.

    A connection kept from an earlier request is checked before its first use in a request
    (`CONN_HEALTH_CHECKS`), so that one the server dropped (a restart, a failover, an idle
    timeout) is replaced instead of failing the request. Django's cursor checks with a
    `SELECT 1` of its own, a round trip; when that first use is a read outside a transaction
    (a keyed request's API-key read), the read is the check: should it fail and the
    connection prove unusable, it runs again, once, on a new connection (a read is safe to
    run twice)."""
    # (django-stubs do not declare the health check's two attributes)
    if (db.connection is not None and not db.health_check_done  # type: ignore[attr-defined]
            and db.health_check_enabled and not db.in_atomic_block  # type: ignore[attr-defined]
            and sql.startswith("SELECT")):
        db.health_check_done = True  # type: ignore[attr-defined]
        try:
            return _execute(db, sql, params)
        except DatabaseError:
            if db.is_usable():
                raise
            db.close()  # and run it again below, on a new connection
    db.close_if_health_check_failed()  # once a request: it returns at once when done
    return _execute(db, sql, params)


def _execute(db: BaseDatabaseWrapper, sql: str, params: Sequence[Any]) -> Any:
    if db.connection is None:
        db.ensure_connection()
    if db.needs_rollback:
        db.validate_no_broken_transaction()
    with db.wrap_database_errors:  # the cursor too: a closed connection refuses one
        cursor = db.connection.cursor()
        cursor.execute(sql, params)
    return cursor


_AS_IS = {
    **dict.fromkeys(("IntegerField", "BigIntegerField", "SmallIntegerField", "PositiveIntegerField",
                     "PositiveBigIntegerField", "PositiveSmallIntegerField", "ForeignKey", "OneToOneField"), int),
    "CharField": str, "TextField": str, "BooleanField": bool,
}
_ANY = object()  # no plain type: always convert


def _utc_text(db: BaseDatabaseWrapper) -> bool:
    """Whether the backend stores datetimes as UTC text (SQLite with USE_TZ): then an aware
    value is written as `str()` of its naive UTC time, exactly what its
    `adapt_datetimefield_value` does, without that method's settings and zone lookups
    (a sixth of an INSERT's Python time for a row with three datetimes)."""
    return db.vendor == "sqlite" and settings.USE_TZ and db.timezone is dt.UTC


def _utc_str(value: dt.datetime) -> str:
    return str(value.astimezone(dt.UTC).replace(tzinfo=None))


def moment(value: dt.datetime | None, db: BaseDatabaseWrapper | None = None) -> Any:
    """A datetime as a statement parameter, as the backend's `adapt_datetimefield_value`
    makes it."""
    db = db or _db()
    if value is not None and value.tzinfo is not None and _utc_text(db):
        return _utc_str(value)
    return db.ops.adapt_datetimefield_value(value)


def _adapt_datetime(f: Field, utc_text: bool) -> Callable[[Any, BaseDatabaseWrapper], Any]:
    def conv(v: Any, db: BaseDatabaseWrapper) -> Any:
        if isinstance(v, dt.datetime):
            if utc_text and v.tzinfo is not None:
                return _utc_str(v)
            return db.ops.adapt_datetimefield_value(v)
        return f.get_db_prep_save(v, db)
    return conv


def _adapt_json(f: JSONField) -> Callable[[Any, BaseDatabaseWrapper], Any]:
    """SQLite stores JSON as text: `json.dumps` with the field's encoder, as
    `adapt_json_value` does, without the three calls of `get_db_prep_save` around it."""
    def conv(v: Any, db: BaseDatabaseWrapper) -> Any:
        if isinstance(v, (list, dict)):
            return json.dumps(v, cls=f.encoder)
        return f.get_db_prep_save(v, db)
    return conv


def _converter(f: Field, db: BaseDatabaseWrapper) -> tuple[Any, Callable[[Any, BaseDatabaseWrapper], Any]]:
    """(plain type, conversion): a value of the column's plain type (or None) passes as it is,
    anything else is converted as `get_db_prep_save` would (the generic path is most of an
    INSERT's cost)."""
    if isinstance(f, DateTimeField):
        return _ANY, _adapt_datetime(f, _utc_text(db))
    if type(f) is JSONField and db.vendor == "sqlite":
        return _ANY, _adapt_json(f)
    plain = _AS_IS.get(f.get_internal_type())
    return (_ANY if plain is None else plain), f.get_db_prep_save


def _own_pre_save(f: Field) -> bool:
    """Fields whose `pre_save` does more than read the attribute (auto_now and the like)."""
    if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
        return True
    return type(f).pre_save not in (Field.pre_save, DateField.pre_save)


def _row_maker(fields: list[Field], db: BaseDatabaseWrapper) -> Callable[[Model, BaseDatabaseWrapper], list[Any]]:
    """obj → the INSERT's parameters, compiled once per model: one attrgetter for every
    column, conversions only where the value is not already the column's plain type."""
    get = operator.attrgetter(*(f.attname for f in fields))
    single = len(fields) == 1
    pre = [f for f in fields if _own_pre_save(f)]
    convs = [_converter(f, db) for f in fields]

    def values(obj: Model, db: BaseDatabaseWrapper) -> list[Any]:
        for f in pre:
            f.pre_save(obj, True)  # sets the attribute (auto_now …)
        got = (get(obj),) if single else get(obj)
        return [v if v is None or type(v) is plain else conv(v, db) for v, (plain, conv) in zip(got, convs, strict=True)]

    return values


def _columns(model: type[Model]) -> list[Field]:
    return [f for f in model._meta.concrete_fields if not f.primary_key]


def new(model: type[M], **values: Any) -> M:
    """An unsaved instance, as `model(**values)` builds it: each concrete field gets the value
    given (by attname: relations by id) or else its default. Without Model.__init__'s
    per-field dispatch and its signals (none is connected to the models built here), which
    made up a twentieth of an earn."""
    key = ("new", model)
    plan = _plans.get(key)
    if plan is None:
        plan = _plans[key] = [(f.attname, f.get_default) for f in model._meta.concrete_fields
                              if not getattr(f, "generated", False)]
    obj = model.__new__(model)
    obj._state = ModelState()
    attrs = obj.__dict__
    for attname, default in plan:
        attrs[attname] = values.pop(attname) if attname in values else default()
    if values:
        raise TypeError(f"{model.__name__} has no field(s) {', '.join(values)}")
    return obj


def insert(obj: Model, *, conflict: Sequence[str] = ()) -> bool:
    """INSERT an unsaved instance (every concrete field, pk from the database) and set its pk.

    With `conflict` (the columns of a unique constraint) a row already there is left alone
    (`ON CONFLICT DO NOTHING`) and False is returned; the caller reads that row."""
    db = _db()
    model = type(obj)
    key = ("insert", db.vendor, model, tuple(conflict))
    plan = _plans.get(key)
    if plan is None:
        fields = _columns(model)
        sql = (f"INSERT INTO {_qn(db, model._meta.db_table)} ({', '.join(_qn(db, f.column) for f in fields)}) "
               f"VALUES ({', '.join(['%s'] * len(fields))})")
        if conflict:
            sql += f" ON CONFLICT ({', '.join(_qn(db, c) for c in conflict)}) DO NOTHING"
        sql += f" RETURNING {_qn(db, model._meta.pk.column)}"
        plan = _plans[key] = (_sql(db, sql), _row_maker(fields, db))
    sql, values = plan
    cursor = _run(db, sql, values(obj, db))
    row = cursor.fetchone()
    cursor.close()
    if row is None:
        return False
    saved(obj, row[0])
    return True


def vendor() -> str:
    return _db().vendor


def saved(obj: Model, pk: Any) -> None:
    """Mark an instance as written (by `insert` or `insert_linked`) with its new pk."""
    obj.pk = pk
    obj._state.adding = False
    obj._state.db = _db().alias


def insert_many(objs: Sequence[Model]) -> None:
    """One multi-row INSERT for unsaved instances of one model (their pks are not read back)."""
    if not objs:
        return
    db = _db()
    model = type(objs[0])
    key = ("insert_many", db.vendor, model)
    plan = _plans.get(key)
    if plan is None:
        fields = _columns(model)
        head = f"INSERT INTO {_qn(db, model._meta.db_table)} ({', '.join(_qn(db, f.column) for f in fields)}) VALUES "
        one = "(" + ", ".join(["%s"] * len(fields)) + ")"
        per = max(1, (db.features.max_query_params or 999) // len(fields))
        plan = _plans[key] = (head, one, per, _row_maker(fields, db))
    head, one, per, values = plan
    for start in range(0, len(objs), per):
        part = objs[start:start + per]
        _run(db, _sql(db, head + ", ".join([one] * len(part))), [v for obj in part for v in values(obj, db)]).close()


class _LinkedStep(NamedTuple):
    head: str  # up to the rows: `sN AS (INSERT INTO t (cols) `
    row: str  # one row's VALUES or SELECT
    tail: str  # from the rows on: ` RETURNING id AS id)`
    values: Callable[[Model, BaseDatabaseWrapper], list[Any]]
    keep: list[bool] | None  # which values are parameters (None: all; a linked column is not)


def _linked_plan(db: BaseDatabaseWrapper, conflict: Sequence[str],
                 steps: Sequence[tuple[Sequence[Model], dict[str, int]]], model: type[Model],
                 deltas: dict[str, int], read: str | None) -> tuple[list[_LinkedStep], str]:
    """`insert_linked`'s statement for one shape, in pieces: the number of rows a step writes
    varies (an order's lines), so the rows are joined per call."""
    plan: list[_LinkedStep] = []
    for step, (objs, links) in enumerate(steps):
        step_model = type(objs[0])
        fields = _columns(step_model)
        head = (f"s{step} AS (INSERT INTO {_qn(db, step_model._meta.db_table)} "
                f"({', '.join(_qn(db, f.column) for f in fields)}) ")
        tail = f" RETURNING {_qn(db, step_model._meta.pk.column)} AS id)"
        if step == 0:
            row = f"VALUES ({', '.join(['%s'] * len(fields))})"
            tail = f" ON CONFLICT ({', '.join(_qn(db, c) for c in conflict)}) DO NOTHING{tail}"
            plan.append(_LinkedStep(head, row, tail, _row_maker(fields, db), None))
        else:
            sources = ", ".join(f"s{j}" for j in sorted(set(links.values())))
            # typed: the SELECT's output types decide, and an untyped NULL is text
            exprs = [f"s{links[f.attname]}.id" if f.attname in links else f"%s::{f.db_type(db)}" for f in fields]
            row = f"SELECT {', '.join(exprs)} FROM {sources}"
            plan.append(_LinkedStep(head, row, tail, _row_maker(fields, db), [f.attname not in links for f in fields]))
    end = ""
    if deltas:
        meta = model._meta
        sets = ", ".join(f"{c} = {c} + %s" for c in (_qn(db, meta.get_field(n).column) for n in deltas))  # type: ignore[union-attr]
        end = (f", u AS (UPDATE {_qn(db, meta.db_table)} SET {sets} WHERE {_qn(db, meta.pk.column)} = %s"
               " AND EXISTS (SELECT 1 FROM s0))")
    end += " SELECT s0.id" + "".join(f", (SELECT min(id) FROM s{k})" for k in range(1, len(steps)))
    end += " FROM s0" if read is None else f", r.* FROM s0 CROSS JOIN ({read}) AS r"
    return plan, end


def insert_linked(first: Model, *, conflict: Sequence[str], then: Sequence[tuple[Sequence[Model], dict[str, int]]],
                  add: tuple[type[Model], Any, dict[str, int]],
                  read: tuple[str, Sequence[Any]] | None = None) -> list[Any] | None:
    """PostgreSQL: INSERT `first` (unsaved; `ON CONFLICT (conflict) DO NOTHING`) and, only if
    it went in, the unsaved rows of each step in `then` (one model a step), whose columns
    named in the step's links take the new id of an earlier step (0 is `first`), and the
    relative UPDATE `add` (model, pk, deltas), all in one statement (a data-modifying CTE):
    one round trip instead of one a row (docs/loyalty.md, Speed, has what it saved).
    `read` (SQL giving one row, `%s` placeholders, and its parameters) is read in the same
    round trip; like every part of one statement it sees the database as it was before the
    statement, without the rows written here.

    The new id of `first` and of each step's first row, in order, then the read's columns
    (the instances are not touched), or None when `first` was there already: then nothing
    was written (nor read)."""
    db = _db()
    assert db.vendor == "postgresql", "data-modifying WITH is PostgreSQL's"
    steps = [([first], {}), *then]
    assert all(objs for objs, _links in steps), "every step writes a row (later steps read its id)"
    model, pk, deltas = add
    key = ("linked", tuple(conflict), model, tuple(deltas), read and read[0],
           *((type(objs[0]), tuple(links.items())) for objs, links in steps))
    plan = _plans.get(key)
    if plan is None:  # built once per shape and process
        plan = _plans[key] = _linked_plan(db, conflict, steps, model, deltas, read and read[0])
    pieces, end = plan
    parts: list[str] = []
    params: list[Any] = []
    for (objs, _links), piece in zip(steps, pieces, strict=True):
        parts.append(piece.head + " UNION ALL ".join([piece.row] * len(objs)) + piece.tail)
        for obj in objs:
            got = piece.values(obj, db)
            params += got if piece.keep is None else [v for v, k in zip(got, piece.keep, strict=True) if k]
    if deltas:
        params += [*deltas.values(), pk]
    if read is not None:
        params += read[1]
    sql = "WITH " + ", ".join(parts) + end
    cursor = _run(db, sql, params)
    row = cursor.fetchone()
    cursor.close()
    return None if row is None else list(row)


def _from_db(db: BaseDatabaseWrapper, fields: list[Field], row: Sequence[Any]) -> list[Any]:
    values = list(row)
    for i, f in enumerate(fields):
        v = values[i]
        if v is None:
            continue
        if isinstance(f, DateTimeField):  # SQLite hands back naive UTC (the ORM's converter makes it aware)
            if isinstance(v, str):
                v = dt.datetime.fromisoformat(v)
            if v.tzinfo is None:
                v = v.replace(tzinfo=dt.UTC)
            values[i] = v
        elif isinstance(f, JSONField):
            values[i] = f.from_db_value(v, None, db)  # type: ignore[arg-type]
    return values


def fetch(model: type[M], where: str, params: Sequence[Any], *, for_update: bool = False) -> M | None:
    """The first row of `model` matching `where` (SQL over its column names), as an instance;
    `for_update` locks it where the database has row locks (SQLite's IMMEDIATE transaction
    already holds the write lock)."""
    db = _db()
    lock = for_update and db.features.has_select_for_update
    key = ("fetch", db.vendor, model, where, lock)
    plan = _plans.get(key)
    if plan is None:
        fields = list(model._meta.concrete_fields)
        sql = (f"SELECT {', '.join(_qn(db, f.column) for f in fields)} FROM {_qn(db, model._meta.db_table)} "
               f"WHERE {where} LIMIT 1" + (" FOR UPDATE" if lock else ""))
        plan = _plans[key] = (_sql(db, sql), fields, [f.attname for f in fields])
    return _first(db, model, plan, params)


def _first(db: BaseDatabaseWrapper, model: type[M], plan: Any, params: Sequence[Any]) -> M | None:
    """The first row of a planned SELECT as a model instance (None when there is none)."""
    sql, fields, names = plan
    cursor = _run(db, sql, params)
    row = cursor.fetchone()
    cursor.close()
    if row is None:
        return None
    return model.from_db(db.alias, names, _from_db(db, fields, row))


def fetch_joined(model: type[M], join: str, where: str, params: Sequence[Any], *, lock: str) -> M | None:
    """`fetch` over a join: the model's table is `t`, `join` adds the others (`JOIN … ON …`),
    `lock` is the row-lock clause where the database has row locks (`FOR UPDATE OF t FOR KEY
    SHARE OF m`: a locked joined row that changed meanwhile is read again, and `where`
    checked again on it, which an `EXISTS` over an unlocked table is not)."""
    db = _db()
    lock = lock if db.features.has_select_for_update else ""
    key = ("fetch_joined", db.vendor, model, join, where, lock)
    plan = _plans.get(key)
    if plan is None:
        fields = list(model._meta.concrete_fields)
        sql = (f"SELECT {', '.join('t.' + _qn(db, f.column) for f in fields)} FROM {_qn(db, model._meta.db_table)} t "
               f"{join} WHERE {where} LIMIT 1 {lock}")
        plan = _plans[key] = (_sql(db, sql), fields, [f.attname for f in fields])
    return _first(db, model, plan, params)


def add(model: type[Model], pk: Any, deltas: dict[str, int]) -> int:
    """UPDATE … SET col = col + delta … WHERE pk (a counter is never read-modify-written);
    the row count."""
    db = _db()
    names = tuple(deltas)
    key = ("add", db.vendor, model, names)
    sql = _plans.get(key)
    if sql is None:
        meta = model._meta
        cols = [_qn(db, meta.get_field(n).column) for n in names]  # type: ignore[union-attr]
        sql = _plans[key] = _sql(db, f"UPDATE {_qn(db, meta.db_table)} SET "
                                     f"{', '.join(f'{c} = {c} + %s' for c in cols)} WHERE {_qn(db, meta.pk.column)} = %s")
    cursor = _run(db, sql, [*deltas.values(), pk])
    count = cursor.rowcount
    cursor.close()
    return count


def execute(sql: str, params: Sequence[Any]) -> Any:
    """Run a statement written with `%s` placeholders on the driver's cursor (bulk work: no
    regex over a statement of thousands of placeholders); the cursor, to fetch and close."""
    db = _db()
    return _run(db, _sql(db, sql), params)


def one(sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
    """The first row of a read written in plain SQL (`%s` placeholders)."""
    db = _db()
    key = ("sql", db.vendor, sql)
    native = _plans.get(key)
    if native is None:
        native = _plans[key] = _sql(db, sql)
    cursor = _run(db, native, params)
    row = cursor.fetchone()
    cursor.close()
    return row


# --- taking turns to write on SQLite ---------------------------------------------------------

_turn = threading.Lock()
_turn_files: dict[tuple[int, str], int] = {}


def _turn_file(path: str) -> int:
    key = (os.getpid(), path)  # a descriptor is not shared with forked workers
    fd = _turn_files.get(key)
    if fd is None:
        fd = _turn_files[key] = os.open(path + ".writer", os.O_RDWR | os.O_CREAT, 0o600)
    return fd


@contextmanager
def writing() -> Iterator[None]:
    """The hot path's transaction (`transaction.atomic`).

    On SQLite only one connection writes at a time, and a writer that finds the lock taken
    polls it, sleeping longer and longer (busy_timeout): under load the lock sits idle
    between writers and an unlucky request waits seconds. So writers here queue before BEGIN,
    the threads of a process on a lock and the processes on a file lock, which hand the
    write lock straight to the next writer. Inside an outer transaction (which holds the
    write lock already) or on PostgreSQL (row locks) it is just `atomic`."""
    db = _db()
    if db.vendor != "sqlite" or db.in_atomic_block:
        with transaction.atomic():
            yield
        return
    fd = _turn_file(str(db.settings_dict["NAME"])) \
        if fcntl is not None and not db.is_in_memory_db() else None  # type: ignore[attr-defined]
    held = [True]
    flush = wal_flush.flusher(str(db.settings_dict["NAME"])) if fd is not None else None

    def release() -> None:  # once: right after COMMIT, or after a rollback
        if held[0]:
            held[0] = False
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
            _turn.release()
            if flush is not None:
                # the sync starts now, while the answer is built; the request waits for it
                # before answering (core/durability.py)
                durability.note_commit(db, flush.committed())

    _turn.acquire()
    try:
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        with transaction.atomic():
            # the first commit hook: the next writer goes while this one's handlers run
            transaction.on_commit(release)
            yield
    finally:
        release()
