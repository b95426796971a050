"""Spending and correcting points: redeem, two-phase holds, manual adjustments, action points.

Each service owns one transaction with the member's account row locked, so concurrent
redeems serialise on it and never overspend; the lots' conditional UPDATEs and CHECK
constraints are the second line of defence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from memberhub.access import store_scope
from memberhub.access.principal import Principal
from memberhub.access.roles import Cap
from memberhub.audit.services import audit_record
from memberhub.core.errors import Conflict, NotFound, ValidationFailed
from memberhub.domain.member_status import Act
from memberhub.domain.points_adjust import adjust_approval_check, adjust_needs_approval
from memberhub.domain.points_redeem import redeem_deduction, redeem_limit
from memberhub.domain.points_rules import ActionAward, action_points
from memberhub.loyalty import ledger
from memberhub.loyalty.members import member_resolve, member_resolve_in_scope
from memberhub.loyalty.models import Adjustment, Hold, PointsAccount, PointsEntry
from memberhub.loyalty.programme import rules_current
from memberhub.members.models import Member
from memberhub.members.services import member_act_check


def _spender(actor: Principal, member_id: int | None, key: str | None, store_id: int | None = None) -> Member:
    # the member's own, or anyone's when spent at one of the caller's stores (a checkout there)
    if store_id is None:
        store_scope.require_member_id(actor, member_id)
    member = member_resolve(member_id=member_id, key=key, actor=actor)
    store_scope.require_serve(actor, member.home_store_id, store_id)
    if member.status == Member.Status.FROZEN:
        raise Conflict(_("This member is frozen."), code="member_frozen")
    return member


def _positive(points: int) -> None:
    if points <= 0:
        raise ValidationFailed(_("The number of points must be positive."), code="invalid_points")


@dataclass(frozen=True)
class RedeemResult:
    account: PointsAccount
    points: int
    deduction_fen: int
    hold: Hold | None = None


def _deduction(points: int, order_fen: int | None, available: int) -> int:
    rules = rules_current()
    fen = redeem_deduction(points=points, policy=rules.redeem)
    if order_fen is not None:
        limit = redeem_limit(order_fen=order_fen, available=max(available, points), policy=rules.redeem)
        if points > limit.max_points:
            raise ValidationFailed(_("Too many points for this order."), code="redeem_over_limit",
                                   detail={"max_points": limit.max_points, "max_deduction_fen": limit.max_deduction_fen})
    return fen


def points_redeem(*, actor: Principal, points: int, member_id: int | None = None, member_key: str | None = None,
                  order_fen: int | None = None, reference: str = "", reason: str = "",
                  now: datetime | None = None, store_id: int | None = None) -> RedeemResult:
    """Spend points at once: as cash at checkout (`order_fen` given: capped by the redeem
    policy) or against a reward. Refused whole when the balance does not cover it."""
    actor.require(Cap.POINTS_REDEEM)
    _positive(points)
    now = now or timezone.now()
    member = _spender(actor, member_id, member_key, store_id)
    with transaction.atomic():
        account = ledger.account_lock_resolved(member.pk, Act.REDEEM_POINTS)
        ledger.housekeep(account, now)
        fen = _deduction(points, order_fen, account.balance - account.pending) if order_fen is not None else 0
        why = ledger.Why(rule="cash" if order_fen is not None else "reward", actor=actor.label,
                         reason=reason or reference, reference="")
        ledger.spend(account, points, kind=ledger.Kind.REDEEM, now=now, why=why)
        audit_record(actor=actor, action="loyalty.redeem", target=member, reason=reason,
                     after={"points": points, "deduction_fen": fen, "reference": reference})
    return RedeemResult(account, points, fen)


def hold_create(*, actor: Principal, points: int, member_id: int | None = None, member_key: str | None = None,
                order_fen: int | None = None, reference: str = "", now: datetime | None = None) -> Hold:
    """Phase one of a checkout redeem: the points leave the balance now and are given back
    if the hold is released or not confirmed in time."""
    actor.require(Cap.POINTS_REDEEM)
    _positive(points)
    now = now or timezone.now()
    member = _spender(actor, member_id, member_key)
    rules = rules_current()
    with transaction.atomic():
        account = ledger.account_lock_resolved(member.pk, Act.REDEEM_POINTS)
        ledger.housekeep(account, now)
        fen = _deduction(points, order_fen, account.balance - account.pending) if order_fen is not None else 0
        hold = Hold.objects.create(account=account, points=points, deduction_fen=fen, reference=reference,
                                   created_at=now, expires_at=now + timedelta(minutes=rules.hold_ttl_minutes),
                                   created_by=actor.label)
        ledger.spend(account, points, kind=ledger.Kind.REDEEM, now=now,
                     why=ledger.Why(rule="hold", hold=hold, actor=actor.label, reason=reference))
        audit_record(actor=actor, action="loyalty.hold", target=hold,
                     after={"member_id": member.pk, "points": points, "reference": reference})
    return hold


def _hold_locked(actor: Principal | None, hold_id: int) -> tuple[Hold, PointsAccount]:
    found = Hold.objects.filter(pk=hold_id).first()
    # a hold is the member's (it has no store): another store's answers as a missing one
    if found is None or (actor is not None and not store_scope.may_act_on_member(actor, Member.objects.filter(
            points_account__pk=found.account_id).values_list("home_store_id", flat=True).first())):
        raise NotFound(_("No such hold."), code="hold_not_found")
    account = ledger.account_lock(PointsAccount.objects.values_list("member_id", flat=True).get(pk=found.account_id))
    return Hold.objects.select_for_update().get(pk=hold_id), account


def hold_confirm(*, actor: Principal, hold_id: int, now: datetime | None = None) -> Hold:
    """Phase two: the checkout completed, the redeem stands. Confirming twice is a no-op."""
    actor.require(Cap.POINTS_REDEEM)
    now = now or timezone.now()
    with transaction.atomic():
        hold, account = _hold_locked(actor, hold_id)
        if hold.state == Hold.State.CONFIRMED:
            return hold
        if hold.state == Hold.State.RELEASED:
            raise Conflict(_("This hold was released."), code="hold_released")
        if now >= hold.expires_at:
            raise Conflict(_("This hold has expired."), code="hold_expired")
        member_act_check(account.member_id, Act.REDEEM_POINTS)  # frozen meanwhile: release it instead
        Hold.objects.filter(pk=hold.pk).update(state=Hold.State.CONFIRMED, settled_at=now)
        hold.state, hold.settled_at = Hold.State.CONFIRMED, now
        audit_record(actor=actor, action="loyalty.hold_confirm", target=hold, after={"points": hold.points})
    return hold


def _release(hold: Hold, account: PointsAccount, *, now: datetime, actor: str) -> None:
    draws = [(lot_id, -points) for lot_id, points in
             PointsEntry.objects.filter(hold=hold, kind=PointsEntry.Kind.REDEEM).values_list("lot_id", "points")]
    ledger.restore(account, draws, kind=ledger.Kind.REVERSE, now=now,
                   why=ledger.Why(rule="hold_release", hold=hold, actor=actor, reason=hold.reference))
    Hold.objects.filter(pk=hold.pk).update(state=Hold.State.RELEASED, settled_at=now)
    hold.state, hold.settled_at = Hold.State.RELEASED, now


def holds_release_for_merge(account: PointsAccount, *, now: datetime, actor: Principal) -> None:
    """A merge releases the absorbed member's open holds (in its transaction, the account
    locked), so their points go back to the lots they came from and move to the survivor
    with the rest: settled after the merge, a hold would give them back to the merged member.
    The checkout that held them finds the hold released (409 `hold_released`) and holds again."""
    for hold in Hold.objects.select_for_update().filter(account=account, state=Hold.State.HELD).order_by("pk"):
        _release(hold, account, now=now, actor=actor.label)
        audit_record(actor=actor, action="loyalty.hold_release", target=hold, reason="merge",
                     after={"points": hold.points})


def hold_release(*, actor: Principal, hold_id: int, now: datetime | None = None) -> Hold:
    """The checkout was abandoned: give the points back. Releasing twice is a no-op."""
    actor.require(Cap.POINTS_REDEEM)
    now = now or timezone.now()
    with transaction.atomic():
        hold, account = _hold_locked(actor, hold_id)
        if hold.state == Hold.State.RELEASED:
            return hold
        if hold.state == Hold.State.CONFIRMED:
            raise Conflict(_("This hold was confirmed."), code="hold_confirmed")
        _release(hold, account, now=now, actor=actor.label)
        audit_record(actor=actor, action="loyalty.hold_release", target=hold, after={"points": hold.points})
    return hold


def holds_expire(*, now: datetime | None = None) -> int:
    """Job: release holds nobody confirmed in time."""
    now = now or timezone.now()
    done = 0
    for hold_id in Hold.objects.filter(state=Hold.State.HELD, expires_at__lte=now).values_list("pk", flat=True)[:10000]:
        with transaction.atomic():
            hold, account = _hold_locked(None, hold_id)
            if hold.state == Hold.State.HELD:
                _release(hold, account, now=now, actor="system:hold_expiry")
                done += 1
    return done


# --- manual adjustments ----------------------------------------------------------------------

def _adjust_apply(adjustment: Adjustment, account: PointsAccount, *, now: datetime, actor: str) -> None:
    rules = rules_current()
    why = ledger.Why(rule="manual", adjustment=adjustment, actor=actor, reason=adjustment.reason)
    ledger.housekeep(account, now)
    if adjustment.points > 0:
        terms = ledger.lot_terms(rules=rules, earned_at=now)
        ledger.credit(account, adjustment.points, kind=ledger.Kind.ADJUST, at=now, now=now, terms=terms, why=why)
    else:
        ledger.spend(account, -adjustment.points, kind=ledger.Kind.ADJUST, now=now, why=why)
    Adjustment.objects.filter(pk=adjustment.pk).update(state=Adjustment.State.APPLIED, decided_at=now,
                                                       decided_by=actor)
    adjustment.state = Adjustment.State.APPLIED


def adjustment_request(*, actor: Principal, points: int, reason: str, member_id: int | None = None,
                       member_key: str | None = None, now: datetime | None = None) -> Adjustment:
    """A manual credit (> 0) or debit (< 0) with a reason. Above the programme's threshold it
    waits for a second staff member (`adjustment_approve`); otherwise it applies at once."""
    actor.require(Cap.POINTS_ADJUST)
    if not reason.strip():
        raise ValidationFailed(_("A reason is required."), code="reason_required")
    if points == 0:
        raise ValidationFailed(_("The number of points must not be zero."), code="invalid_points")
    now = now or timezone.now()
    member = member_resolve_in_scope(actor=actor, member_id=member_id, key=member_key)
    rules = rules_current()
    with transaction.atomic():
        account = ledger.account_lock_resolved(member.pk)
        adjustment = Adjustment.objects.create(account=account, points=points, reason=reason,
                                               requested_by=actor.label, requested_at=now)
        if not adjust_needs_approval(points=points, policy=rules.adjust):
            _adjust_apply(adjustment, account, now=now, actor=actor.label)
        audit_record(actor=actor, action="loyalty.adjust_request", target=adjustment, reason=reason,
                     after={"member_id": member.pk, "points": points, "state": adjustment.state})
    return adjustment


def adjustment_decide(*, actor: Principal, adjustment_id: int, approve: bool, reason: str = "",
                      now: datetime | None = None) -> Adjustment:
    """The second staff member approves (applies) or rejects a pending adjustment."""
    actor.require(Cap.POINTS_APPROVE)
    now = now or timezone.now()
    found = Adjustment.objects.select_related("account__member").filter(pk=adjustment_id).first()
    if found is None or not store_scope.may_act_on_member(actor, found.account.member.home_store_id):
        raise NotFound(_("No such adjustment."), code="adjustment_not_found")
    adjust_approval_check(requested_by=found.requested_by, approved_by=actor.label)
    with transaction.atomic():
        account = ledger.account_lock(PointsAccount.objects.values_list("member_id", flat=True).get(pk=found.account_id))
        adjustment = Adjustment.objects.select_for_update().get(pk=adjustment_id)
        if adjustment.state != Adjustment.State.PENDING:
            raise Conflict(_("This adjustment was already decided."), code="adjustment_decided",
                           detail={"state": adjustment.state})
        if approve:
            _adjust_apply(adjustment, account, now=now, actor=actor.label)
        else:
            Adjustment.objects.filter(pk=adjustment.pk).update(state=Adjustment.State.REJECTED, decided_at=now,
                                                               decided_by=actor.label)
            adjustment.state = Adjustment.State.REJECTED
        adjustment.decided_by, adjustment.decided_at = actor.label, now
        audit_record(actor=actor, action="loyalty.adjust_approve" if approve else "loyalty.adjust_reject",
                     target=adjustment, reason=reason, after={"points": adjustment.points, "state": adjustment.state})
    return adjustment


# --- action points ---------------------------------------------------------------------------

def action_award(*, actor: Principal, action: str, member_id: int | None = None, member_key: str | None = None,
                 reference: str = "", at: datetime | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Points for registration, birthday, a completed profile, a check-in or a review, after
    the day/month/year/lifetime caps. A repeated `reference` answers the first award."""
    actor.require(Cap.POINTS_ADJUST)
    now = now or timezone.now()
    at = at or now
    rules = rules_current()
    rule = rules.actions.get(action)
    if rule is None:
        raise ValidationFailed(_("Unknown action."), code="unknown_action", detail={"allowed": sorted(rules.actions)})
    member = member_resolve_in_scope(actor=actor, member_id=member_id, key=member_key)
    with transaction.atomic():
        account = ledger.account_lock_resolved(member.pk, Act.EARN)
        if reference:
            first = PointsEntry.objects.filter(account=account, rule=f"action:{action}", reference=reference).first()
            if first is not None:
                return {"member_id": member.pk, "action": action, "points": first.points, "trace": first.trace,
                        "replayed": True}
        history = [ActionAward(a, p) for a, p in PointsEntry.objects.filter(
            account=account, kind=PointsEntry.Kind.EARN, rule=f"action:{action}").values_list("at", "points")]
        earn = action_points(rule=rule, at=at, history=history, timezone=rules.timezone)
        trace = [s.as_dict() for s in earn.trace]
        why = ledger.Why(rule=f"action:{action}", actor=actor.label, reason=action, reference=reference)
        try:
            with transaction.atomic():
                ledger.credit(account, earn.points, kind=ledger.Kind.EARN, at=at, now=now, why=why, trace=trace,
                              terms=ledger.lot_terms(rules=rules, earned_at=at), earned=True)
        except IntegrityError:
            raise Conflict(_("This action was already awarded."), code="action_already_awarded") from None
    return {"member_id": member.pk, "action": action, "points": earn.points, "trace": trace, "replayed": False}


