"""`memberhub analytics rfm|clv|health` on the database (with --from-csv: on a file, see csv_cli).

rfm / clv compute the snapshots now, in this process, store them (they become current)
and print a summary; health prints the programme figures. Exit status 1 when a run fails.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from memberhub.access.principal import system_principal
from memberhub.analytics.models import AnalyticsRun
from memberhub.analytics.queries import query_parse
from memberhub.analytics.services import run_now
from memberhub.core.errors import ApplicationError


class Command(BaseCommand):
    help = "RFM / CLV snapshots and programme health on the database (add --from-csv for a file)."

    def run_from_argv(self, argv: list[str]) -> None:
        """`... analytics rfm --from-csv FILE`: the file command, which needs no database."""
        if any(a == "--from-csv" or a.startswith("--from-csv=") for a in argv[2:]):
            from memberhub.analytics.csv_cli import run

            raise SystemExit(run(argv[2:], sys.stdout, sys.stderr))
        super().run_from_argv(argv)

    def add_arguments(self, parser: CommandParser) -> None:
        subs = parser.add_subparsers(dest="what", required=True)
        rfm = subs.add_parser("rfm", help="RFM scores and segments; stores snapshots")
        clv = subs.add_parser("clv", help="RFM + CLV + lifecycle stage; stores snapshots")
        health = subs.add_parser("health", help="programme health for a date range")
        for p in (rfm, clv):
            p.add_argument("--observation-end", help="YYYY-MM-DD (default: today)")
            p.add_argument("--window-days", type=int)
            p.add_argument("--monetary", choices=("sum", "mean"), default="sum")
            p.add_argument("--basis", choices=("value", "score"), default="value")
        clv.add_argument("--model", choices=("bgnbd", "paretonbd"), default="bgnbd")
        clv.add_argument("--horizon-days", type=float, default=365.0)
        clv.add_argument("--discount-rate", type=float, default=0.10)
        clv.add_argument("--margin", type=float, default=1.0)
        clv.add_argument("--time-unit", choices=("days", "weeks"), default="days")
        health.add_argument("--from", dest="date_from")
        health.add_argument("--to", dest="date_to")
        health.add_argument("--store", action="append", default=[], help="store code (repeatable)")
        health.add_argument("--channel", choices=("online", "offline"))
        for p in (rfm, clv, health):
            p.add_argument("--format", choices=("table", "json"), default="table")
            p.add_argument("--quiet", action="store_true")

    def handle(self, *args: Any, **opts: Any) -> None:
        what = opts["what"]
        keys = {
            "rfm": ("observation_end", "window_days", "monetary", "basis"),
            "clv": ("observation_end", "window_days", "monetary", "basis", "model", "horizon_days", "discount_rate",
                    "margin", "time_unit"),
            "health": ("date_from", "date_to", "channel"),
        }[what]
        params = {k: opts[k] for k in keys if opts.get(k) is not None}
        if what == "health":
            params["stores"] = tuple(opts["store"])
        # an OutputWrapper writes like a text file
        console = Console(file=self.stdout, width=120, highlight=False, soft_wrap=False)  # type: ignore[arg-type]
        err = Console(file=self.stderr, highlight=False)  # type: ignore[arg-type]
        try:
            query = query_parse(what, params)
            run = run_now(actor=system_principal(), query=query,
                          progress=None if opts["quiet"] or opts["format"] == "json" else lambda m: err.print(f"[dim]{m}…"))
        except ApplicationError as exc:
            raise CommandError(f"{exc.message} {json.dumps(exc.detail, ensure_ascii=False, default=str)}") from None
        if opts["format"] == "json":
            self.stdout.write(json.dumps({"id": run.pk, "kind": run.kind, "status": run.status, "params": run.params,
                                          "fitted": run.fitted, "counts": run.counts, "result": run.result,
                                          "error": run.error}, ensure_ascii=False, indent=1, default=str))
        else:
            _summary(console, run)
        if run.status != AnalyticsRun.Status.SUCCEEDED:
            raise CommandError(f"analytics run {run.pk} failed: {run.error}")


def _summary(console: Console, run: AnalyticsRun) -> None:
    console.print(f"[bold]analytics {run.kind}[/] run {run.pk}: {run.status}"
                  + (f" in {(run.finished_at - run.started_at).total_seconds():.1f} s"
                     if run.finished_at and run.started_at else ""))
    if run.status != AnalyticsRun.Status.SUCCEEDED:
        return
    if run.kind == AnalyticsRun.Kind.HEALTH:
        r = run.result
        t = Table("figure", "value", title=f"{r['period']['date_from']} – {r['period']['date_to']}")
        for section in ("members", "sales", "repurchase"):
            for k, v in r[section].items():
                t.add_row(f"{section}.{k}", str(v))
        for k, v in r["points"].items():
            if k != "liability":
                t.add_row(f"points.{k}", str(v))
        for k in ("outstanding", "expiry_ratio", "expected_breakage"):
            t.add_row(f"liability.{k}", str(r["points"]["liability"][k]))
        t.add_row("tiers", ", ".join(f"{k}={v}" for k, v in r["tiers"].items()))
        console.print(t)
        return
    c = run.counts
    console.print(f"{c.get('purchases', 0)} purchases, {c.get('members_analysed', 0)} members analysed, "
                  f"{c.get('snapshots', 0)} snapshots stored (now current)")
    for block in ("purchase_model", "spend_model"):
        fit = run.fitted.get(block)
        if fit:
            params = ", ".join(f"{k}={v:.4g}" for k, v in fit["params"].items() if v is not None)
            console.print(f"{fit['name']}: {params}  (log-likelihood {fit['log_likelihood']:.2f}, "
                          f"converged: {fit['converged']}, fit: {fit.get('status', 'ok')})")
    for warning in run.fitted.get("warnings", []):
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    table = Table("segment", "members")
    for name, n in c.get("segments", {}).items():
        table.add_row(name, str(n))
    console.print(table)
    if "stages" in c:
        stages = Table("stage", "members")
        for name, n in c["stages"].items():
            stages.add_row(name, str(n))
        console.print(stages)
        console.print(f"total CLV: {c.get('clv_fen', 0) / 100:,.2f} yuan; expected purchases: "
                      f"{c.get('expected_purchases') or 0:,.1f}")
