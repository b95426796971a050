"""Who holds an Idempotency-Key claim, and whether that process still exists.

A claim records its owner: host, pid namespace, boot, pid and the process's start time. A
process that was killed (or a machine that rebooted, or a server restarted since) leaves a
claim whose owner is gone; the next request with that key takes it over at once instead of
waiting for the claim to go stale. A claim made on another host cannot be checked from here,
and is taken over only once it is stale.
"""

from __future__ import annotations

import os
import socket
from functools import cache

SEP = "|"


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def _start_time(pid: int) -> str:
    """The process's start, in clock ticks since boot (/proc/PID/stat field 22): a pid that
    was reused by another process has another start."""
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]


@cache
def _machine() -> str:
    """This host, pid namespace and boot: the scope in which a pid means one process."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return SEP.join((socket.gethostname()[:60], namespace, _read("/proc/sys/kernel/random/boot_id")))


def identity() -> str:
    """This process's identity (per pid: a forked worker has its own)."""
    return _identity(os.getpid())


@cache
def _identity(pid: int) -> str:
    return SEP.join((_machine(), str(pid), _start_time(pid)))


def gone(owner: str) -> bool:
    """True when `owner` (an `identity()`) is known not to run any more: it was on this
    machine (same host, pid namespace and boot id... or the same host and namespace and an
    earlier boot) and its pid is free or belongs to a process started at another time."""
    parts = owner.split(SEP)
    if len(parts) != 5:
        return False  # a claim from before owners were recorded, or malformed: wait for staleness
    host, namespace, boot, pid, start = parts
    here_host, here_namespace, here_boot = _machine().split(SEP)
    if host != here_host or namespace != here_namespace or not boot:
        return False  # another machine or container: cannot tell from here
    if boot != here_boot:
        return True  # the machine restarted since
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # exists, another user's
    return bool(start) and _start_time(int(pid)) not in ("", start)
