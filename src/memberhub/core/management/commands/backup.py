from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from memberhub.core.backup import BackupError, backup


class Command(BaseCommand):
    help = ("Write a consistent backup of the database to FILE while the service runs "
            "(SQLite: online backup; PostgreSQL: pg_dump). Keep the encryption keys with it.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            result = backup(opts["file"])
        except (BackupError, OSError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Backup of the {result.vendor} database written to {result.path} "
                          f"({result.size_bytes:,} bytes).")
        self.stdout.write("Personal data in it is encrypted: keep MEMBERHUB_ENCRYPTION_KEYS and "
                          "MEMBERHUB_BLIND_INDEX_KEY with your backups, or it cannot be read after a restore.")
