"""Tiers: upgrade on purchase, the periodic evaluation, overrides, progress and what-if.

The decisions are `domain.tiers`; here the qualifying totals are read from purchases and
refunds (aggregated in the database for the hot path) and every change is recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from memberhub.access.principal import Principal, system_principal
from memberhub.access.roles import Cap
from memberhub.audit.services import audit_record
from memberhub.core import events, rows
from memberhub.core.errors import ValidationFailed
from memberhub.domain.tier_whatif import tier_whatif_rows
from memberhub.domain.tiers import (
    Mode,
    PurchaseFact,
    Reason,
    TierDecision,
    TierLadder,
    TierState,
    tier_evaluate,
    tier_progress,
    upgrade_due,
    window_start,
)
from memberhub.loyalty.models import PointsAccount, Purchase, Refund, TierChange
from memberhub.loyalty.programme import ProgrammeConfig, Rules, rules_build, rules_current

# A decision with one of these reasons is recorded even when the tier stays the same.
_RECORDED = {Reason.UPGRADE, Reason.DOWNGRADE, Reason.RENEWED, Reason.OVERRIDE_ENDED}


def _window(ladder: TierLadder, at: datetime) -> Q:
    start = window_start(ladder=ladder, at=at)
    return Q(at__lte=at) if start is None else Q(at__gte=start, at__lte=at)


_FACT_SQL = """
SELECT COALESCE(SUM(spend), 0), COALESCE(SUM(n), 0), COALESCE(SUM(points), 0) FROM (
  SELECT p.paid_fen AS spend, CASE WHEN p.paid_fen > 0 THEN 1 ELSE 0 END AS n, p.points AS points
    FROM {purchase} p WHERE p.member_id = %s AND p.at <= %s {purchase_from}
  UNION ALL
  SELECT -r.amount_fen, CASE WHEN r.whole AND q.paid_fen > 0 THEN -1 ELSE 0 END, -r.points
    FROM {refund} r JOIN {purchase} q ON q.id = r.purchase_id
   WHERE q.member_id = %s AND r.at <= %s {refund_from}
) t"""


_FACT_SQL_ALL, _FACT_SQL_SINCE = (
    _FACT_SQL.format(purchase=Purchase._meta.db_table, refund=Refund._meta.db_table, purchase_from=p, refund_from=r)
    for p, r in (("", ""), ("AND p.at >= %s", "AND r.at >= %s")))


def tier_fact_read(*, member_id: int, ladder: TierLadder, at: datetime) -> tuple[str, list[Any]]:
    """The window's totals (purchases less refunds) as one aggregate read over the member's
    (member, at) index, whatever the history size: (SQL with `%s` placeholders, parameters),
    giving one row (spend, count, points)."""
    start = window_start(ladder=ladder, at=at)
    sql = _FACT_SQL_ALL if start is None else _FACT_SQL_SINCE
    until = rows.moment(at)
    since = [] if start is None else [rows.moment(start)]
    return sql, [member_id, until, *since, member_id, until, *since]


def tier_fact_from(row: Sequence[Any] | None, *, ladder: TierLadder, at: datetime,
                   unseen: Purchase | None = None) -> PurchaseFact:
    """The fact from `tier_fact_read`'s row, plus a purchase the read could not see (one
    written by the same statement) when it falls in the window."""
    spend, n, points = (int(v) for v in row) if row is not None else (0, 0, 0)
    if unseen is not None and unseen.at <= at:
        start = window_start(ladder=ladder, at=at)
        if start is None or unseen.at >= start:
            spend += unseen.paid_fen
            n += 1 if unseen.paid_fen > 0 else 0
            points += unseen.points
    return PurchaseFact(at=at, paid_fen=spend, points=points, count=n)


def tier_fact(*, member_id: int, ladder: TierLadder, at: datetime) -> PurchaseFact:
    """The window's totals (purchases less refunds) as one fact."""
    sql, params = tier_fact_read(member_id=member_id, ladder=ladder, at=at)
    return tier_fact_from(rows.one(sql, params), ladder=ladder, at=at)


