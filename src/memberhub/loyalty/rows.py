"""Plain SQL for the till's hot path (an earn), built once per process from the models.

Compiling an ORM statement costs several times what running it costs on SQLite (about
0.2 ms against 0.02 ms), and an earn is a dozen statements, so the earn's rows are read and
written here. The table, the columns and the value conversions are still the models' own
(`Field.pre_save` / `get_db_prep_save`, the backend's converters); only the ORM's query
compiler is skipped. Nothing here decides anything, and no signal is sent (none is
connected to the loyalty models). Everything runs in the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from django.db import connection, transaction
from django.db.models import DateTimeField, Field, JSONField, Model

try:
    import fcntl
except ImportError:  # Windows: the processes fall back to SQLite's busy_timeout
    fcntl = None  # type: ignore[assignment]

M = TypeVar("M", bound=Model)

_plans: dict[tuple[Any, ...], Any] = {}


def _qn(name: str | None) -> str:
    assert name is not None  # concrete fields always have a column
    return connection.ops.quote_name(name)


def _sql(sql: str) -> str:
    """`%s` placeholders in the driver's own style (SQLite's sqlite3 wants `?`)."""
    return sql.replace("%s", "?") if connection.vendor == "sqlite" else sql


def _run(sql: str, params: Sequence[Any]) -> Any:
    """Execute on the driver's cursor: Django's cursor wrapper (placeholder rewriting by regex,
    debug logging, wrappers) costs as much as a small statement. Errors are still Django's
    (`IntegrityError` …). `sql` comes from `_sql`."""
    connection.ensure_connection()
    connection.validate_no_broken_transaction()
    cursor = connection.connection.cursor()
    with connection.wrap_database_errors:
        cursor.execute(sql, params)
    return cursor


_AS_IS = {
    **dict.fromkeys(("IntegerField", "BigIntegerField", "SmallIntegerField", "PositiveIntegerField",
                     "PositiveBigIntegerField", "PositiveSmallIntegerField", "ForeignKey", "OneToOneField"), int),
    "CharField": str, "TextField": str, "BooleanField": bool,
}


def _preparer(f: Field) -> Any:
    """The field's value → the database's, as `get_db_prep_save` would; values already of the
    column's plain type pass as they are (the generic path is most of an INSERT's cost)."""
    if isinstance(f, DateTimeField):
        return lambda v: (v if v is None else connection.ops.adapt_datetimefield_value(v)
                          if isinstance(v, dt.datetime) else f.get_db_prep_save(v, connection))
    plain = _AS_IS.get(f.get_internal_type())
    if plain is None:
        return lambda v: f.get_db_prep_save(v, connection)
    return lambda v: v if v is None or type(v) is plain else f.get_db_prep_save(v, connection)


def _params(obj: Model, fields: list[Field], preparers: list[Any]) -> list[Any]:
    return [prep(f.pre_save(obj, True)) for f, prep in zip(fields, preparers, strict=True)]


def _columns(model: type[Model]) -> list[Field]:
    return [f for f in model._meta.concrete_fields if not f.primary_key]


def insert(obj: Model, *, conflict: Sequence[str] = ()) -> bool:
    """INSERT an unsaved instance (every concrete field, pk from the database) and set its pk.

    With `conflict` (the columns of a unique constraint) a row already there is left alone
    (`ON CONFLICT DO NOTHING`) and False is returned; the caller reads that row."""
    model = type(obj)
    key = ("insert", connection.vendor, model, tuple(conflict))
    plan = _plans.get(key)
    if plan is None:
        fields = _columns(model)
        sql = (f"INSERT INTO {_qn(model._meta.db_table)} ({', '.join(_qn(f.column) for f in fields)}) "
               f"VALUES ({', '.join(['%s'] * len(fields))})")
        if conflict:
            sql += f" ON CONFLICT ({', '.join(_qn(c) for c in conflict)}) DO NOTHING"
        sql += f" RETURNING {_qn(model._meta.pk.column)}"
        plan = _plans[key] = (_sql(sql), fields, [_preparer(f) for f in fields])
    sql, fields, preparers = plan
    cursor = _run(sql, _params(obj, fields, preparers))
    row = cursor.fetchone()
    cursor.close()
    if row is None:
        return False
    obj.pk = row[0]
    obj._state.adding = False
    obj._state.db = connection.alias
    return True


def insert_many(objs: Sequence[Model]) -> None:
    """One multi-row INSERT for unsaved instances of one model (their pks are not read back)."""
    if not objs:
        return
    model = type(objs[0])
    fields = _columns(model)
    preparers = [_preparer(f) for f in fields]
    one = "(" + ", ".join(["%s"] * len(fields)) + ")"
    head = f"INSERT INTO {_qn(model._meta.db_table)} ({', '.join(_qn(f.column) for f in fields)}) VALUES "
    per = max(1, (connection.features.max_query_params or 999) // len(fields))
    for start in range(0, len(objs), per):
        part = objs[start:start + per]
        _run(_sql(head + ", ".join([one] * len(part))),
             [v for obj in part for v in _params(obj, fields, preparers)]).close()


def _from_db(fields: list[Field], row: Sequence[Any]) -> list[Any]:
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
            values[i] = f.from_db_value(v, None, connection)  # type: ignore[arg-type]
    return values


def fetch(model: type[M], where: str, params: Sequence[Any], *, for_update: bool = False) -> M | None:
    """The first row of `model` matching `where` (SQL over its column names), as an instance;
    `for_update` locks it where the database has row locks (SQLite's IMMEDIATE transaction
    already holds the write lock)."""
    lock = for_update and connection.features.has_select_for_update
    key = ("fetch", connection.vendor, model, where, lock)
    plan = _plans.get(key)
    if plan is None:
        fields = list(model._meta.concrete_fields)
        sql = (f"SELECT {', '.join(_qn(f.column) for f in fields)} FROM {_qn(model._meta.db_table)} "
               f"WHERE {where} LIMIT 1" + (" FOR UPDATE" if lock else ""))
        plan = _plans[key] = (_sql(sql), fields, [f.attname for f in fields])
    sql, fields, names = plan
    cursor = _run(sql, params)
    row = cursor.fetchone()
    cursor.close()
    if row is None:
        return None
    return model.from_db(connection.alias, names, _from_db(fields, row))


def add(model: type[Model], pk: Any, deltas: dict[str, int]) -> int:
    """UPDATE … SET col = col + delta … WHERE pk (a counter is never read-modify-written);
    the row count."""
    names = tuple(deltas)
    key = ("add", connection.vendor, model, names)
    sql = _plans.get(key)
    if sql is None:
        meta = model._meta
        cols = [_qn(meta.get_field(n).column) for n in names]  # type: ignore[union-attr]
        sql = _plans[key] = _sql(f"UPDATE {_qn(meta.db_table)} SET {', '.join(f'{c} = {c} + %s' for c in cols)} "
                                 f"WHERE {_qn(meta.pk.column)} = %s")
    cursor = _run(sql, [*deltas.values(), pk])
    count = cursor.rowcount
    cursor.close()
    return count


def execute(sql: str, params: Sequence[Any]) -> Any:
    """Run a statement written with `%s` placeholders on the driver's cursor (bulk work: no
    regex over a statement of thousands of placeholders); the cursor, to fetch and close."""
    return _run(_sql(sql), params)


def one(sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
    """The first row of a read written in plain SQL (`%s` placeholders)."""
    key = ("sql", connection.vendor, sql)
    native = _plans.get(key)
    if native is None:
        native = _plans[key] = _sql(sql)
    cursor = _run(native, params)
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
    if connection.vendor != "sqlite" or connection.in_atomic_block:
        with transaction.atomic():
            yield
        return
    fd = _turn_file(str(connection.settings_dict["NAME"])) \
        if fcntl is not None and not connection.is_in_memory_db() else None  # type: ignore[attr-defined]
    held = [True]

    def release() -> None:  # once: right after COMMIT, or after a rollback
        if held[0]:
            held[0] = False
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
            _turn.release()

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
