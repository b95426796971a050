"""`memberhub loyalty import-orders FILE [--create-members] [--source S]` and `memberhub loyalty nightly`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from memberhub.access.principal import system_principal
from memberhub.core.errors import ApplicationError
from memberhub.core.tabular import open_path


class Command(BaseCommand):
    help = "Loyalty maintenance: import orders (with placeholder members), run the nightly jobs now."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        imp = sub.add_parser("import-orders", help="import purchases from CSV, Excel or CDNOW text")
        imp.add_argument("file", type=Path)
        imp.add_argument("--create-members", action="store_true",
                         help="create a placeholder member per external customer id and earn points")
        imp.add_argument("--source", default=None, help="prefix of external ids and order numbers (default cdnow)")
        imp.add_argument("--report", type=Path)
        imp.add_argument("--quiet", action="store_true")
        sub.add_parser("nightly", help="release pending points, expire, remind, evaluate tiers")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["action"] == "nightly":
            from memberhub.loyalty.jobs import nightly

            self.stdout.write(json.dumps(nightly(), default=str))
            return
        from memberhub.imports.services import import_run

        path: Path = opts["file"]
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        try:
            with open_path(path) as fh, Progress(TextColumn("[bold]importing"), BarColumn(), MofNCompleteColumn(),
                                                 TimeElapsedColumn(), disable=opts["quiet"], transient=True) as bar:
                task = bar.add_task("rows", total=None)
                data = import_run(actor=system_principal(), kind="orders", fh=fh, filename=path.name,
                                  options={"create_members": opts["create_members"], "source": opts["source"]},
                                  progress=lambda n: bar.update(task, completed=n))
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        if opts["report"]:
            opts["report"].write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
        self.stdout.write(json.dumps({k: v for k, v in data.items() if k != "rejections"}, ensure_ascii=False))
        for r in data["rejections"][:20]:
            self.stderr.write(f"row {r['row']}: {r['code']} {r['message']}")
