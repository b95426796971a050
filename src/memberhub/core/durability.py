"""An answer means its effect is on disk.

PostgreSQL: COMMIT returns once the commit's WAL record is flushed, unless
`synchronous_commit` is `off`; every connection the app opens is checked, and set back to
`on` if a server, database or role default turned it off (`ensure_synchronous_commit`).

SQLite runs `synchronous=NORMAL` (a commit does not wait for the disk) with group commit:
`DurableAnswerMiddleware`, outermost, notices a request that changed the database (the
connection's `total_changes`) and holds its answer until this process's log flusher
(core/wal_flush.py) has completed a sync that began after the request's last commit. Many
requests committing at once share one sync. Should the sync fail (or not finish within
`SYNC_TIMEOUT`), the answer is 503 `commit_not_confirmed`: the change is saved, but it cannot
be promised to survive a power cut; sending the request again with its Idempotency-Key replays
the stored answer.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db.backends.base.base import BaseDatabaseWrapper
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _

from memberhub.core import wal_flush
from memberhub.core.errors import ApplicationError

log = logging.getLogger(__name__)

# A healthy disk syncs in milliseconds; this long means the storage has stalled.
SYNC_TIMEOUT = 30.0

_noted = threading.local()  # the last commit the hot path (rows.writing) took a ticket for


class CommitNotConfirmed(ApplicationError):
    status = 503
    code = "commit_not_confirmed"
    default_message = _("The change was saved but could not be confirmed on disk; "
                        "send the request again with the same Idempotency-Key.")


def _flusher(db: BaseDatabaseWrapper) -> wal_flush.WalFlusher | None:
    if db.is_in_memory_db():  # type: ignore[attr-defined]
        return None
    return wal_flush.flusher(str(db.settings_dict["NAME"]))


def _total_changes(conn: Any) -> int | None:
    """Rows changed through this driver connection since it opened; None if it is closed (a
    connection the server dropped, closed under Django: anything it committed is covered by a
    sync that starts now)."""
    try:
        return int(conn.total_changes)
    except sqlite3.Error:
        return None


def note_commit(db: BaseDatabaseWrapper, ticket: int) -> None:
    """The hot path took a ticket right after its COMMIT (so the sync started early): the
    request reuses it unless it wrote again afterwards."""
    conn = db.connection
    if conn is not None:
        _noted.mark = (conn, _total_changes(conn), ticket)


def _changes(db: BaseDatabaseWrapper) -> tuple[Any, int | None]:
    conn = db.connection
    return (conn, _total_changes(conn)) if conn is not None else (None, 0)


def wait_for_disk(db: BaseDatabaseWrapper, before: tuple[Any, int | None]) -> bool:
    """After a request: if it committed anything on this connection since `before`, wait for
    a log sync that covers it. True when nothing was committed or the sync succeeded."""
    conn = db.connection
    if conn is None or db.in_atomic_block:  # nothing committed yet (a test's outer transaction)
        return True
    changes = _total_changes(conn)
    if conn is before[0] and changes is not None and changes == before[1]:
        return True  # read only
    flusher = _flusher(db)
    if flusher is None:
        return True
    mark = getattr(_noted, "mark", None)
    if mark is not None and mark[0] is conn and changes is not None and mark[1] == changes:
        ticket = mark[2]
    else:
        ticket = flusher.committed()
    _noted.mark = None
    if flusher.wait(ticket, SYNC_TIMEOUT):
        return True
    log.error("a commit could not be confirmed on disk (log sync failed or stalled): answered 503")
    return False


class DurableAnswerMiddleware:
    """Outermost: every commit of the request (the session's too) is on disk before the
    answer leaves (SQLite; PostgreSQL's COMMIT has already waited)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.sqlite = (settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")
                       and getattr(settings, "DURABLE_ANSWERS", True))

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not self.sqlite:
            return self.get_response(request)
        from memberhub.core.rows import _db

        db = _db()
        before = _changes(db)
        response = self.get_response(request)
        if wait_for_disk(db, before):
            return response
        from memberhub.core.http import error_response

        return error_response(CommitNotConfirmed())


def ensure_synchronous_commit(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """`connection_created`: a PostgreSQL connection whose `synchronous_commit` is `off` (a
    server, database or role default) would answer before its commit is on disk; set it back
    to `on` for this session. (`local`, `remote_write`, `on` and `remote_apply` all wait for
    the local flush.)"""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        row = cursor.fetchone()
        if row is not None and row[0] == "off":
            cursor.execute("SET synchronous_commit = on")
            log.warning("synchronous_commit was off for this database connection; set to on")
