"""Write SQLite's log to disk in the background, so that checkpoints are short.

With `synchronous=NORMAL` a commit writes its pages to the write-ahead log without waiting for
the disk; the log is fsynced once, by the checkpoint, and the committing writer runs that
checkpoint while every other writer waits for its turn (`rows.writing`). That fsync was most
of the checkpoint: ~21 ms for 4,000 pages here, once every ~200 earns, and it was the earn's
p99. So a thread per process fdatasyncs the log a moment after commits, and the checkpoint
finds it nearly all on disk (3–6 ms). Nothing waits for these syncs, and durability is what it
was: the checkpoint still syncs the log before it copies pages back.

Only the `-wal` file is opened here, never the database: closing any descriptor of a file
drops every POSIX lock the process holds on that file, and SQLite keeps its locks on the
database and `-shm` files (none on the log). The descriptor follows the log when it is
deleted and made again (the last connection to close removes it).
"""

from __future__ import annotations

import logging
import os
import threading
import time

log = logging.getLogger(__name__)

# How long after a commit the log is synced: commits in between share the sync.
DELAY = 0.02

_sync = getattr(os, "fdatasync", os.fsync)


class WalFlusher:
    """The background sync of one database's log, in one process."""

    def __init__(self, database: str) -> None:
        self.path = database + "-wal"
        self.syncs = 0
        self._due = threading.Event()
        self._fd: int | None = None
        self._inode: tuple[int, int] | None = None
        self._failed = False
        self._lock = threading.Lock()  # flush() may also be called from outside the thread
        threading.Thread(target=self._run, name="memberhub-wal-flush", daemon=True).start()

    def committed(self) -> None:
        self._due.set()

    def _run(self) -> None:
        while True:
            self._due.wait()
            time.sleep(DELAY)  # the commits meanwhile share this sync
            self._due.clear()
            self.flush()

    def flush(self) -> None:
        with self._lock:
            self._flush()

    def _flush(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return
        try:
            fd = self._fd
            if fd is None or self._inode != (st.st_dev, st.st_ino):
                if fd is not None:
                    self._fd = None
                    os.close(fd)
                fd = self._fd = os.open(self.path, os.O_RDONLY)
                self._inode = (st.st_dev, st.st_ino)
            _sync(fd)
            self.syncs += 1
        except OSError as exc:  # never the caller's problem: the checkpoint still syncs
            if not self._failed:
                self._failed = True
                log.warning("cannot sync the SQLite log %s in the background: %s", self.path, exc)


_flushers: dict[tuple[int, str], WalFlusher] = {}
_flushers_lock = threading.Lock()


def flusher(database: str) -> WalFlusher:
    """This process's flusher for `database` (a thread does not survive a fork: one per pid)."""
    key = (os.getpid(), database)
    found = _flushers.get(key)
    if found is None:
        with _flushers_lock:
            found = _flushers.get(key)
            if found is None:
                found = _flushers[key] = WalFlusher(database)
    return found
