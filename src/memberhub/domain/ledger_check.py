"""Ledger invariants of one points account, checked — never repaired — here.

Like beancount's validation, ``ledger_check`` returns a list of violations (empty = the
account is sound) instead of raising on the first, so a nightly audit can report every
broken account with every reason, and a test can assert the exact list.

Conventions checked (the services must follow them):
- ``balance`` (the cached balance on the account) = sum of all entries, pending included;
- lots hold the balance: sum of lots' ``remaining`` (pending lots included) = the balance
  when it is positive, 0 when it is negative (an overdraft holds no points);
- an entry that moves a lot carries its ``lot_id`` (the earn that created it, each
  spend/expiry/clawback draw); when an account uses that tagging, each lot's entries
  sum to its ``remaining``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from memberhub.domain.points_lots import Lot


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    entry_id: str
    at: datetime
    points: int  # signed: earn > 0, spend/expiry/clawback < 0
    kind: str = ""
    lot_id: str | None = None


@dataclass(frozen=True, slots=True)
class Violation:
    code: str
    message: str
    ref: str | None = None  # the entry or lot id at fault, if one


def ledger_check(
    *,
    balance: int,
    entries: Sequence[LedgerEntry],
    lots: Sequence[Lot],
    max_negative: int | None = None,
    pending_balance: int | None = None,
    now: datetime | None = None,
) -> list[Violation]:
    """Every invariant the account breaks, in a stable order. ``now`` enables time checks."""
    found: list[Violation] = []
    for entry_id, n in sorted(Counter(e.entry_id for e in entries).items()):
        if n > 1:
            found.append(Violation("duplicate_entry", f"entry {entry_id} appears {n} times", entry_id))
    for lot_id, n in sorted(Counter(lot.lot_id for lot in lots).items()):
        if n > 1:
            found.append(Violation("duplicate_lot", f"lot {lot_id} appears {n} times", lot_id))

    total = sum(e.points for e in entries)
    if total != balance:
        found.append(Violation("balance_mismatch", f"balance {balance} != sum of entries {total}"))
    if max_negative is not None and balance < -max_negative:
        found.append(Violation("negative_beyond_policy", f"balance {balance} is below -{max_negative}"))

    for lot in lots:
        if lot.points <= 0:
            found.append(Violation("lot_points_not_positive", f"lot {lot.lot_id} earned {lot.points}", lot.lot_id))
        if lot.remaining < 0:
            found.append(Violation("lot_negative", f"lot {lot.lot_id} remaining {lot.remaining}", lot.lot_id))
        if lot.remaining > lot.points:
            found.append(Violation("lot_over_remaining",
                                   f"lot {lot.lot_id} remaining {lot.remaining} > earned {lot.points}", lot.lot_id))
        if lot.expires_at is not None and lot.expires_at <= lot.earned_at:
            found.append(Violation("lot_dates_inconsistent", f"lot {lot.lot_id} expires before it was earned",
                                   lot.lot_id))
        if now is not None and lot.remaining > 0 and lot.expires_at is not None and lot.is_expired(now):
            found.append(Violation("lot_expired_not_swept",
                                   f"lot {lot.lot_id} expired at {lot.expires_at.isoformat()} with "
                                   f"{lot.remaining} left", lot.lot_id))

    held = sum(lot.remaining for lot in lots)
    if held != max(balance, 0):
        found.append(Violation("lots_balance_mismatch", f"lots hold {held}, balance is {balance}"))
    if pending_balance is not None and now is not None:
        pending = sum(lot.remaining for lot in lots if lot.is_pending(now))
        if pending != pending_balance:
            found.append(Violation("pending_mismatch", f"pending lots hold {pending}, account says {pending_balance}"))

    lot_ids = {lot.lot_id for lot in lots}
    by_lot: dict[str, int] = defaultdict(int)
    for entry in entries:
        if entry.lot_id is None:
            continue
        if entry.lot_id not in lot_ids:
            found.append(Violation("entry_unknown_lot", f"entry {entry.entry_id} names lot {entry.lot_id}",
                                   entry.entry_id))
        by_lot[entry.lot_id] += entry.points
    if by_lot:
        for lot in lots:
            if by_lot.get(lot.lot_id, 0) != lot.remaining:
                found.append(Violation("lot_entries_mismatch",
                                       f"lot {lot.lot_id} entries sum to {by_lot.get(lot.lot_id, 0)}, "
                                       f"remaining is {lot.remaining}", lot.lot_id))
    return found
