"""An answer means its effect is on disk (core/durability.py, core/wal_flush.py).

SQLite: a request that committed is answered only after a log sync that began after its commit
has finished; concurrent commits share a sync; a failed sync answers 503. PostgreSQL: every
connection of the app commits with `synchronous_commit` on, even where a default turned it off.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from memberhub.core import wal_flush
from memberhub.members.models import Member
from tests.conftest import Api

BODY = {"phone": "13800138000", "name": "王小明", "home_store": "SH"}


def _idle(flusher: wal_flush.WalFlusher) -> None:
    """Let earlier commits' syncs finish, so the next sync starts after the test's commit."""
    deadline = time.monotonic() + 5
    while flusher.synced < flusher._issued and time.monotonic() < deadline:
        time.sleep(0.005)
    assert flusher.synced == flusher._issued


def _sqlite_flusher() -> wal_flush.WalFlusher:
    return wal_flush.flusher(str(connection.settings_dict["NAME"]))


@pytest.mark.django_db(transaction=True)
def test_a_write_is_answered_only_after_a_log_sync_that_began_after_its_commit(
        admin_api: Api, stores: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    if connection.vendor == "postgresql":
        # the commit itself waits for the WAL flush: synchronous_commit is on for the app
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            assert cursor.fetchone()[0] == "on"
        assert admin_api.post("/members", BODY).status_code == 201
        return
    flusher = _sqlite_flusher()
    _idle(flusher)
    real, gate, started = wal_flush._sync, threading.Event(), []

    def held_sync(fd: int) -> None:  # the disk is slow: the sync waits for the test
        started.append(flusher._issued)
        assert gate.wait(10)
        real(fd)

    monkeypatch.setattr(wal_flush, "_sync", held_sync)
    syncs = flusher.syncs
    answers: list[Any] = []
    request = threading.Thread(target=lambda: answers.append(admin_api.post("/members", BODY)))
    request.start()
    try:
        deadline = time.monotonic() + 10
        while not Member.objects.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert Member.objects.exists(), "the request committed"
        time.sleep(0.3)
        # committed, and a sync is running, but not finished: no answer yet
        assert started and request.is_alive() and not answers
    finally:
        gate.set()
        request.join(10)
    assert answers and answers[0].status_code == 201, answers
    assert flusher.syncs > syncs


@pytest.mark.django_db(transaction=True)
def test_a_request_that_writes_nothing_does_not_wait_for_a_sync(
        client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    if connection.vendor == "sqlite":
        flusher = _sqlite_flusher()
        _idle(flusher)
        monkeypatch.setattr(wal_flush, "_sync", lambda fd: pytest.fail("a read waited for a sync"))
        issued = flusher._issued
        assert client.get("/healthz").status_code == 200
        assert flusher._issued == issued
    else:
        assert client.get("/healthz").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_commit_that_cannot_be_synced_is_not_acknowledged(
        admin_api: Api, stores: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    if connection.vendor == "postgresql":
        # a server, database or role default of `off` is overridden on every app connection
        name = connection.settings_dict["NAME"]
        with connection.cursor() as cursor:
            cursor.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
        try:
            connection.close()
            with connection.cursor() as cursor:
                cursor.execute("SHOW synchronous_commit")
                assert cursor.fetchone()[0] == "on"
        finally:
            with connection.cursor() as cursor:
                cursor.execute(f'ALTER DATABASE "{name}" RESET synchronous_commit')
            connection.close()
        return
    flusher = _sqlite_flusher()
    _idle(flusher)

    def broken(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(wal_flush, "_sync", broken)
    r = admin_api.post("/members", BODY)
    assert r.status_code == 503 and r.json()["code"] == "commit_not_confirmed", r.content
    assert r["Retry-After"]


def test_concurrent_commits_share_one_sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "g.sqlite3"
    (tmp_path / "g.sqlite3-wal").write_bytes(b"x")
    flusher = wal_flush.flusher(str(path))
    real, gate, covered = wal_flush._sync, threading.Event(), []

    def held_sync(fd: int) -> None:
        covered.append(flusher._issued)
        assert gate.wait(10)
        real(fd)

    monkeypatch.setattr(wal_flush, "_sync", held_sync)
    first = flusher.committed()  # its sync starts and is held
    deadline = time.monotonic() + 5
    while not covered and time.monotonic() < deadline:
        time.sleep(0.005)
    results: list[bool] = []
    waiters = [threading.Thread(target=lambda: results.append(flusher.wait(flusher.committed(), 10)))
               for _ in range(20)]
    for w in waiters:
        w.start()
    while flusher._issued < 21 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert not flusher.wait(first, 0.05)  # the sync that covers it has not finished
    gate.set()
    for w in waiters:
        w.join(10)
    assert results == [True] * 20
    assert flusher.wait(first, 1)
    assert flusher.syncs == 2  # the held one, then one for the twenty commits made meanwhile


@pytest.mark.django_db(transaction=True)
def test_the_wait_can_be_turned_off(make_key: Any, stores: Any, settings: Any,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """MEMBERHUB_DURABLE_ANSWERS=false: answers go out without waiting for the log sync."""
    settings.DURABLE_ANSWERS = False
    api = Api(Client(), make_key())  # a new client: its handler reads the setting
    if connection.vendor == "sqlite":
        _idle(_sqlite_flusher())

        def broken(fd: int) -> None:
            raise OSError(5, "Input/output error")

        monkeypatch.setattr(wal_flush, "_sync", broken)
    assert api.post("/members", BODY).status_code == 201