def tier_facts(*, member_id: int) -> list[PurchaseFact]:
    """Every purchase and refund as facts (for progress, which needs the dates)."""
    facts = [PurchaseFact(at=at, paid_fen=paid, points=points)
             for at, paid, points in Purchase.objects.filter(member_id=member_id).values_list("at", "paid_fen", "points")]
    facts += [PurchaseFact(at=at, paid_fen=-amount, points=-points, count=-1 if whole and paid > 0 else 0)
              for at, amount, points, whole, paid in Refund.objects.filter(purchase__member_id=member_id)
              .values_list("at", "amount_fen", "points", "whole", "purchase__paid_fen")]
    return facts


def tier_state(account: PointsAccount) -> TierState:
    return TierState(account.tier, account.tier_term_ends_at, account.override_tier, account.override_ends_at)


def decision_apply(account: PointsAccount, decision: TierDecision, *, now: datetime, actor: str) -> TierChange | None:
    """Store a decision on the (locked) account and record it when it matters."""
    fields = {"tier": decision.tier, "tier_term_ends_at": decision.term_ends_at}
    if decision.override_cleared:
        fields.update(override_tier=None, override_ends_at=None)
    if decision.changed:
        fields["tier_changed_at"] = now
    dirty = {k: v for k, v in fields.items() if getattr(account, k) != v}
    if dirty:
        PointsAccount.objects.filter(pk=account.pk).update(**dirty)
        for k, v in dirty.items():
            setattr(account, k, v)
    if decision.reason not in _RECORDED:
        return None
    change = TierChange.objects.create(
        account=account, from_tier=decision.previous_tier, to_tier=decision.tier, reason=decision.reason.value,
        explanation=decision.explanation, term_ends_at=decision.term_ends_at, actor=actor, at=now)
    if decision.changed:
        payload = {"member_id": account.member_id, "from_tier": decision.previous_tier, "to_tier": decision.tier,
                   "reason": decision.reason.value}
        events.emit(events.TIER_CHANGED, **payload)
        if decision.reason is Reason.UPGRADE:
            events.emit(events.TIER_UPGRADED, **payload)
    return change


def _known_tier(rules: Rules, account: PointsAccount) -> None:
    """A tier removed from the ladder is read as the entry tier, never an error at the till."""
    codes = {t.code for t in rules.ladder.tiers}
    if account.tier not in codes:
        account.tier = rules.ladder.tiers[0].code
    if account.override_tier is not None and account.override_tier not in codes:
        account.override_tier, account.override_ends_at = None, None


def tier_upgrade_possible(*, account: PointsAccount, rules: Rules) -> bool:
    """Whether a purchase can change the tier (not at the top with no override on record)."""
    _known_tier(rules, account)
    return account.tier != rules.ladder.tiers[-1].code or account.override_tier is not None


def tier_on_purchase(*, account: PointsAccount, rules: Rules, now: datetime, actor: str,
                     fact: PurchaseFact | None = None) -> TierChange | None:
    """Upgrade at once when the window now qualifies for a higher tier (never down). `fact`:
    the window's totals when already read (with the purchase), else they are read here."""
    if not tier_upgrade_possible(account=account, rules=rules):
        return None
    if fact is None:
        fact = tier_fact(member_id=account.member_id, ladder=rules.ladder, at=now)
    state = tier_state(account)
    if not upgrade_due(ladder=rules.ladder, facts=[fact], state=state, at=now):
        return None
    decision = tier_evaluate(ladder=rules.ladder, facts=[fact], state=state, at=now, mode=Mode.ON_PURCHASE)
    return decision_apply(account, decision, now=now, actor=actor)


