"""core.rows: the hot path's plain SQL writes rows exactly as the ORM would."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from memberhub.core import rows
from memberhub.domain.member_identity import card_code_new
from memberhub.loyalty.models import PointsAccount, PointsEntry
from memberhub.members.models import Member

pytestmark = pytest.mark.django_db(transaction=True)


def _account() -> PointsAccount:
    member = Member.objects.create(card_code=card_code_new(), registered_at=timezone.now())
    return PointsAccount.objects.create(member=member)


def _values(entry: PointsEntry) -> dict[str, Any]:
    return {f.attname: getattr(entry, f.attname) for f in PointsEntry._meta.concrete_fields
            if f.attname not in ("id", "created_at")}


def test_an_inserted_entry_reads_back_as_the_orm_writes_it() -> None:
    account = _account()
    at = datetime(2026, 3, 8, 12, 30, 15, 123456, tzinfo=UTC)
    fields = {"account_id": account.pk, "kind": PointsEntry.Kind.EARN, "points": 128, "at": at, "rule": "purchase",
              "reason": "线上 A-1", "trace": [{"step": "base_rate", "value": "128"}], "actor": "t", "reference": ""}
    before = timezone.now()
    with transaction.atomic():
        ours = PointsEntry(**fields)
        assert rows.insert(ours) is True
        theirs = PointsEntry.objects.create(**fields)
    assert ours.pk is not None and not ours._state.adding
    mine, orm = PointsEntry.objects.get(pk=ours.pk), PointsEntry.objects.get(pk=theirs.pk)
    assert _values(mine) == _values(orm)
    assert mine.at == at and mine.trace == [{"step": "base_rate", "value": "128"}]
    assert before <= mine.created_at <= timezone.now()  # auto_now_add ran, as save() runs it


def test_new_builds_the_instance_the_model_builds() -> None:
    at = datetime(2026, 3, 8, 12, 30, tzinfo=UTC)
    given = {"account_id": 7, "kind": PointsEntry.Kind.EARN, "points": 128, "at": at, "lot_id": None, "rule": "purchase"}
    ours, theirs = rows.new(PointsEntry, **given), PointsEntry(**given)
    every = [f.attname for f in PointsEntry._meta.concrete_fields]
    assert [getattr(ours, n) for n in every] == [getattr(theirs, n) for n in every]
    assert ours._state.adding and ours._state.db is None and ours.pk is None
    assert ours.trace == [] and ours.trace is not rows.new(PointsEntry).trace  # a callable default, called each time
    with pytest.raises(TypeError, match="colour"):
        rows.new(PointsEntry, points=1, colour="red")


def test_a_conflict_writes_nothing_and_says_so() -> None:
    account = _account()
    with transaction.atomic():
        assert rows.insert(PointsAccount(member_id=account.member_id), conflict=("member_id",)) is False
    assert PointsAccount.objects.filter(member_id=account.member_id).count() == 1


def test_add_and_fetch_use_the_models_columns() -> None:
    account = _account()
    with transaction.atomic():
        assert rows.add(PointsAccount, account.pk, {"balance": 5, "pending": 5}) == 1
        locked = rows.fetch(PointsAccount, '"member_id" = %s', [account.member_id], for_update=True)
    assert locked is not None and (locked.balance, locked.pending) == (5, 5)
    orm = PointsAccount.objects.get(pk=account.pk)
    assert {f.attname: getattr(locked, f.attname) for f in PointsAccount._meta.concrete_fields} == \
        {f.attname: getattr(orm, f.attname) for f in PointsAccount._meta.concrete_fields}  # aware datetimes too


def test_moment_is_the_backends_own_datetime_parameter() -> None:
    from zoneinfo import ZoneInfo

    from django.db import connection

    shanghai = datetime(2026, 3, 8, 23, 30, 15, 123456, tzinfo=ZoneInfo("Asia/Shanghai"))
    for value in (shanghai, shanghai.astimezone(UTC), datetime(2026, 3, 8, 23, 30, 15), None):
        assert rows.moment(value) == connection.ops.adapt_datetimefield_value(value)
    if connection.vendor == "sqlite":  # stored as UTC text: the Shanghai evening is that afternoon in UTC
        assert rows.moment(shanghai) == "2026-03-08 15:30:15.123456"


def test_json_and_datetimes_written_by_rows_match_the_orm_byte_for_byte() -> None:
    from zoneinfo import ZoneInfo

    from django.db import connection

    account = _account()
    at = datetime(2026, 3, 8, 23, 30, 15, tzinfo=ZoneInfo("Asia/Shanghai"))
    fields = {"account_id": account.pk, "kind": PointsEntry.Kind.EARN, "points": 1, "at": at, "rule": "r",
              "trace": [{"step": "基础", "value": "1.5"}, {"nested": {"a": [1, None, True]}}], "reference": ""}
    with transaction.atomic():
        ours = PointsEntry(**fields)
        rows.insert(ours)
        theirs = PointsEntry.objects.create(**fields)
    with connection.cursor() as cursor:
        cursor.execute('SELECT "at", "trace" FROM "loyalty_pointsentry" WHERE "id" IN (%s, %s) ORDER BY "id"',
                       [ours.pk, theirs.pk])
        stored = cursor.fetchall()
    assert stored[0] == stored[1]


def _drop_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a database restart, a failover or an idle timeout does to a kept connection."""
    from django.db import connection, connections

    if connection.vendor == "postgresql":
        pid = connection.connection.info.backend_pid
        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:  # waits (up to 5 s) until that backend has gone
                cursor.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])
                assert cursor.fetchone() == (True,)
        finally:
            other.close()
    else:
        # A SQLite file cannot go away under a connection; close the driver's connection behind
        # Django's back and let the health check say so, as PostgreSQL's does (SELECT 1).
        connection.connection.close()

        def usable() -> bool:
            try:
                connection.connection.execute("SELECT 1")
            except Exception:
                return False
            return True

        monkeypatch.setattr(connection, "is_usable", usable)


