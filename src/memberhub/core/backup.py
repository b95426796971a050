"""`memberhub backup FILE` and `memberhub restore FILE`: a consistent copy while the service runs.

SQLite: the online backup API copies the database as of one moment (one read transaction
over the WAL: writers go on meanwhile) into a new file, checked with `PRAGMA
integrity_check` before it takes the backup's name. PostgreSQL: `pg_dump` in its custom
format (one repeatable-read snapshot) and `pg_restore` into one transaction.

The personal data in a backup is encrypted with MEMBERHUB_ENCRYPTION_KEYS and found by
MEMBERHUB_BLIND_INDEX_KEY: a backup restored without those keys has lost it. Keep the keys
with the backups (in the secret store), never inside them.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"
# Apps whose rows are the programme's business data: a database holding any is not "empty".
_BUSINESS_APPS = ("members", "loyalty", "coupons", "wallet", "checkout")


class BackupError(Exception):
    """Said to the operator as it is (the CLI prints it and exits 1)."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size_bytes: int
    vendor: str


def _vendor() -> str:
    return str(connections[DEFAULT_DB_ALIAS].vendor)


def _file_kind(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PGDUMP_MAGIC):
        return "postgresql"
    raise BackupError(f"{path} is not a memberhub backup (neither an SQLite database nor a pg_dump archive)")


def _private_file(path: Path) -> None:
    os.chmod(path, 0o600)  # it holds session keys and ciphertext of personal data


def backup(target: Path) -> BackupResult:
    target = target.expanduser().resolve()
    if target.exists() and target.is_dir():
        raise BackupError(f"{target} is a directory; name the backup file")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    vendor = _vendor()
    try:
        if vendor == "sqlite":
            _sqlite_backup(Path(settings.DATABASES[DEFAULT_DB_ALIAS]["NAME"]), partial)
        elif vendor == "postgresql":
            _pg_dump(partial)
        else:
            raise BackupError(f"backups of a {vendor} database are not supported")
        with open(partial, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(partial, target)  # the name appears only once the copy is whole
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult(target, target.stat().st_size, vendor)


def _sqlite_backup(source: Path, partial: Path) -> None:
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(source, timeout=settings.DATABASES[DEFAULT_DB_ALIAS].get("OPTIONS", {}).get("timeout", 30))
    dst = sqlite3.connect(partial)
    try:
        _private_file(partial)
        src.backup(dst)  # all pages in one step: one snapshot, whatever writers do meanwhile
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        ok = dst.execute("PRAGMA integrity_check").fetchone()[0]
        if ok != "ok":
            raise BackupError(f"the copy failed its integrity check: {ok}")
    finally:
        dst.close()
        src.close()


def _pg_bin(name: str) -> str:
    """The newest of Debian's PostgreSQL tools (pg_dump must be at least the server's version),
    else the one on PATH; MEMBERHUB_PG_BIN_DIR names another folder."""
    folder = os.environ.get("MEMBERHUB_PG_BIN_DIR")
    if folder:
        return str(Path(folder) / name)
    debian = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
                    key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    if debian:
        return str(debian[-1])
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} was not found: install PostgreSQL's client tools (Debian: postgresql-client)")
    return found


def _pg_env() -> tuple[dict[str, str], str]:
    db: dict[str, Any] = dict(settings.DATABASES[DEFAULT_DB_ALIAS])
    env = dict(os.environ)
    for key, var in (("HOST", "PGHOST"), ("PORT", "PGPORT"), ("USER", "PGUSER"), ("PASSWORD", "PGPASSWORD")):
        if db.get(key):
            env[var] = str(db[key])
    return env, str(db["NAME"])


def _run(cmd: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"{Path(cmd[0]).name} failed: {(done.stderr or done.stdout).strip()[:2000]}")


def _pg_dump(partial: Path) -> None:
    env, name = _pg_env()
    partial.touch(mode=0o600)
    _private_file(partial)
    _run([_pg_bin("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", f"--file={partial}", name], env)


def business_rows() -> int:
    """How many tables of the programme's business data hold rows (0: safe to restore over)."""
    connection = connections[DEFAULT_DB_ALIAS]
    existing = set(connection.introspection.table_names())
    count = 0
    for label in _BUSINESS_APPS:
        for model in apps.get_app_config(label).get_models():
            if model._meta.db_table in existing and model._default_manager.using(DEFAULT_DB_ALIAS).exists():
                count += 1
    return count


def restore(source: Path, *, force: bool = False) -> str:
    """Replace the database's content with the backup's. Refuses a database that holds
    members or ledger rows unless `force`. Run it with the service stopped."""
    source = source.expanduser().resolve()
    if not source.is_file():
        raise BackupError(f"{source} does not exist")
    kind, vendor = _file_kind(source), _vendor()
    if kind != vendor:
        raise BackupError(f"{source} is a {kind} backup but the configured database is {vendor}")
    if not force and business_rows():
        raise BackupError("the database already holds members or ledger entries; restoring would replace them "
                          "(pass --force to do it anyway)")
    connections.close_all()
    if vendor == "sqlite":
        _sqlite_restore(source, Path(settings.DATABASES[DEFAULT_DB_ALIAS]["NAME"]))
    else:
        env, name = _pg_env()
        # --clean drops what the backup recreates; one transaction: all of it or nothing
        _run([_pg_bin("pg_restore"), "--clean", "--if-exists", "--no-owner", "--no-privileges",
              "--single-transaction", "--exit-on-error", f"--dbname={name}", str(source)], env)
    connections.close_all()
    return vendor


def _sqlite_restore(source: Path, target: Path) -> None:
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        ok = src.execute("PRAGMA integrity_check").fetchone()[0]
        if ok != "ok":
            raise BackupError(f"the backup failed its integrity check: {ok}")
        if not src.execute("SELECT 1 FROM sqlite_master WHERE name = 'django_migrations'").fetchone():
            raise BackupError(f"{source} is an SQLite database but not a memberhub backup")
        dst = sqlite3.connect(target, timeout=60)
        try:
            src.backup(dst)  # under the target's write lock: readers see the old or the new, whole
            dst.execute("PRAGMA journal_mode=WAL")
        finally:
            dst.close()
    finally:
        src.close()
    _private_file(target)