# --- giving spent points back ----------------------------------------------------------------

RETURN_RULE = "return"
_SPEND_RULES = ("cash", "reward")


def _returnable(account: PointsAccount, spend_reference: str) -> tuple[list[tuple[int, int]], int, int]:
    """The lots a spend drew (oldest draw first, net of what was given back to each), and
    the points drawn and returned in total. A spend is found by its redeem entries, which
    carry the spend's reference as their reason (`points_redeem(reference=..., reason="")`)."""
    drawn: dict[int, int] = {}
    for lot_id, points in (PointsEntry.objects.filter(account=account, kind=PointsEntry.Kind.REDEEM,
                                                      rule__in=_SPEND_RULES, reason=spend_reference,
                                                      lot__isnull=False)
                           .order_by("pk").values_list("lot_id", "points")):
        drawn[lot_id] = drawn.get(lot_id, 0) - points
    back: dict[int, int] = {}
    for lot_id, points in PointsEntry.objects.filter(account=account, kind=PointsEntry.Kind.REVERSE,
                                                     rule=RETURN_RULE, reason=spend_reference,
                                                     lot__isnull=False).values_list("lot_id", "points"):
        back[lot_id] = back.get(lot_id, 0) + points
    returned = sum(int(e.trace[0]["value"]) for e in PointsEntry.objects.filter(
        account=account, rule=RETURN_RULE, reason=spend_reference, points=0).exclude(reference="")
        if e.trace and e.trace[0].get("step") == "points_returned")
    left = [(lot_id, n - back.get(lot_id, 0)) for lot_id, n in drawn.items() if n - back.get(lot_id, 0) > 0]
    return left, sum(drawn.values()), returned


