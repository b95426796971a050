"""What the loyalty app does when members are merged, erased or exported, and its demo data."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import F
from django.utils import timezone

from memberhub.access.principal import Principal, system_principal
from memberhub.core import events
from memberhub.core.output import Writer
from memberhub.domain.member_status import frozen_extension
from memberhub.domain.tiers import Mode
from memberhub.loyalty import ledger
from memberhub.loyalty.models import PointsAccount, PointsEntry, PointsLot, Purchase, TierChange
from memberhub.loyalty.points import holds_release_for_merge
from memberhub.loyalty.programme import rules_current
from memberhub.loyalty.tiering import decision_apply, tier_fact, tier_state
from memberhub.members.models import Member

REGISTRATION = "registration"


@events.subscribe(events.MEMBER_REGISTERED)
def on_member_registered(*, member_id: int, **_: Any) -> None:
    """注册送积分: the action rule "registration", when the programme configures points for it.
    Runs after the registration commits; the reference makes a re-delivered event harmless."""
    from memberhub.loyalty.points import action_award

    rule = rules_current().actions.get(REGISTRATION)
    if rule is None or rule.points <= 0:
        return
    action_award(actor=system_principal("event:member.registered"), action=REGISTRATION, member_id=member_id,
                 reference=REGISTRATION)


def on_unfreeze(member: Member, frozen_at: datetime, unfrozen_at: datetime, actor: Principal) -> dict[str, int]:
    """Inside the unfreeze's transaction: the member's unexpired lots (unexpired when frozen:
    the expiry job leaves a frozen member's lots alone) expire the time frozen later.

    Not under the account's lock: the unfreeze holds the member row, which an earn waiting
    at the account would wait for in turn; nothing spends a frozen member's lots meanwhile."""
    delta = frozen_extension(frozen_at=frozen_at, unfrozen_at=unfrozen_at)
    if not delta:
        return {}
    moved = PointsLot.objects.filter(account__member_id=member.pk, remaining__gt=0, expires_at__gt=frozen_at) \
        .update(expires_at=F("expires_at") + delta)
    return {"points_lots_extended": moved}


def on_merge(survivor: Member, absorbed: Member, actor: Principal) -> None:
    """Fold the absorbed member's points into the survivor, inside the merge's transaction.

    The ledger stays append-only: the absorbed account gets `transfer` entries that empty
    it and the survivor gets matching `transfer` entries (each lot moved with its dates),
    an overdraft and a debt move too; purchases follow the member and the survivor's tier
    is the higher of the two, then re-evaluated on the combined history."""
    now = timezone.now()
    rules = rules_current()
    first, second = sorted([survivor.pk, absorbed.pk])
    accounts = {first: ledger.account_lock(first), second: ledger.account_lock(second)}
    to, src = accounts[survivor.pk], accounts[absorbed.pk]
    for account in (to, src):
        ledger.housekeep(account, now)
    holds_release_for_merge(src, now=now, actor=actor)  # their points then move with the lots
    note = f"merge of member {absorbed.pk} into {survivor.pk}"
    why = ledger.Why(rule="merge", actor=actor.label, reason=note)
    for lot in PointsLot.objects.filter(account=src, remaining__gt=0).order_by("pk"):
        ledger.spend_lot(src, lot, kind=ledger.Kind.TRANSFER, now=now, why=why)
        terms = ledger.LotTerms(lot.earned_at, lot.expires_at, lot.available_at if lot.pending else None)
        ledger.credit(to, lot.remaining, kind=ledger.Kind.TRANSFER, at=now, now=now, terms=terms,
                      why=ledger.Why(rule="merge", actor=actor.label, reason=note, purchase=lot.purchase))
    if src.balance < 0:
        owed = -src.balance
        ledger.credit(src, owed, kind=ledger.Kind.TRANSFER, at=now, now=now, why=why,
                      terms=ledger.LotTerms(now, None))
        ledger.clawback(to, owed, kind=ledger.Kind.TRANSFER, now=now, why=why, max_negative=rules.max_negative)
    if src.debt:
        debt = src.debt
        PointsAccount.objects.filter(pk=src.pk).update(debt=0)
        PointsAccount.objects.filter(pk=to.pk).update(debt=to.debt + debt)
        src.debt, to.debt = 0, to.debt + debt
    PointsAccount.objects.filter(pk=to.pk).update(earned_total=to.earned_total + src.earned_total)
    PointsAccount.objects.filter(pk=src.pk).update(closed_at=now)  # see `ledger.account_lock_live`
    Purchase.objects.filter(member=absorbed).update(member=survivor)
    ladder = rules.ladder
    codes = [t.code for t in ladder.tiers]
    if src.tier in codes and to.tier in codes and codes.index(src.tier) > codes.index(to.tier):
        TierChange.objects.create(account=to, from_tier=to.tier, to_tier=src.tier, reason="merge",
                                  explanation={"absorbed": absorbed.pk}, term_ends_at=src.tier_term_ends_at,
                                  actor=actor.label, at=now)
        PointsAccount.objects.filter(pk=to.pk).update(tier=src.tier, tier_term_ends_at=src.tier_term_ends_at)
        payload = {"member_id": survivor.pk, "from_tier": to.tier, "to_tier": src.tier, "reason": "merge"}
        events.emit(events.TIER_CHANGED, **payload)
        events.emit(events.TIER_UPGRADED, **payload)
        to.tier, to.tier_term_ends_at = src.tier, src.tier_term_ends_at
    from memberhub.domain.tiers import tier_evaluate

    fact = tier_fact(member_id=survivor.pk, ladder=ladder, at=now)
    decision = tier_evaluate(ladder=ladder, facts=[fact], state=tier_state(to), at=now, mode=Mode.ON_PURCHASE)
    decision_apply(to, decision, now=now, actor=actor.label)


def on_erase(member: Member, actor: Principal) -> None:
    """Nothing to anonymise: the ledger and purchases hold no personal data and stay for
    accounting. Points are not forfeited here; the programme decides that by an adjustment."""


def on_export(member: Member) -> dict[str, Any]:
    account = PointsAccount.objects.filter(member=member).first()
    if account is None:
        return {"points": None}
    return {
        "points": {
            "balance": account.balance, "pending": account.pending, "debt": account.debt, "tier": account.tier,
            "entries": [
                {"at": e.at.isoformat(), "kind": e.kind, "points": e.points, "rule": e.rule, "reason": e.reason,
                 "order_no": e.purchase.order_no if e.purchase else None}
                for e in PointsEntry.objects.filter(account=account).select_related("purchase").order_by("pk")
            ],
            "tier_changes": [
                {"at": t.at.isoformat(), "from": t.from_tier, "to": t.to_tier, "reason": t.reason}
                for t in account.tier_changes.order_by("pk")
            ],
        },
        "purchases": [
            {"at": p.at.isoformat(), "channel": p.channel, "order_no": p.order_no, "paid_fen": p.paid_fen,
             "refunded_fen": p.refunded_fen, "points": p.points}
            for p in Purchase.objects.filter(member=member).order_by("at")
        ],
    }


def demo_purchases(out: Writer) -> None:
    """Purchases for the demo members, drawn from the CLV models' own processes (loyalty/demo.py)."""
    from memberhub.loyalty.demo import demo_purchases_load

    demo_purchases_load(out)
