from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from memberhub.conf import env_int, env_str
from memberhub.core.bootstrap import migrate_if_behind


class Command(BaseCommand):
    requires_system_checks: list[str] = []  # checked after migrating, not before
    help = "Migrate if needed, ensure an administrator, optionally load demo data, and serve HTTP."

    def add_arguments(self, parser: CommandParser) -> None:
        # Strict parsing: a malformed MEMBERHUB_PORT stops the start with a message naming it.
        parser.add_argument("--host", default=env_str("MEMBERHUB_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=env_int("MEMBERHUB_PORT", 8000, minimum=1, maximum=65535))
        parser.add_argument("--demo", action="store_true", help="load demo stores, staff and members")
        parser.add_argument("--workers", type=int, default=env_int("MEMBERHUB_WEB_WORKERS", 0, minimum=0) or None,
                            help="worker processes (default: one per CPU, at least 2)")
        parser.add_argument("--threads", type=int, default=env_int("MEMBERHUB_WEB_THREADS", 0, minimum=0) or None,
                            help="blocking threads per worker (default: 1 on SQLite, 4 on PostgreSQL)")

    def handle(self, *args: Any, **opts: Any) -> None:
        if migrate_if_behind(self.stdout, ensure_admin=True):
            self.stdout.write("Database migrated.")
        if opts["demo"]:
            from memberhub.core.demo import demo_load

            demo_load(out=self.stdout)
        from memberhub.loyalty.checks import programme_valid

        for problem in programme_valid():  # served anyway, so it can be corrected; earning answers 503
            self.stderr.write(f"ERROR {problem.msg}\n  HINT {problem.hint}")
        from memberhub.core.server import serve

        workers, threads = server_shape(sqlite=settings.DATABASE_VENDOR == "sqlite", cpus=os.cpu_count() or 1)
        workers, threads = opts["workers"] or workers, opts["threads"] or threads
        self.stdout.write(f"Serving on http://{opts['host']}:{opts['port']}/  (API docs at /api/v1/docs; "
                          f"{workers} workers × {threads} threads)")
        serve(host=opts["host"], port=opts["port"], workers=workers, threads=threads)


def server_shape(*, sqlite: bool, cpus: int) -> tuple[int, int]:
    """Default workers × threads. SQLite writes one transaction at a time, and threads of one
    process share the GIL, so one thread per process and a process per CPU serve the most
    (measured under gunicorn on 2 CPUs, 32 clients recording purchases: 2×1 ≈ 600/s, 2×2 ≈ 520/s,
    3×1 ≈ 460/s, 4×4 ≈ 250/s, 1×8 ≈ 250/s). PostgreSQL waits on the network, so more threads."""
    # A process per CPU on both: SQLite still has one writer and granian's blocking threads share
    # the GIL; on PostgreSQL (2 CPUs, granian, /healthz) 2×4 ≈ 2,000-2,270/s p99 26-34 ms against
    # 4×4 ≈ 1,600-1,700/s p99 0.7-1.3 s.
    return max(2, cpus), (1 if sqlite else 4)
