from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run background and periodic jobs (Huey consumer; SQLite queue, or Redis with MEMBERHUB_REDIS_URL)."
    # Checked after migrating; and not "jobs are waiting with no consumer" (memberhub.W002) from
    # the consumer itself as it starts
    requires_system_checks: list[str] = []

    def handle(self, *args: Any, **opts: Any) -> None:
        from memberhub.core.bootstrap import migrate_if_behind

        migrate_if_behind(self.stdout)
        call_command("run_huey", skip_checks=True)