def tier_evaluate_account(*, member_id: int, rules: Rules, now: datetime | None, actor: str,
                          mode: Mode = Mode.PERIODIC) -> TierDecision:
    """Evaluate one account as of `now`, or, when None, as of a moment taken under its lock:
    then a purchase recorded while a long job was on its way to this member counts (as of
    the job's start it would not, and a member it kept in their tier could be downgraded)."""
    with transaction.atomic():
        from memberhub.loyalty.ledger import account_lock

        account = account_lock(member_id)
        at = now if now is not None else timezone.now()
        _known_tier(rules, account)
        fact = tier_fact(member_id=member_id, ladder=rules.ladder, at=at)
        decision = tier_evaluate(ladder=rules.ladder, facts=[fact], state=tier_state(account), at=at, mode=mode)
        decision_apply(account, decision, now=at, actor=actor)
    return decision


def tier_evaluate_member(*, actor: Principal, member_id: int, now: datetime | None = None) -> TierDecision:
    actor.require(Cap.TIERS_OVERRIDE)
    from memberhub.loyalty.members import member_resolve_in_scope

    member = member_resolve_in_scope(actor=actor, member_id=member_id)
    return tier_evaluate_account(member_id=member.pk, rules=rules_current(), now=now, actor=actor.label)


def tiers_evaluate_all(*, now: datetime | None = None, actor: Principal | None = None) -> dict[str, int]:
    """The periodic evaluation (nightly job): every account above the entry tier, with an
    override, or with a purchase in the window. One short transaction per account, each as
    of `now` or, when None, as of its own moment (`tier_evaluate_account`)."""
    start = now or timezone.now()
    actor = actor or system_principal("tiers")
    rules = rules_current()
    entry = rules.ladder.tiers[0].code
    ids = set(PointsAccount.objects.filter(~Q(tier=entry) | Q(override_tier__isnull=False))
              .values_list("member_id", flat=True))
    ids |= set(Purchase.objects.filter(_window(rules.ladder, start), member__isnull=False)
               .values_list("member_id", flat=True).distinct())
    counts: dict[str, int] = {}
    for member_id in sorted(ids):
        decision = tier_evaluate_account(member_id=member_id, rules=rules, now=now, actor=actor.label)
        counts[decision.reason.value] = counts.get(decision.reason.value, 0) + 1
    return counts


def tier_override(*, actor: Principal, member_id: int, tier: str | None, ends_at: datetime | None, reason: str,
                  now: datetime | None = None) -> PointsAccount:
    """Set (or, with tier None, remove) a manual tier until `ends_at`; then the computed tier applies."""
    actor.require(Cap.TIERS_OVERRIDE)
    now = now or timezone.now()
    if not reason.strip():
        raise ValidationFailed(_("A reason is required."), code="reason_required")
    rules = rules_current()
    if tier is not None:
        rules.ladder.rank(tier)  # unknown_tier → 422
    if ends_at is not None and ends_at <= now:
        raise ValidationFailed(_("The end date must be in the future."), code="override_end_in_past")
    from memberhub.loyalty.ledger import account_lock
    from memberhub.loyalty.members import member_resolve_in_scope

    member = member_resolve_in_scope(actor=actor, member_id=member_id)
    with transaction.atomic():
        account = account_lock(member.pk)
        before = {"tier": account.tier, "override_tier": account.override_tier,
                  "override_ends_at": account.override_ends_at.isoformat() if account.override_ends_at else None}
        previous = account.tier
        if tier is None:
            account.override_tier, account.override_ends_at = None, None
            PointsAccount.objects.filter(pk=account.pk).update(override_tier=None, override_ends_at=None)
            fact = tier_fact(member_id=member.pk, ladder=rules.ladder, at=now)
            state = TierState(previous, account.tier_term_ends_at)
            decision = tier_evaluate(ladder=rules.ladder, facts=[fact], state=state, at=now, mode=Mode.ON_PURCHASE)
            decision_apply(account, decision, now=now, actor=actor.label)
        else:
            PointsAccount.objects.filter(pk=account.pk).update(override_tier=tier, override_ends_at=ends_at, tier=tier,
                                                               tier_changed_at=now)
            account.override_tier, account.override_ends_at, account.tier = tier, ends_at, tier
            TierChange.objects.create(account=account, from_tier=previous, to_tier=tier, reason="override",
                                      explanation={"override_ends_at": ends_at.isoformat() if ends_at else None,
                                                   "reason": reason},
                                      term_ends_at=account.tier_term_ends_at, actor=actor.label, at=now)
            if previous != tier:
                events.emit(events.TIER_CHANGED, member_id=member.pk, from_tier=previous, to_tier=tier,
                            reason="override")
        audit_record(actor=actor, action="loyalty.tier_override", target=member, before=before, reason=reason,
                     after={"tier": account.tier, "override_tier": account.override_tier,
                            "override_ends_at": ends_at.isoformat() if ends_at else None})
    return account


