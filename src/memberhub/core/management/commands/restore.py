from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from memberhub.core.backup import BackupError, restore


class Command(BaseCommand):
    help = ("Restore a backup made by `memberhub backup` (stop the service first). Refuses a database "
            "that holds members or ledger entries unless --force.")
    requires_system_checks: list[str] = []  # the database may be empty or behind: that is the point

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--force", action="store_true", help="replace a database that holds data")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            vendor = restore(opts["file"], force=opts["force"])
        except (BackupError, OSError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Restored {opts['file']} into the {vendor} database. "
                          "`memberhub serve` applies any newer migrations at start.")
