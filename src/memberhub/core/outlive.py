"""Writes that must be committed although the request fails: a refused gift-card PIN is
counted, and audited, even though the refusal rolls back the transaction it happens in (the
service's own, a checkout's around it, or the Idempotency-Key middleware's around the view).

The service attaches the write to the error it raises (`outlive_rollback`); the write runs in
its own transaction at the first place the error reaches with no transaction open
(`run_outliving`): the service itself when it was called on its own, else the API's error
handler, else the Idempotency-Key middleware once it has rolled back (the handler hands the
writes on to the response).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import DatabaseError, connection, transaction

ATTR = "_outlive_rollback"
log = logging.getLogger(__name__)


def outlive_rollback(carrier: Any, write: Callable[[], None]) -> None:
    """Commit `write` once `carrier` (an exception) has left every transaction."""
    writes = getattr(carrier, ATTR, None)
    if writes is None:
        writes = []
        setattr(carrier, ATTR, writes)
    writes.append(write)


def hand_on(source: Any, target: Any) -> None:
    """Move the writes `source` carries to `target` (an error to its response)."""
    for write in getattr(source, ATTR, None) or ():
        outlive_rollback(target, write)
    if hasattr(source, ATTR):
        delattr(source, ATTR)


def _in_transaction() -> bool:
    # the transaction a test case wraps around each test is not one of ours (Django's own
    # rule for durable atomic blocks)
    return any(not getattr(block, "_from_testcase", False) for block in connection.atomic_blocks)


def take_outliving(carrier: Any) -> list[Callable[[], None]]:
    """The writes `carrier` holds, taken off it: for a caller that commits them itself, in the
    transaction it is about to commit."""
    writes = list(getattr(carrier, ATTR, None) or ())
    if hasattr(carrier, ATTR):
        delattr(carrier, ATTR)
    return writes


def run_outliving(carrier: Any) -> None:
    """Run the writes `carrier` holds, each in its own transaction, once; nothing while a
    transaction is still open (it would be rolled back with it: a layer further out runs them)."""
    if _in_transaction() or not getattr(carrier, ATTR, None):
        return
    writes = getattr(carrier, ATTR)
    delattr(carrier, ATTR)
    for write in writes:
        try:
            with transaction.atomic():
                write()
        except DatabaseError:  # the answer still goes out; the database is failing anyway
            log.warning("could not record %s", getattr(write, "__qualname__", write), exc_info=True)
