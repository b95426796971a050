"""Child processes of `memberhub serve` end with it.

A worker (or the job consumer) left behind by a `kill -9` of the main process would keep
serving the port, and the next start would find it taken. No Django here: the job consumer
calls this before it loads anything.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

# The main process's pid, for its children (granian may spawn rather than fork its workers).
PARENT_ENV = "MEMBERHUB_SERVE_PID"
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def parent_from_env() -> int | None:
    value = os.environ.get(PARENT_ENV, "")
    return int(value) if value.isdigit() else None


def die_with_parent(parent: int) -> None:
    """Make this process end when `parent` does: a worker (or the job consumer) left behind by
    a `kill -9` of the main process would keep serving the port, and the next start would find
    it taken. Linux: the kernel sends SIGKILL at the parent's death (PR_SET_PDEATHSIG);
    elsewhere a thread watches the parent. Should the parent have died already, exit now."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
                if os.getppid() != parent:  # died before the call: nobody would signal us
                    os._exit(1)
                return
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(1)

    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=watch, name="memberhub-parent-watch", daemon=True).start()
