"""The production HTTP server: granian (a Rust HTTP server) running the Django WSGI app in worker
processes, each with a pool of blocking threads; static files via WhiteNoise."""

from __future__ import annotations

import importlib
import ipaddress
import socket
from collections.abc import Callable, Iterable
from typing import Any

from granian import Granian
from granian.constants import Interfaces

TARGET = "memberhub.wsgi:application"
# With MEMBERHUB_BEHIND_PROXY, a reverse proxy on this host may say who the client is
# (X-Forwarded-For); anyone else's forwarding headers are ignored.
TRUSTED_PROXIES = frozenset({"127.0.0.1", "::1"})
# SIGTERM/SIGINT: workers stop accepting and finish what they hold; killed after this many seconds.
GRACEFUL_TIMEOUT = 20
# The access log names the path, never the query string: a lookup such as /members?phone=…
# would put the phone in the log.
ACCESS_LOG_FORMAT = '[%(time)s] %(addr)s - "%(method)s %(path)s %(protocol)s" %(status)d %(dt_ms).3f'

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _forwarded_client(header: str) -> str | None:
    """The nearest address in X-Forwarded-For that is not one of our proxies: a proxy appends the
    peer it saw, so anything left of that is the client's own claim and may be forged."""
    hops = [h.strip() for h in header.split(",") if h.strip()]
    for hop in reversed(hops):
        if hop not in TRUSTED_PROXIES:
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return None  # garbage (or a port, an obfuscated name): keep the peer's address
    return hops[0] if hops else None


def behind_local_proxy(app: WSGIApp) -> WSGIApp:
    """REMOTE_ADDR from a trusted local proxy's X-Forwarded-For, so that the per-address login
    limit counts real clients, not the proxy. The scheme is Django's SECURE_PROXY_SSL_HEADER."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REMOTE_ADDR") in TRUSTED_PROXIES:
            forwarded = environ.get("HTTP_X_FORWARDED_FOR")
            if forwarded and (client := _forwarded_client(forwarded)):
                environ["REMOTE_ADDR"] = client
        return app(environ, start_response)

    return wrapped


def bind_address(host: str, port: int) -> str:
    """The IP address to listen on, checked free. granian takes addresses only (a name such as
    `localhost` is resolved here, as gunicorn did) and answers a busy port with a long trace."""
    from django.core.management.base import CommandError

    try:
        family, _, _, _, sockaddr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as granian binds
            probe.bind(sockaddr)
    except OSError as exc:
        raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return str(ipaddress.ip_address(sockaddr[0]))


def load_application(target: str) -> WSGIApp:
    """Granian's loader, run in each worker process after it starts."""
    module, _, name = target.partition(":")
    app: WSGIApp = getattr(importlib.import_module(module), name)
    from django.conf import settings

    # Forwarding headers are believed only when the operator says a proxy is in front
    # (MEMBERHUB_BEHIND_PROXY): otherwise any client could pick the address it is counted as.
    return behind_local_proxy(app) if settings.SECURE_PROXY_SSL_HEADER else app


def serve(*, host: str, port: int, workers: int, threads: int) -> None:
    from django.db import connections

    # Migrations ran on these; forked workers must open their own.
    connections.close_all()
    Granian(
        TARGET,
        address=bind_address(host, port),
        port=port,
        interface=Interfaces.WSGI,
        websockets=False,  # not on WSGI; saves an info line at start
        workers=workers,
        blocking_threads=threads,  # Python threads per worker that run the WSGI app
        log_access=False,  # memberhub logs each request itself (core/request_log: JSON, with its id)
        workers_kill_timeout=GRACEFUL_TIMEOUT,
        respawn_failed_workers=True,  # as gunicorn: a worker that dies is replaced, not fatal
    ).serve(target_loader=load_application)
