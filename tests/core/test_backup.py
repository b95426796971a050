"""`memberhub backup` while tills write, then `memberhub restore`: every purchase acknowledged
before the backup began is there, the ledgers balance, and a database with data is not
overwritten unless told."""

from __future__ import annotations

import io
import stat
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from memberhub.loyalty.models import Purchase
from tests.loyalty.helpers import assert_sound, buy, member

pytestmark = pytest.mark.django_db(transaction=True)


def _till(n: int, members: list[int], acknowledged: list[tuple[str, float]], stop: threading.Event,
          errors: list[BaseException]) -> None:
    i = 0
    try:
        while not stop.is_set():
            order = f"B{n}-{i}"
            buy(members[i % len(members)], 1_000 + i, order_no=order)
            acknowledged.append((order, time.monotonic()))  # after the answer: acknowledged
            i += 1
    except BaseException as exc:  # a failure must fail the test, not vanish with the thread
        errors.append(exc)
    finally:
        connection.close()


def test_it_backs_up_while_tills_write_and_restores_everything_acknowledged_before(
        stores: Any, tmp_path: Path) -> None:
    members = [member().pk for _ in range(3)]
    acknowledged: list[tuple[str, float]] = []
    errors: list[BaseException] = []
    stop = threading.Event()
    tills = [threading.Thread(target=_till, args=(n, members, acknowledged, stop, errors)) for n in range(2)]
    for t in tills:
        t.start()
    try:
        while len(acknowledged) < 20 and not errors:
            time.sleep(0.05)
        began = time.monotonic()
        call_command("backup", str(tmp_path / "b.backup"), stdout=io.StringIO())
        finished = time.monotonic()
        while not [o for o, t in acknowledged if t > finished + 0.2] and not errors:
            time.sleep(0.05)  # writes after the backup, which the restore must take away
    finally:
        stop.set()
        for t in tills:
            t.join(60)
    assert not errors, errors
    written = {o for o, _ in acknowledged}
    before = {o for o, t in acknowledged if t < began}
    backup = tmp_path / "b.backup"
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600

    with pytest.raises(CommandError, match="--force"):
        call_command("restore", str(backup))
    assert Purchase.objects.count() == len(written)  # refused: nothing replaced

    call_command("restore", str(backup), force=True, stdout=io.StringIO())
    restored = set(Purchase.objects.values_list("order_no", flat=True))
    assert before <= restored  # every purchase answered before the backup began
    assert restored <= written and restored != written  # and none written after it finished
    for m in members:
        assert_sound(m)


def test_it_refuses_a_file_that_is_not_a_backup(db: Any, tmp_path: Path) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("not a database")
    with pytest.raises(CommandError, match="not a memberhub backup"):
        call_command("restore", str(junk))
    with pytest.raises(CommandError, match="does not exist"):
        call_command("restore", str(tmp_path / "missing.backup"))


def test_it_refuses_a_backup_of_the_other_database(db: Any, tmp_path: Path) -> None:
    other = tmp_path / "other.backup"
    other.write_bytes(b"PGDMP" + b"\0" * 64 if connection.vendor == "sqlite" else b"SQLite format 3\x00" + b"\0" * 64)
    with pytest.raises(CommandError, match="backup but the configured database is"):
        call_command("restore", str(other))
