from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from memberhub.core import outbox, selectors
from memberhub.core.models import EventDelivery


class Command(BaseCommand):
    help = "The event outbox: list deliveries (dead by default), retry dead ones, deliver what is due."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list")
        listing.add_argument("--state", default="dead", choices=[s.value for s in EventDelivery.State])
        listing.add_argument("--limit", type=int, default=50)
        retry = sub.add_parser("retry-dead", help="put dead deliveries back in the queue (all, or the ids given)")
        retry.add_argument("ids", nargs="*", type=int)
        sub.add_parser("sweep", help="deliver every due delivery now (what the worker does each minute)")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["action"] == "list":
            for d in selectors.deliveries_list(state=opts["state"]).order_by("-pk")[: opts["limit"]]:
                error = d.last_error.splitlines()[0] if d.last_error else ""
                self.stdout.write(f"{d.pk}  {d.state:7} {d.attempts:2}×  {d.event}  {d.handler}  {d.payload}  {error}")
            self.stdout.write(f"lag {selectors.outbox_lag_seconds():.0f} s, {selectors.dead_letters()} dead")
        elif opts["action"] == "retry-dead":
            ids = opts["ids"] or list(selectors.deliveries_list(state=EventDelivery.State.DEAD)
                                      .order_by("pk").values_list("pk", flat=True))
            requeued = sum(outbox.retry(pk) for pk in ids)
            self.stdout.write(f"{requeued} of {len(ids)} requeued.")
        else:
            self.stdout.write(f"{outbox.sweep()} delivered.")
