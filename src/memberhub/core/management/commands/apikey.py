from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from memberhub.access.models import ApiKey
from memberhub.access.principal import system_principal
from memberhub.access.services import apikey_create, apikey_revoke
from memberhub.core.errors import ApplicationError


class Command(BaseCommand):
    help = "Manage API keys: create, list, revoke."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create")
        create.add_argument("--name", required=True)
        create.add_argument("--scopes", required=True, help="comma-separated, e.g. members:read,members:write")
        create.add_argument("--stores", default="", help="comma-separated store codes (default: all stores)")
        sub.add_parser("list")
        revoke = sub.add_parser("revoke")
        revoke.add_argument("prefix")

    def handle(self, *args: Any, **opts: Any) -> None:
        actor = system_principal()
        try:
            if opts["action"] == "create":
                key, plain = apikey_create(
                    actor=actor, name=opts["name"], scopes=[s.strip() for s in opts["scopes"].split(",") if s.strip()],
                    store_codes=[s for s in opts["stores"].split(",") if s],
                )
                self.stdout.write(f"Created API key '{key.name}' (prefix {key.prefix}). Shown once:\n{plain}")
            elif opts["action"] == "list":
                for k in ApiKey.objects.order_by("pk"):
                    state = "revoked" if k.revoked_at else "active"
                    self.stdout.write(f"{k.prefix}  {state:8} {k.name}  {','.join(k.scopes)}")
            else:
                apikey_revoke(actor=actor, prefix=opts["prefix"])
                self.stdout.write(f"Revoked {opts['prefix']}.")
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc.message} {exc.detail or ''}") from None