def points_return(*, actor: Principal, member_id: int, points: int, reason: str, reference: str,
                  now: datetime | None = None, spend_reference: str | None = None) -> dict[str, Any]:
    """Give back points spent earlier (a cancelled reward order, a refunded checkout).

    `reference` names this return and makes it idempotent (a replay answers the first
    return); `spend_reference` names the spend it undoes (default: the same reference).
    When the spend's draws are known the points go back to the very lots they came from
    (`ledger.restore`: latest-drawn first, an overdrawn balance refilled first, lots that
    expired meanwhile written off at once) and never more than was drawn; a spend booked
    before draws were traceable gets a new lot with the programme's expiry policy instead.
    Append-only: `reverse` entries plus one zero-point entry carrying the reference."""
    actor.require(Cap.POINTS_REDEEM)
    _positive(points)
    reference = (reference or "").strip()
    if not reference or len(reference) > 120:
        raise ValidationFailed(_("A reference of 1 to 120 characters is required."), code="invalid_reference")
    spend_reference = (spend_reference or reference).strip()
    now = now or timezone.now()
    member = member_resolve(member_id=member_id)
    rules = rules_current()
    with transaction.atomic():
        account = ledger.account_lock_resolved(member.pk)
        first = PointsEntry.objects.filter(account=account, rule=RETURN_RULE, reference=reference).first()
        if first is not None:
            done = int(first.trace[0]["value"]) if first.trace else 0
            if done != points:
                raise Conflict(_("This return was already made with another number of points."),
                               code="points_return_exists", detail={"points": done})
            return {"member_id": member.pk, "points": done, "restored_to_lots": first.trace[1]["value"] == "lots",
                    "replayed": True}
        ledger.housekeep(account, now)
        left, drawn, returned = _returnable(account, spend_reference)
        why = ledger.Why(rule=RETURN_RULE, actor=actor.label, reason=spend_reference)
        if drawn:
            if points > drawn - returned:
                raise Conflict(_("More points than the spend took cannot be given back."),
                               code="points_return_exceeds_spend",
                               detail={"drawn": drawn, "returned": returned, "points": points})
            draws: list[tuple[int, int]] = []
            want = points
            for lot_id, n in reversed(left):  # the latest-expiring draws go back first
                take = min(want, n)
                if take:
                    draws.append((lot_id, take))
                    want -= take
            if want:  # cannot happen: the lots' shares add up to at least what is left to return
                raise Conflict(_("The points changed meanwhile; try again."), code="points_concurrent_change")
            ledger.restore(account, draws, kind=ledger.Kind.REVERSE, now=now, why=why)
        else:
            ledger.credit(account, points, kind=ledger.Kind.REVERSE, at=now, now=now, why=why,
                          terms=ledger.lot_terms(rules=rules, earned_at=now))
        how = "lots" if drawn else "new_lot"
        ledger.credit(account, 0, kind=ledger.Kind.REVERSE, at=now, now=now,
                      why=ledger.Why(rule=RETURN_RULE, actor=actor.label, reason=spend_reference, reference=reference),
                      terms=ledger.LotTerms(now, None),
                      trace=[{"step": "points_returned", "value": str(points)}, {"step": "to", "value": how},
                             {"step": "why", "value": reason}])
        audit_record(actor=actor, action="loyalty.points_return", target=member, reason=reason,
                     after={"points": points, "reference": reference, "spend_reference": spend_reference, "to": how})
    return {"member_id": member.pk, "points": points, "restored_to_lots": bool(drawn), "replayed": False}
