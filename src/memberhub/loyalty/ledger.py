"""Booking points: the only code that writes lots, entries and the cached balances.

Every function here runs inside the caller's transaction with the account row locked
(`account_lock`), so the in-memory account mirrors the row; the row itself is still
written relatively (`balance = balance + n`) and lots with conditional UPDATEs whose row
counts are checked, and the database constraints refuse a negative lot or pending above
the balance. The earn's statements are plain SQL (`rows`): it is the till's hot path.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from django.db.models import F
from django.utils.translation import gettext_lazy as _

from memberhub.core import rows
from memberhub.core.errors import Conflict
from memberhub.domain.member_status import Act, statuses_allowing
from memberhub.domain.points_lots import Lot, lot_draw, lot_expiry
from memberhub.domain.points_refund import ClawbackSettlement, clawback_settle, debt_repay
from memberhub.loyalty.models import PointsAccount, PointsEntry, PointsLot, Purchase
from memberhub.loyalty.programme import Rules
from memberhub.members.models import Member
from memberhub.members.services import member_act_check

Kind = PointsEntry.Kind


_MEMBER_JOIN = f'JOIN "{Member._meta.db_table}" m ON m."id" = t."member_id"'
_EARNING = statuses_allowing(Act.EARN)


def account_lock_live(member_id: int) -> PointsAccount | None:
    """The account of a member who may earn (active), locked, in one read; None when the
    member may not (frozen, merged, erased, unknown) or has no account yet: then take the
    long way (`member_resolve`, `account_lock_resolved`, which says why).

    The member row is locked too (KEY SHARE, as the purchase's foreign key would): a freeze
    (FOR UPDATE on it) waits for this earn, and an earn that waited for a freeze reads the
    status again on the row the freeze left. `closed_at` is checked on the account itself:
    when this read waited for a merge that held the account, PostgreSQL checks the account's
    own columns again on the version the merge left."""
    return rows.fetch_joined(
        PointsAccount, _MEMBER_JOIN,
        't."member_id" = %s AND t."closed_at" IS NULL AND m."status" IN (' + ", ".join(["%s"] * len(_EARNING)) + ")",
        [member_id, *_EARNING], lock="FOR UPDATE OF t FOR KEY SHARE OF m")


def account_lock(member_id: int) -> PointsAccount:
    """The member's account, created on first use, locked until the transaction ends."""
    account = rows.fetch(PointsAccount, '"member_id" = %s', [member_id], for_update=True)
    if account is None:
        # a concurrent first use may create it meanwhile: then lock that one
        rows.insert(PointsAccount(member_id=member_id), conflict=("member_id",))
        account = rows.fetch(PointsAccount, '"member_id" = %s', [member_id], for_update=True)
        if account is None:
            raise PointsAccount.DoesNotExist(member_id)
    return account


def account_lock_resolved(member_id: int, act: Act | None = None) -> PointsAccount:
    """`account_lock` for a member resolved as live before the transaction (a till, a
    redeem, an award): if a merge committed while this waited for the lock, the account is
    closed, and the request is refused with 409 `member_merged` (asked again, the member
    resolves to the survivor) rather than booked on the absorbed member. The jobs and the
    merge itself use `account_lock`.

    `act`: what the caller is about to do; refused (409 `member_frozen`, ...) when the
    member's status, read under the lock, does not allow it (`members.services.member_act_check`)."""
    account = account_lock(member_id)
    if account.closed_at is not None:
        raise Conflict(_("This member was merged into another just now; try again."), code="member_merged")
    if act is not None:
        member_act_check(member_id, act)
    return account


def _account_add(account: PointsAccount, *, balance: int = 0, pending: int = 0, debt: int = 0,
                 earned: int = 0) -> None:
    changes: dict[str, int] = {}
    for name, delta in (("balance", balance), ("pending", pending), ("debt", debt), ("earned_total", earned)):
        if delta:
            changes[name] = delta
            setattr(account, name, getattr(account, name) + delta)
    if changes:
        rows.add(PointsAccount, account.pk, changes)  # SET balance = balance + n: never read-modify-write


@dataclass(frozen=True)
class Why:
    """What an entry says about itself: the rule, the documents and the person behind it."""

    rule: str = ""
    reason: str = ""
    actor: str = ""
    purchase: Purchase | None = None
    refund: Any = None
    hold: Any = None
    adjustment: Any = None
    reference: str = ""


def _pk(obj: Any) -> Any:
    return None if obj is None else obj.pk


def _entry_new(account: PointsAccount, kind: str, points: int, at: datetime, why: Why, *,
               lot: PointsLot | None = None, trace: list[dict[str, Any]] | None = None,
               reason: str | None = None, reference: str | None = None) -> PointsEntry:
    # by id: assigning instances goes through the relation descriptors' checks (a tenth of an earn)
    return rows.new(
        PointsEntry, account_id=account.pk, kind=kind, points=points, at=at, lot_id=_pk(lot),
        purchase_id=_pk(why.purchase), refund_id=_pk(why.refund), hold_id=_pk(why.hold),
        adjustment_id=_pk(why.adjustment), rule=why.rule,
        reason=why.reason if reason is None else reason, trace=trace or [], actor=why.actor,
        reference=why.reference if reference is None else reference,
    )


def _entry(account: PointsAccount, kind: str, points: int, at: datetime, why: Why, *,
           lot: PointsLot | None = None, trace: list[dict[str, Any]] | None = None,
           reason: str | None = None, reference: str | None = None) -> PointsEntry:
    entry = _entry_new(account, kind, points, at, why, lot=lot, trace=trace, reason=reason, reference=reference)
    rows.insert(entry)
    return entry


def _lot_take(lot_id: int, points: int) -> None:
    if PointsLot.objects.filter(pk=lot_id, remaining__gte=points).update(remaining=F("remaining") - points) != 1:
        raise Conflict(_("The points changed meanwhile; try again."), code="points_concurrent_change")


def _as_lot(row: PointsLot) -> Lot:
    return Lot(lot_id=str(row.pk), points=row.points, remaining=row.remaining, earned_at=row.earned_at,
               expires_at=row.expires_at, available_at=row.available_at if row.pending else None)


# --- housekeeping inside a write: release matured pending lots, write off expired ones ---------

def release_due(account: PointsAccount, now: datetime) -> int:
    """Pending lots whose return window has ended become spendable."""
    due = list(PointsLot.objects.filter(account=account, pending=True, available_at__lte=now)
               .values_list("pk", "remaining"))
    if not due:
        return 0
    PointsLot.objects.filter(pk__in=[pk for pk, _r in due], pending=True).update(pending=False)
    released = sum(r for _pk, r in due)
    _account_add(account, pending=-released)
    return released


def expire_due(account: PointsAccount, now: datetime, *, actor: str = "system") -> int:
    """Write off every lot of the account that has expired with points left. Not while the
    member is frozen: their lots are extended by the time frozen on unfreeze instead."""
    due = list(PointsLot.objects.filter(account=account, remaining__gt=0, expires_at__lte=now)
               .exclude(account__member__status=Member.Status.FROZEN).order_by("expires_at", "pk"))
    total = pending = 0
    for lot in due:
        if PointsLot.objects.filter(pk=lot.pk, remaining=lot.remaining).update(remaining=0, pending=False) != 1:
            raise Conflict(_("The points changed meanwhile; try again."), code="points_concurrent_change")
        _entry(account, Kind.EXPIRE, -lot.remaining, lot.expires_at or now, Why(rule="expiry", actor=actor), lot=lot,
               reason="expired")
        total += lot.remaining
        pending += lot.remaining if lot.pending else 0
    if total:
        _account_add(account, balance=-total, pending=-pending)
    return total


def housekeep(account: PointsAccount, now: datetime) -> None:
    release_due(account, now)
    expire_due(account, now)


# --- credits ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class LotTerms:
    earned_at: datetime
    expires_at: datetime | None
    available_at: datetime | None = None  # pending until then, when in the future


def lot_terms(*, rules: Rules, earned_at: datetime, pending_days: int = 0) -> LotTerms:
    from datetime import timedelta

    available = earned_at + timedelta(days=pending_days) if pending_days else None
    return LotTerms(earned_at, lot_expiry(earned_at=earned_at, policy=rules.expiry), available)


def _lot_new(account: PointsAccount, points: int, *, now: datetime, terms: LotTerms, why: Why) -> tuple[PointsLot, bool]:
    is_pending = terms.available_at is not None and terms.available_at > now
    lot = rows.new(
        PointsLot, account_id=account.pk, points=points, remaining=points,
        earned_at=terms.earned_at, available_at=terms.available_at, expires_at=terms.expires_at,
        pending=is_pending, purchase_id=_pk(why.purchase),
    )
    return lot, is_pending


def credit(account: PointsAccount, points: int, *, kind: str, at: datetime, now: datetime, terms: LotTerms,
           why: Why, trace: list[dict[str, Any]] | None = None, earned: bool = False) -> list[PointsEntry]:
    """Add points: first refill an overdrawn balance, then repay debt, the rest is a new lot.

    One entry per destination, the first carrying the trace; with nothing to book (0 points,
    or all to debt) one zero entry still records why.
    """
    split = debt_repay(earn=points, debt=account.debt, balance=account.balance)
    trace = list(trace or [])
    if split.to_negative:
        trace.append({"step": "refill_negative", "value": str(split.to_negative)})
    if split.to_debt:
        trace.append({"step": "debt_repaid", "value": str(split.to_debt)})
    entries: list[PointsEntry] = []
    if split.to_negative:
        entries.append(_entry(account, kind, split.to_negative, at, why, trace=trace))
        trace = []
    pending = 0
    if split.to_lot:
        lot, is_pending = _lot_new(account, split.to_lot, now=now, terms=terms, why=why)
        rows.insert(lot)
        pending = split.to_lot if is_pending else 0
        entries.append(_entry(account, kind, split.to_lot, at, why, lot=lot, trace=trace,
                              reference=None if not entries else ""))
        trace = []
    if not entries:
        entries.append(_entry(account, kind, 0, at, why, trace=trace))
    _account_add(account, balance=split.to_negative + split.to_lot, pending=pending, debt=-split.to_debt,
                 earned=points if earned else 0)
    return entries


class Linked(NamedTuple):
    """What `credit_with_purchase` did: `written` False when it was not such a case (the
    caller goes the usual way); `entries` None when the order was there already (nothing
    written); `read` the row of the read that came along, when it was written."""

    written: bool
    entries: list[PointsEntry] | None = None
    read: tuple[Any, ...] | None = None


def credit_with_purchase(account: PointsAccount, purchase: Purchase, lines: list[Any], points: int, *,
                         at: datetime, now: datetime, terms: LotTerms, why: Why,
                         trace: list[dict[str, Any]] | None = None,
                         read: tuple[str, Sequence[Any]] | None = None) -> Linked:
    """PostgreSQL, an earn that is one new lot (nothing to refill or repay): the unsaved
    purchase, its lines, the lot, its entry and the account's counters in one statement
    (`rows.insert_linked`, with `read` in the same round trip), the same rows `rows.insert` +
    `credit` write one at a time."""
    if rows.vendor() != "postgresql":
        return Linked(False)
    split = debt_repay(earn=points, debt=account.debt, balance=account.balance)
    if split.to_negative or split.to_debt or not split.to_lot:
        return Linked(False)
    lot, is_pending = _lot_new(account, points, now=now, terms=terms, why=why)
    entry = _entry_new(account, Kind.EARN, points, at, why, lot=lot, trace=list(trace or []))
    deltas = {"balance": points, "pending": points if is_pending else 0, "earned_total": points}
    ids = rows.insert_linked(
        purchase, conflict=("channel", "order_no"),
        then=[(lines, {"purchase_id": 0}), ([lot], {"purchase_id": 0}), ([entry], {"lot_id": 2, "purchase_id": 0})],
        add=(PointsAccount, account.pk, {k: v for k, v in deltas.items() if v}), read=read)
    if ids is None:
        return Linked(True)
    rows.saved(purchase, ids[0])
    for line in lines:
        line.purchase_id = ids[0]
    lot.purchase_id = entry.purchase_id = ids[0]
    rows.saved(lot, ids[2])
    entry.lot_id = ids[2]
    rows.saved(entry, ids[3])
    for name, delta in deltas.items():  # the row was written relatively; the locked copy follows
        setattr(account, name, getattr(account, name) + delta)
    return Linked(True, [entry], None if read is None else tuple(ids[4:]))


# --- debits ----------------------------------------------------------------------------------

def spendable_lots(account: PointsAccount, now: datetime) -> list[PointsLot]:
    return list(PointsLot.objects.filter(account=account, remaining__gt=0, pending=False)
                .exclude(expires_at__lte=now))


def spend(account: PointsAccount, points: int, *, kind: str, now: datetime, why: Why) -> list[tuple[PointsLot, int]]:
    """Take `points` from spendable lots, oldest-expiring first, or refuse whole
    (`insufficient_points`)."""
    lots = spendable_lots(account, now)
    by_id = {str(lot.pk): lot for lot in lots}
    draws = lot_draw(lots=[_as_lot(lot) for lot in lots], amount=points, now=now)
    taken = []
    for draw in draws:
        lot = by_id[draw.lot_id]
        _lot_take(lot.pk, draw.points)
        _entry(account, kind, -draw.points, now, why, lot=lot)
        taken.append((lot, draw.points))
    _account_add(account, balance=-points)
    return taken


def clawback(account: PointsAccount, points: int, *, kind: str, now: datetime, why: Why, max_negative: int,
             purchase: Purchase | None = None) -> ClawbackSettlement:
    """Take back `points` that were given: the order's own pending points, then spendable
    points, then other pending points, then below zero as far as policy allows, the rest as debt.

    Other pending lots are drawn before going negative so that the lots always hold the
    balance (an overdrawn account holds no points)."""
    own = list(PointsLot.objects.filter(account=account, purchase=purchase, pending=True, remaining__gt=0)
               .order_by("pk")) if purchase is not None else []
    own_pending = sum(lot.remaining for lot in own)
    settle = clawback_settle(clawback=points, available=account.balance - own_pending,
                             max_negative=max_negative, pending=own_pending)
    pending_taken = 0
    left = settle.from_pending
    for lot in own:
        take = min(left, lot.remaining)
        if take:
            _lot_take(lot.pk, take)
            _entry(account, kind, -take, now, why, lot=lot)
            pending_taken += take
            left -= take
    left = settle.from_balance
    if left:
        spendable = spendable_lots(account, now)
        by_id = {str(lot.pk): lot for lot in spendable}
        usable = sum(lot.remaining for lot in spendable)
        for draw in lot_draw(lots=[_as_lot(lot) for lot in spendable], amount=min(left, usable), now=now):
            _lot_take(int(draw.lot_id), draw.points)
            _entry(account, kind, -draw.points, now, why, lot=by_id[draw.lot_id])
            left -= draw.points
        if left:  # the rest of the balance sits in other orders' pending lots
            for lot in PointsLot.objects.filter(account=account, pending=True, remaining__gt=0).order_by("-available_at", "-pk"):
                take = min(left, lot.remaining)
                _lot_take(lot.pk, take)
                _entry(account, kind, -take, now, why, lot=lot)
                pending_taken += take
                left -= take
                if not left:
                    break
        if left:
            raise Conflict(_("The points changed meanwhile; try again."), code="points_concurrent_change")
    if settle.into_negative:
        _entry(account, kind, -settle.into_negative, now, why, reason=(why.reason + " (overdrawn)").strip())
    if settle.debt:
        _entry(account, kind, 0, now, why, reason=(why.reason + " (debt)").strip(),
               trace=[{"step": "debt_recorded", "value": str(settle.debt)}])
    _account_add(account, balance=-(settle.from_pending + settle.from_balance + settle.into_negative),
                 pending=-pending_taken, debt=settle.debt)
    return settle


def restore(account: PointsAccount, draws: Iterable[tuple[int, int]], *, kind: str, now: datetime, why: Why) -> int:
    """Give back points drawn from lots (a released hold): to the same lots, after
    refilling an overdrawn balance. Lots that expired meanwhile are written off at once."""
    draws = list(draws)
    total = sum(n for _lot, n in draws)
    to_negative = min(total, max(-account.balance, 0))
    if to_negative:
        _entry(account, kind, to_negative, now, why, reason=(why.reason + " (refills overdrawn balance)").strip())
    skip = to_negative
    restored = 0
    lots = {lot.pk: lot for lot in PointsLot.objects.filter(pk__in=[lot_id for lot_id, _n in draws])}
    for lot_id, n in draws:
        cut = min(skip, n)
        skip -= cut
        n -= cut
        if not n:
            continue
        if PointsLot.objects.filter(pk=lot_id, remaining__lte=F("points") - n).update(remaining=F("remaining") + n) != 1:
            raise Conflict(_("The points changed meanwhile; try again."), code="points_concurrent_change")
        _entry(account, kind, n, now, why, lot=lots[lot_id])
        restored += n
    _account_add(account, balance=to_negative + restored)
    expire_due(account, now)
    return total


def spend_lot(account: PointsAccount, lot: PointsLot, *, kind: str, now: datetime, why: Why) -> int:
    """Empty one lot whatever its state (a merge moving it to another account)."""
    taken = lot.remaining
    if PointsLot.objects.filter(pk=lot.pk, remaining=taken).update(remaining=0, pending=False) != 1:
        raise Conflict(_("The points changed meanwhile; try again."), code="points_concurrent_change")
    _entry(account, kind, -taken, now, why, lot=lot)
    _account_add(account, balance=-taken, pending=-taken if lot.pending else 0)
    return taken
