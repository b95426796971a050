"""The data directory is its owner's alone: 0700, and every file in it (the SQLite database,
its -wal and -shm, the task queue, the development keys) without group or other bits. They
hold live session keys and the encryption keys; a 0644 database let any local user log in as
an administrator with a session key read from it."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

from tests.core.test_serve import BIN, _free_port, _get, _post, _wait


def _open_to_others(root: Path) -> dict[str, str]:
    found = {}
    for path in [root, *root.rglob("*")]:
        mode = path.lstat().st_mode
        if mode & 0o077 and not stat.S_ISLNK(mode):
            found[str(path.relative_to(root))] = oct(mode & 0o777)
    return found


def _umask_022() -> None:
    os.umask(0o022)  # a usual login shell's: files 0644, directories 0755


def test_a_fresh_data_dir_is_private_while_the_service_runs(tmp_path: Path) -> None:
    data = tmp_path / "data"  # made by the service itself
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL")}
    env.update(MEMBERHUB_DATA_DIR=str(data), MEMBERHUB_ADMIN_PASSWORD="first-admin-pass-1")
    port, log = _free_port(), tmp_path / "serve.log"
    proc = subprocess.Popen([str(BIN), "serve", "--port", str(port), "--workers", "1"], env=env,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=_umask_022)  # noqa: PLW1509 (sets the umask only)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(f"{base}/healthz", proc, log)
        # the docs page and its assets through the real server (WhiteNoise from the package)
        status, page = _get(f"{base}/api/v1/docs")
        assert status == 200 and b"/static/ninja/swagger-ui-bundle.js" in page
        assert _get(f"{base}/static/ninja/swagger-ui-bundle.js")[0] == 200
        # a login writes a session (its key is what a readable database gave away); the worker
        # keeps its connection open in WAL mode, so -wal and -shm exist beside the database
        status, _ = _post(urllib.request.build_opener(), f"{base}/api/v1/auth/login",
                          b'{"username": "admin", "password": "first-admin-pass-1"}')
        assert status == 200
        names = {p.name for p in data.iterdir()}
        assert {"memberhub.sqlite3", "memberhub.sqlite3-wal", "memberhub.sqlite3-shm", "tasks.sqlite3",
                "secret_key", "encryption_keys", "blind_index_key"} <= names, names
        assert _open_to_others(data) == {}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    assert _open_to_others(data) == {}


def test_a_data_dir_made_open_by_an_older_version_is_tightened(tmp_path: Path) -> None:
    from memberhub.conf import data_dir_private

    data = tmp_path / "old"
    (data / "static" / "admin").mkdir(parents=True)
    for path in (data, data / "static", data / "static" / "admin"):
        path.chmod(0o755)
    for name in ("memberhub.sqlite3", "memberhub.sqlite3-wal", "tasks.sqlite3", "static/admin/base.css"):
        (data / name).write_text("x")
        (data / name).chmod(0o644)
    (data / "script").write_text("x")
    (data / "script").chmod(0o775)
    assert len(_open_to_others(data)) == 8
    data_dir_private(data)
    assert _open_to_others(data) == {}
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "script").stat().st_mode) == 0o700  # the owner keeps what it had
    assert stat.S_IMODE((data / "tasks.sqlite3").stat().st_mode) == 0o600


def test_the_running_suites_data_dir_is_private(settings: Any, db: Any) -> None:
    """The settings this process loaded (on SQLite or PostgreSQL) made its data dir private, and
    what was created since (keys, the test database on SQLite, the static root) too."""
    from django.db import connection

    data = Path(settings.DATA_DIR)
    connection.ensure_connection()
    assert (data / "encryption_keys").exists() or os.environ.get("MEMBERHUB_ENCRYPTION_KEYS")
    assert Path(settings.STATIC_ROOT).is_dir()
    if connection.vendor == "sqlite":
        assert Path(connection.settings_dict["NAME"]).parent == data
    assert _open_to_others(data) == {}