def test_a_connection_the_server_dropped_is_replaced_before_the_first_statement(
        make_key: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A till's earn after the database dropped the worker's connection: the API key's read is
    plain SQL on the driver's connection, and it checks the kept connection first, as Django's
    cursor does (it answered 500 once per connection)."""
    from django.db import connection

    from memberhub.wsgi import application
    from tests.core.test_keyed_handler import call

    member = Member.objects.create(card_code=card_code_new(), registered_at=timezone.now())
    key = {"Authorization": f"Bearer {make_key()}"}

    def earn(order_no: str) -> int:
        body = {"member_id": member.pk, "channel": "offline", "order_no": order_no, "store": "SH", "paid_fen": 500,
                "lines": [{"sku": "A", "category": "food", "paid_fen": 500}]}
        return call(application, "POST", "/api/v1/loyalty/purchases", body, key)[0]

    assert earn("H-1") == 201
    kept = connection.connection
    assert kept is not None  # kept between requests (CONN_MAX_AGE), as the server keeps it
    _drop_connection(monkeypatch)
    assert earn("H-2") == 201
    assert connection.connection is not kept
    assert PointsAccount.objects.get(member=member).balance > 0


def _next_request() -> None:
    """What Django does between two requests on a kept connection: the check is due again."""
    from django.db import connection

    connection.ensure_connection()
    connection.health_check_done = False


def test_a_kept_connection_is_checked_by_the_first_read_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    """No `SELECT 1` of its own (a round trip on PostgreSQL) when the request's first statement
    is a read: the read is the check. Django's check still runs when the first statement is
    a write, or in a transaction."""
    from django.db import connection

    checks: list[int] = []
    real = connection.is_usable
    monkeypatch.setattr(connection, "is_usable", lambda: checks.append(1) or real())
    _next_request()
    assert rows.one("SELECT 1 + %s", [1]) == (2,)
    assert checks == [] and connection.health_check_done
    _next_request()
    with transaction.atomic():
        assert rows.one("SELECT 2 + %s", [1]) == (3,)
    assert checks == [1]  # in a transaction a read is not run twice: checked first, as Django does
    account = _account()
    _next_request()
    checks.clear()
    assert rows.add(PointsAccount, account.pk, {"balance": 1}) == 1
    assert checks == [1]  # a write first: checked first (it is not run twice either)


def test_a_read_that_fails_on_a_sound_connection_is_not_run_again(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.db import DatabaseError, connection

    runs: list[str] = []
    real = rows._execute
    monkeypatch.setattr(rows, "_execute", lambda db, sql, params: runs.append(sql) or real(db, sql, params))
    _next_request()
    kept = connection.connection
    with pytest.raises(DatabaseError):
        rows.one("SELECT no_such_column FROM loyalty_pointsaccount", [])
    assert len(runs) == 1 and connection.connection is kept


@pytest.mark.django_db(transaction=True)
def test_it_writes_in_the_orms_transaction_while_an_event_loop_runs_in_the_thread() -> None:
    """Django gives a thread other connections while an event loop runs in it (as Playwright's
    sync API or an async server leaves one): the fast path must write on the ORM's, inside its
    transaction, not on the one this thread had before. (A thread of its own: the suite's
    browser tests may leave a loop running in this one.)"""
    import asyncio
    import threading

    from django.db import DEFAULT_DB_ALIAS, connections

    seen: list[bool] = []

    def till() -> None:
        try:
            seen.append(rows._db() is connections[DEFAULT_DB_ALIAS])  # before any loop

            async def inside() -> None:
                seen.append(rows._db() is connections[DEFAULT_DB_ALIAS])

            asyncio.run(inside())
        finally:
            connections.close_all()

    thread = threading.Thread(target=till)
    thread.start()
    thread.join(30)
    assert seen == [True, True]
