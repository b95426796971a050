"""Reads: balance, statement, balance as of a date, what expires when, ledger checks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from memberhub.access import store_scope
from memberhub.access.principal import Principal
from memberhub.access.roles import Cap
from memberhub.domain.ledger_check import LedgerEntry, Violation, ledger_check
from memberhub.domain.points_lots import BucketBy, Lot, expiry_buckets
from memberhub.loyalty.members import member_resolve_in_scope
from memberhub.loyalty.models import Hold, PointsAccount, PointsEntry, PointsLot
from memberhub.loyalty.programme import rules_current
from memberhub.members.models import Member


def _account(member: Member) -> PointsAccount:
    return PointsAccount.objects.filter(member=member).first() or PointsAccount(member=member)


def points_summary(*, actor: Principal, member_id: int, now: datetime | None = None) -> dict[str, Any]:
    """The balance as the member sees it: available now, pending, held, owed."""
    actor.require(Cap.POINTS_READ)
    now = now or timezone.now()
    member = member_resolve_in_scope(actor=actor, member_id=member_id)
    account = _account(member)
    rules = rules_current()
    live = PointsLot.objects.filter(account_id=account.pk, remaining__gt=0) if account.pk else PointsLot.objects.none()
    sums = live.aggregate(
        available=Sum("remaining", filter=Q(Q(available_at__isnull=True) | Q(available_at__lte=now) | Q(pending=False))
                      & ~Q(expires_at__lte=now)),
        pending=Sum("remaining", filter=Q(pending=True, available_at__gt=now) & ~Q(expires_at__lte=now)),
        expired=Sum("remaining", filter=Q(expires_at__lte=now)),
    )
    held = Hold.objects.filter(account_id=account.pk, state=Hold.State.HELD).aggregate(s=Sum("points"))["s"] \
        if account.pk else None
    available = (sums["available"] or 0) if account.balance >= 0 else account.balance
    return {
        "member_id": member.pk, "balance": account.balance - (sums["expired"] or 0), "available": available,
        "pending": sums["pending"] or 0, "held": held or 0, "debt": account.debt,
        "earned_total": account.earned_total, "tier": account.tier, "tier_name": rules.tier_name(account.tier),
        "tier_term_ends_at": account.tier_term_ends_at, "override_tier": account.override_tier,
        "override_ends_at": account.override_ends_at,
    }


def statement(*, actor: Principal, member_id: int, kind: str | None = None, at_from: datetime | None = None,
              at_to: datetime | None = None, rule: str | None = None) -> QuerySet[PointsEntry]:
    """The member's entries, newest first (paginate with core.pagination)."""
    actor.require(Cap.POINTS_READ)
    member = member_resolve_in_scope(actor=actor, member_id=member_id)
    qs = PointsEntry.objects.filter(account__member=member).select_related("purchase")
    if kind:
        qs = qs.filter(kind=kind)
    if rule:
        qs = qs.filter(rule=rule)
    if at_from:
        qs = qs.filter(at__gte=at_from)
    if at_to:
        qs = qs.filter(at__lt=at_to)
    return qs


def balance_as_of(*, actor: Principal, member_id: int, at: datetime) -> dict[str, Any]:
    """The ledger balance at a past instant: the sum of every entry up to it."""
    actor.require(Cap.POINTS_READ)
    member = member_resolve_in_scope(actor=actor, member_id=member_id)
    total = PointsEntry.objects.filter(account__member=member, at__lte=at).aggregate(s=Sum("points"))["s"] or 0
    return {"member_id": member.pk, "at": at, "balance": total}


def _lot(row: PointsLot) -> Lot:
    return Lot(str(row.pk), row.points, row.remaining, row.earned_at, row.expires_at,
               row.available_at if row.pending else None)


def expiring_member(*, actor: Principal, member_id: int, by: str = "month",
                    now: datetime | None = None) -> list[dict[str, Any]]:
    actor.require(Cap.POINTS_READ)
    now = now or timezone.now()
    member = member_resolve_in_scope(actor=actor, member_id=member_id)
    lots = [_lot(r) for r in PointsLot.objects.filter(account__member=member, remaining__gt=0,
                                                      expires_at__isnull=False)]
    buckets = expiry_buckets(lots=lots, now=now, by=BucketBy(by), timezone=rules_current().timezone)
    return [{"period": b.period, "points": b.points, "lots": b.lots} for b in buckets]


def expiring_programme(*, actor: Principal, by: str = "month", until: datetime | None = None,
                       now: datetime | None = None) -> list[dict[str, Any]]:
    """What expires when across the whole programme (by last valid day or month)."""
    actor.require(Cap.POINTS_READ)
    now = now or timezone.now()
    qs = PointsLot.objects.filter(remaining__gt=0, expires_at__gt=now,
                                  **store_scope.home_store_filter(actor, "account__member__home_store_id"))
    if until:
        qs = qs.filter(expires_at__lte=until)
    # group by expiry instant in the database, then bucket the (few) distinct instants
    rows = qs.values("expires_at").annotate(points=Sum("remaining")).order_by()
    lots = [Lot(str(i), r["points"], r["points"], now, r["expires_at"]) for i, r in enumerate(rows)]
    buckets = expiry_buckets(lots=lots, now=now, by=BucketBy(by), timezone=rules_current().timezone)
    return [{"period": b.period, "points": b.points} for b in buckets]


def account_check(*, member_id: int, now: datetime | None = None, actor: Principal | None = None) -> list[Violation]:
    """Every broken ledger invariant of one account (empty = sound). No actor: an internal audit."""
    if actor is not None:
        store_scope.require_member_id(actor, member_id)
    account = PointsAccount.objects.filter(member_id=member_id).first()
    if account is None:
        return []
    entries = [LedgerEntry(str(pk), at, points, kind, str(lot) if lot else None)
               for pk, at, points, kind, lot in account.entries.values_list("pk", "at", "points", "kind", "lot_id")]
    lots = [_lot(r) for r in account.lots.all()]
    violations = ledger_check(balance=account.balance, entries=entries, lots=lots,
                              max_negative=rules_current().max_negative, now=now)
    pending = sum(r.remaining for r in account.lots.all() if r.pending)
    if pending != account.pending:
        violations.append(Violation("pending_mismatch", f"pending lots hold {pending}, account says {account.pending}"))
    return violations
