"""core.wal_flush: SQLite's log is synced in the background after commits, on the log only."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest
from django.db import connection

from memberhub.core import rows, wal_flush


def _wait_for(cond: object, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return True
        time.sleep(0.01)
    return False


def _wal_db(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA wal_autocheckpoint=0")  # the log stays until this test checkpoints it
    db.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
    return db


def test_a_commit_is_followed_by_a_sync_of_the_log_and_only_the_log(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite3"
    db = _wal_db(path)
    db.execute("INSERT INTO t VALUES (1)")
    flusher = wal_flush.flusher(str(path))
    assert flusher.syncs == 0
    flusher.committed()
    assert _wait_for(lambda: flusher.syncs >= 1)
    assert flusher._fd is not None
    assert os.readlink(f"/proc/self/fd/{flusher._fd}") == str(path) + "-wal"
    # commits in quick succession share syncs, and a waiter returns once one covers it
    before = flusher.syncs
    tickets = [flusher.committed() for _ in range(50)]
    assert flusher.wait(tickets[-1], 5)
    assert flusher.syncs - before < 10
    db.close()


def test_the_flusher_follows_a_log_that_was_removed_and_made_again(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite3"
    db = _wal_db(path)
    db.execute("INSERT INTO t VALUES (1)")
    flusher = wal_flush.flusher(str(path))
    flusher.committed()
    assert _wait_for(lambda: flusher.syncs >= 1)
    first = flusher._inode
    db.close()  # the last connection checkpoints and removes the log
    assert not (tmp_path / "b.sqlite3-wal").exists()
    flusher.flush()  # no log: nothing to do, no error
    db = _wal_db(path)
    db.execute("INSERT INTO t VALUES (2)")
    synced = flusher.syncs
    flusher.committed()
    assert _wait_for(lambda: flusher.syncs > synced)
    assert flusher._inode != first
    assert os.readlink(f"/proc/self/fd/{flusher._fd}") == str(path) + "-wal"
    db.close()


def test_one_flusher_per_database_and_process(tmp_path: Path) -> None:
    a, b = str(tmp_path / "x.sqlite3"), str(tmp_path / "y.sqlite3")
    assert wal_flush.flusher(a) is wal_flush.flusher(a)
    assert wal_flush.flusher(a) is not wal_flush.flusher(b)


@pytest.mark.django_db(transaction=True)
def test_the_earn_path_marks_its_commits_for_the_flusher_on_sqlite() -> None:
    name = str(connection.settings_dict["NAME"])
    key = (os.getpid(), name)
    earlier = wal_flush._flushers.get(key)
    if earlier is not None:  # an earlier test's commit has had its sync
        assert earlier.wait(earlier.committed(), 5)
    before = earlier.syncs if earlier is not None else 0
    with rows.writing():
        rows.execute("SELECT 1", []).close()
    if connection.vendor == "sqlite":
        flusher = wal_flush._flushers[key]
        assert _wait_for(lambda: flusher.syncs > before)
    else:  # PostgreSQL syncs its own log; nothing to do here
        assert key not in wal_flush._flushers
