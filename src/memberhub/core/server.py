"""The production HTTP server: granian (a Rust HTTP server) running the Django WSGI app in worker
processes, each with a pool of blocking threads; static files via WhiteNoise."""

from __future__ import annotations

import importlib
import ipaddress
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from granian import Granian
from granian.constants import Interfaces

from memberhub.core.lifeline import PARENT_ENV, die_with_parent, parent_from_env

TARGET = "memberhub.wsgi:application"
# With MEMBERHUB_BEHIND_PROXY, a reverse proxy on this host may say who the client is
# (X-Forwarded-For); anyone else's forwarding headers are ignored.
TRUSTED_PROXIES = frozenset({"127.0.0.1", "::1"})
# SIGTERM/SIGINT: workers stop accepting and finish what they hold; killed after this many seconds.
GRACEFUL_TIMEOUT = 20
# The access log names the path, never the query string: a lookup such as /members?phone=…
# would put the phone in the log.
ACCESS_LOG_FORMAT = '[%(time)s] %(addr)s - "%(method)s %(path)s %(protocol)s" %(status)d %(dt_ms).3f'

log = logging.getLogger(__name__)


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
    `localhost` is resolved here, as gunicorn did) and answers a busy port with a long trace.
    A busy port is named with the process holding it, when this user may see it (a server
    still running, or another program)."""
    from django.core.management.base import CommandError

    try:
        family, _, _, _, sockaddr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as granian binds
            probe.bind(sockaddr)
    except OSError as exc:
        message = f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        holder = port_holder(port)
        if holder is not None:
            pid, command = holder
            message += (f"; it is held by process {pid} ({command}): stop it (kill {pid}) "
                        f"or choose another port with --port")
        raise CommandError(message) from None
    return str(ipaddress.ip_address(sockaddr[0]))


def port_holder(port: int) -> tuple[int, str] | None:
    """(pid, command line) of a process listening on TCP `port`, from /proc (Linux; None
    elsewhere, or when the holder belongs to another user)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f, None)
                for line in f:
                    fields = line.split()
                    # local address "ADDR:PORT" in hex, state 0A is LISTEN, inode is field 9
                    if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(fields[9])
        except OSError:
            continue
    if not inodes:
        return None
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            for fd in os.scandir(f"/proc/{entry.name}/fd"):
                if os.readlink(fd.path) in wanted:
                    with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                        command = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
                    return int(entry.name), command or "?"
        except OSError:
            continue
    return None


def load_application(target: str) -> WSGIApp:
    """Granian's loader, run in each worker process after it starts."""
    if (parent := parent_from_env()) is not None:
        die_with_parent(parent)
    module, _, name = target.partition(":")
    app: WSGIApp = getattr(importlib.import_module(module), name)
    from django.conf import settings

    # Forwarding headers are believed only when the operator says a proxy is in front
    # (MEMBERHUB_BEHIND_PROXY): otherwise any client could pick the address it is counted as.
    return behind_local_proxy(app) if settings.SECURE_PROXY_SSL_HEADER else app


class JobConsumer:
    """`memberhub worker` (the Huey consumer: background and periodic jobs) as a child of
    `serve`, so that a single command runs everything. Restarted if it dies; stopped with the
    server (SIGINT: running jobs finish, killed after GRACEFUL_TIMEOUT); and it dies with the
    server should that be killed (`die_with_parent`, from MEMBERHUB_SERVE_PID)."""

    RESTART_DELAY = 5.0

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name="memberhub-jobs", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _supervise(self) -> None:
        # Started from this thread, which lives as long as the server: PR_SET_PDEATHSIG
        # follows the thread that made the child.
        while not self._stopping.is_set():
            self.proc = subprocess.Popen([sys.executable, "-m", "memberhub.cli", "worker"])
            code = self.proc.wait()
            if self._stopping.is_set():
                return
            log.warning("the job consumer exited (status %s); starting it again in %.0f s", code,
                        self.RESTART_DELAY)
            self._stopping.wait(self.RESTART_DELAY)

    def stop(self) -> None:
        self._stopping.set()
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)  # Huey's graceful stop
        try:
            proc.wait(GRACEFUL_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def serve(*, host: str, port: int, workers: int, threads: int, jobs: bool = True) -> None:
    from django.conf import settings
    from django.db import connections

    # Migrations ran on these; forked workers must open their own.
    connections.close_all()
    os.environ[PARENT_ENV] = str(os.getpid())  # the workers and the job consumer die with this process
    server = Granian(
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
    )
    if jobs and not settings.HUEY.get("immediate"):
        consumer = JobConsumer()
        server.on_startup(consumer.start)
        server.on_shutdown(consumer.stop)
    server.serve(target_loader=load_application)