def _gap(gap: Any, rules: Rules) -> dict[str, Any] | None:
    if gap is None:
        return None
    return {"tier": gap.tier, "tier_name": rules.tier_name(gap.tier), "combine": gap.combine.value,
            "missing_spend_fen": gap.missing_spend_fen, "missing_purchases": gap.missing_purchases,
            "missing_points": gap.missing_points, "met": gap.met,
            "deadline": gap.deadline.isoformat() if gap.deadline else None}


def tier_progress_get(*, actor: Principal, member_id: int, now: datetime | None = None) -> dict[str, Any]:
    """"Spend ¥X or make N more purchases before DATE to reach / keep 金卡"."""
    actor.require(Cap.POINTS_READ)
    from memberhub.loyalty.members import member_resolve_in_scope

    now = now or timezone.now()
    member = member_resolve_in_scope(actor=actor, member_id=member_id)
    rules = rules_current()
    account = PointsAccount.objects.filter(member=member).first() or PointsAccount(member=member)
    _known_tier(rules, account)
    progress = tier_progress(ladder=rules.ladder, facts=tier_facts(member_id=member.pk), state=tier_state(account),
                             at=now)
    return {"member_id": member.pk, "tier": progress.current, "tier_name": rules.tier_name(progress.current),
            "term_ends_at": account.tier_term_ends_at, "override_tier": account.override_tier,
            "override_ends_at": account.override_ends_at, "next": _gap(progress.next, rules),
            "keep": _gap(progress.keep, rules)}


def tier_history(*, actor: Principal, member_id: int) -> list[TierChange]:
    actor.require(Cap.POINTS_READ)
    from memberhub.access.store_scope import require_member_id

    require_member_id(actor, member_id)
    return list(TierChange.objects.filter(account__member_id=member_id).order_by("-pk")[:200])


def tier_whatif_run(*, actor: Principal, config: ProgrammeConfig, at: datetime | None = None) -> dict[str, Any]:
    """Run a proposed ladder over every member's real history; nothing is applied."""
    actor.require(Cap.PROGRAMME_MANAGE)
    at = at or timezone.now()
    ladder = rules_build(config).ladder
    current = {str(m): t for m, t in PointsAccount.objects.values_list("member_id", "tier")}
    start = window_start(ladder=ladder, at=at)
    window = Q(at__lte=at) if start is None else Q(at__gte=start, at__lte=at)
    rows: list[tuple[str, datetime, int, int, int]] = [
        (str(m), when, paid, points, 1 if paid > 0 else 0)
        for m, when, paid, points in Purchase.objects.filter(window, member__isnull=False)
        .values_list("member_id", "at", "paid_fen", "points").iterator(chunk_size=5000)
    ]
    rows += [(str(m), when, -amount, -points, -1 if whole and paid > 0 else 0)
             for m, when, amount, points, whole, paid in Refund.objects.filter(window, purchase__member__isnull=False)
             .values_list("purchase__member_id", "at", "amount_fen", "points", "whole", "purchase__paid_fen")]
    for m in {r[0] for r in rows} - current.keys():
        current[m] = ladder.tiers[0].code
    report = tier_whatif_rows(ladder=ladder, current=current, rows=rows, at=at)
    return {"at": at, "members": report.members, "current_counts": report.current_counts,
            "proposed_counts": report.proposed_counts, "up": report.up, "down": report.down, "same": report.same,
            "unmapped": report.unmapped, "transitions": report.transitions}

