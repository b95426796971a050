from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from memberhub.core.bootstrap import migrate_if_behind


class Command(BaseCommand):
    requires_system_checks: list[str] = []  # checked after migrating, not before
    help = "Migrate if needed, ensure an administrator, optionally load demo data, and serve HTTP."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("MEMBERHUB_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("MEMBERHUB_PORT", "8000")))
        parser.add_argument("--demo", action="store_true", help="load demo stores, staff and members")
        parser.add_argument("--workers", type=int, default=int(os.environ.get("MEMBERHUB_WEB_WORKERS", "0")) or None)
        parser.add_argument("--threads", type=int, default=int(os.environ.get("MEMBERHUB_WEB_THREADS", "4")))

    def handle(self, *args: Any, **opts: Any) -> None:
        if migrate_if_behind(self.stdout, ensure_admin=True):
            self.stdout.write("Database migrated.")
        if opts["demo"]:
            from memberhub.core.demo import demo_load

            demo_load(out=self.stdout)
        from memberhub.core.server import serve

        workers = opts["workers"] or max(2, (os.cpu_count() or 1) * 2)
        self.stdout.write(f"Serving on http://{opts['host']}:{opts['port']}/  (API docs at /api/v1/docs)")
        serve(host=opts["host"], port=opts["port"], workers=workers, threads=opts["threads"])
