"""What `memberhub serve` does before it listens: migrate under a lock, ensure an administrator."""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from collections.abc import Iterator

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor

from memberhub.core.output import Writer

_PG_LOCK_KEY = 0x6D656D62  # "memb": one advisory lock id for migrations


@contextlib.contextmanager
def migration_lock() -> Iterator[None]:
    """Two starts at once must not both migrate: a file lock beside SQLite, an advisory lock on PostgreSQL."""
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", [_PG_LOCK_KEY])
        try:
            yield
        finally:
            with connection.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", [_PG_LOCK_KEY])
        return
    path = settings.DATA_DIR / "migrate.lock"
    with open(path, "w") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def migrations_pending() -> bool:
    connection = connections[DEFAULT_DB_ALIAS]
    executor = MigrationExecutor(connection)
    return bool(executor.migration_plan(executor.loader.graph.leaf_nodes()))


def migrate_if_behind(out: Writer, *, ensure_admin: bool = False) -> bool:
    """Migrate when behind and, if asked, create the first administrator, all under the lock:
    two processes starting at once must neither migrate twice nor create two administrators."""
    with migration_lock():
        migrated = migrations_pending()
        if migrated:
            call_command("migrate", interactive=False, verbosity=1, stdout=out)
        if ensure_admin:
            admin_ensure(out)
        return migrated


def admin_ensure(out: Writer) -> None:
    """Create the first administrator when none exists; print a generated password once."""
    User = get_user_model()
    if User.objects.filter(is_superuser=True).exists():
        return
    from memberhub.access.principal import system_principal
    from memberhub.access.services import staff_create
    from memberhub.conf import ConfigError
    from memberhub.core.errors import ApplicationError

    username = os.environ.get("MEMBERHUB_ADMIN_USERNAME") or "admin"
    password = os.environ.get("MEMBERHUB_ADMIN_PASSWORD")
    generated = not password
    password = password or secrets.token_urlsafe(12)
    try:
        staff_create(actor=system_principal("bootstrap"), username=username, password=password, role="admin",
                     email=os.environ.get("MEMBERHUB_ADMIN_EMAIL", ""), superuser=True)
    except ApplicationError as exc:  # a weak MEMBERHUB_ADMIN_PASSWORD: stop with the validators' reasons
        reasons = " ".join(exc.detail.get("reasons", []))
        raise ConfigError(f"MEMBERHUB_ADMIN_PASSWORD is refused ({exc.code}): {reasons}") from None
    out.write(f"Created administrator '{username}'.\n")
    if generated:
        out.write(f"  password: {password}\n  (shown once; set MEMBERHUB_ADMIN_PASSWORD to choose it)\n")
