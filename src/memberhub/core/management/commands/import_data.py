from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from memberhub.access.principal import system_principal
from memberhub.core.errors import ApplicationError
from memberhub.core.tabular import open_path

KINDS = ("members", "orders")  # memberhub.imports.services.KINDS


def _count_rows(path: Path) -> int | None:
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return None
    with path.open("rb") as fh:
        return max(sum(1 for _ in fh) - 1, 0)


class Command(BaseCommand):
    help = "Import members (and, as they land, orders) from a CSV or Excel file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", choices=KINDS)
        parser.add_argument("file", type=Path)
        parser.add_argument("--report", type=Path, help="write the full report (rejected rows) as JSON here")
        parser.add_argument("--quiet", action="store_true")

    def handle(self, *args: Any, **opts: Any) -> None:
        from memberhub.imports.services import import_run

        path: Path = opts["file"]
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        total = _count_rows(path)
        try:
            with open_path(path) as fh, Progress(
                TextColumn("[bold]importing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                disable=opts["quiet"], transient=True,
            ) as bar:
                task = bar.add_task("rows", total=total)
                # the same service as an uploaded import's job, in the foreground
                data = import_run(actor=system_principal(), kind=opts["kind"], fh=fh, filename=path.name,
                                  progress=lambda n: bar.update(task, completed=n))
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        if opts["report"]:
            opts["report"].write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
        summary = {k: v for k, v in data.items() if k not in ("rejections",)}
        self.stdout.write(json.dumps(summary, ensure_ascii=False))
        for r in data["rejections"][:20]:
            self.stderr.write(f"row {r['row']}: {r['code']} {r['message']}")
        if data["rejected"] > 20:
            self.stderr.write(f"... and {data['rejected'] - 20} more rejected rows (see --report)")
