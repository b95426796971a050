"""The `memberhub` command: presets the settings and runs the management commands.

    memberhub serve [--host H] [--port P] [--demo]   start the service
    memberhub worker                                   background and periodic jobs
    memberhub migrate | createadmin | check
    memberhub apikey create --name N --scopes S
    memberhub import members FILE
    memberhub analytics rfm|clv --from-csv FILE ...    (no database needed)
    memberhub analytics rfm|clv|health [...]           on the database: compute, store, summarise
"""

from __future__ import annotations

import os
import signal
import sys

ALIASES = {"import": "import_data"}
# What `memberhub`, `memberhub --help` print: the product's commands, at once (Django's own
# help would first load every app to list its commands, including Django's for developers).
USAGE = """usage: memberhub COMMAND [options]

commands:
  serve        start the service: web server and background jobs (--demo loads demo data)
  worker       run the background and periodic jobs apart from serve (serve --no-worker)
  migrate      apply database migrations
  check        configuration, database, migrations, encryption keys, job consumer
  createadmin  create a staff account
  apikey       create, list or revoke integration keys
  import       import members or orders from CSV or Excel
  loyalty      run the loyalty jobs now (nightly), import CDNOW-style orders (import-orders)
  analytics    RFM, lifetime value and programme health (--from-csv: any file, no database)
  events       the event outbox: list deliveries, retry dead ones, sweep
  backup       a consistent backup while the service runs
  restore      restore a backup (stop the service first)

`memberhub COMMAND --help` shows a command's options; `memberhub help --all` lists every command,
Django's own included.
"""


def _from_csv(args: list[str]) -> bool:
    """`--from-csv` (or no subcommand, or help): the file-based analytics, without Django."""
    if any(a == "--from-csv" or a.startswith("--from-csv=") for a in args):
        return True
    return not args or args[0] not in ("rfm", "clv", "health")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args in (["--help"], ["-h"], ["help"]):
        sys.stdout.write(USAGE)
        return 0
    if args[:2] == ["help", "--all"]:
        args = ["help"]
    if args and args[0] == "analytics" and _from_csv(args[1:]):
        # Works on any export without a database or even settings.
        from memberhub.analytics.csv_cli import run

        return run(args[1:], sys.stdout, sys.stderr)
    if args and args[0] == "worker":
        from memberhub.core.lifeline import die_with_parent, parent_from_env

        if (parent := parent_from_env()) is not None:  # run by `serve`: end with it
            die_with_parent(parent)
            # serve stops it with SIGINT (Huey's graceful stop, once the consumer runs); before
            # that, stopping is all there is to do
            signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    if args and args[0] in ALIASES:
        args[0] = ALIASES[args[0]]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "memberhub.settings")
    from memberhub.conf import ConfigError

    if args and args[0] == "serve":
        _metrics_folder()

    try:
        import django

        django.setup()
    except ConfigError as exc:
        print(f"memberhub: configuration error: {exc}", file=sys.stderr)
        return 2
    from django.core.management import execute_from_command_line
    from django.db import InterfaceError, OperationalError

    try:
        execute_from_command_line(["memberhub", *args])
    except ConfigError as exc:  # e.g. a malformed MEMBERHUB_PORT read by `serve`
        print(f"memberhub: configuration error: {exc}", file=sys.stderr)
        return 2
    except (OperationalError, InterfaceError) as exc:  # down, unreachable, or busy past its wait
        print(f"memberhub: the database cannot be reached or is busy: {exc}".rstrip(), file=sys.stderr)
        return 1
    return 0


def _metrics_folder() -> None:
    """`serve` runs several processes: each writes its metrics into one folder that a scrape
    adds up. Named before anything imports prometheus_client (it reads the name at import)."""
    from pathlib import Path

    from memberhub.conf import default_data_dir
    from memberhub.core.metrics_folder import prepare_multiprocess_dir

    data_dir = Path(os.environ.get("MEMBERHUB_DATA_DIR") or default_data_dir()).expanduser()
    prepare_multiprocess_dir(data_dir / "metrics")


if __name__ == "__main__":
    sys.exit(main())
