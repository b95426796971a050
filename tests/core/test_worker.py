"""The job worker as an operator starts it, and the housekeeping job it runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from memberhub.core.models import IdempotencyRecord
from memberhub.core.tasks import idempotency_purge

BIN = Path(sys.executable).with_name("memberhub")


def test_it_starts_the_worker_on_the_embedded_queue(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL")}
    env["MEMBERHUB_DATA_DIR"] = str(tmp_path)
    proc = subprocess.Popen([str(BIN), "worker"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(ln.decode() for ln in proc.stdout or []), daemon=True)
    reader.start()
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline and not any("consumer started" in ln.lower() for ln in lines):
            assert proc.poll() is None, "".join(lines)
            time.sleep(0.3)
        time.sleep(1)
        assert proc.poll() is None  # still running: consuming
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=30)
        reader.join(timeout=10)
    out = "".join(lines)
    assert "consumer started" in out.lower(), out
    assert "idempotency_purge_task" in out  # the periodic job is registered with the consumer
    assert (tmp_path / "tasks.sqlite3").exists()


@pytest.mark.django_db
def test_it_purges_only_expired_idempotency_keys(settings: object) -> None:
    old = IdempotencyRecord.objects.create(scope="s", key="old", fingerprint="f", state="done")
    new = IdempotencyRecord.objects.create(scope="s", key="new", fingerprint="f", state="done")
    IdempotencyRecord.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=49))
    assert idempotency_purge() == 1
    assert list(IdempotencyRecord.objects.values_list("pk", flat=True)) == [new.pk]
