from __future__ import annotations

import getpass
import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from memberhub.access.principal import system_principal
from memberhub.access.services import staff_create
from memberhub.core.errors import ApplicationError


class Command(BaseCommand):
    help = "Create an administrator (or another staff role) account."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default=os.environ.get("MEMBERHUB_ADMIN_USERNAME"))
        parser.add_argument("--email", default=os.environ.get("MEMBERHUB_ADMIN_EMAIL", ""))
        parser.add_argument("--role", default="admin", help="admin, marketing, cashier, service, analyst")
        parser.add_argument("--stores", default="", help="comma-separated store codes for a store-scoped role")

    def handle(self, *args: Any, **opts: Any) -> None:
        username = opts["username"] or input("Username: ").strip()
        password = os.environ.get("MEMBERHUB_ADMIN_PASSWORD") or getpass.getpass("Password: ")
        if not username or not password:
            raise CommandError("A username and a password are required.")
        try:
            # the operator at the console holds the machine: may grant anything, and is audited
            staff_create(actor=system_principal(), username=username, password=password, role=opts["role"],
                         store_codes=[s for s in opts["stores"].split(",") if s], email=opts["email"],
                         superuser=opts["role"] == "admin")
        except ApplicationError as exc:
            reasons = " ".join(exc.detail.get("reasons", []))
            raise CommandError(f"{exc.code}: {exc.message} {reasons}".rstrip()) from None
        self.stdout.write(f"Created {opts['role']} '{username}'.")
