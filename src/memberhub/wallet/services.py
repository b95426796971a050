"""Stored value: top-up (充值送), spend at the till, refund to the wallet, ledger check.

Each write locks the wallet row, asks ``domain.wallet`` for the split, moves the cached
buckets with a conditional UPDATE (``principal >= p AND bonus >= b``; CheckConstraints
behind it) and appends one movement, all in one transaction. A movement's ``ref`` is unique
per (wallet, kind): a replayed top-up / payment / refund returns the first movement.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from memberhub.access import store_scope
from memberhub.access.principal import Principal
from memberhub.access.roles import Cap
from memberhub.audit.services import audit_record
from memberhub.core.errors import Conflict, NotFound, ValidationFailed
from memberhub.domain import wallet as rules
from memberhub.domain.member_status import Act
from memberhub.members.models import Member
from memberhub.members.services import member_act_check
from memberhub.stores.models import Store
from memberhub.stores.selectors import store_for_actor
from memberhub.wallet.models import TopUpRule, Wallet, WalletConfig, WalletMovement

MAX_AMOUNT_FEN = settings.MAX_AMOUNT_FEN  # 1 亿元 by default: a typo guard, not a business limit (core/schemas.py)


def _member(actor: Principal, member_id: int, *, spending: bool = False, scoped: bool = False,
            at_store: Store | None = None) -> Member:
    member = Member.objects.filter(pk=member_id).only("status", "home_store_id").first()
    # a store-scoped caller tops up and spends for members of its stores, or for anyone at one
    # of its stores (access/store_scope.py)
    if member is None or (scoped and not store_scope.may_serve(actor, member.home_store_id,
                                                               at_store.pk if at_store else None)):
        raise NotFound(_("No such member."), code="member_not_found")
    if member.status in (Member.Status.ERASED, Member.Status.MERGED):
        raise Conflict(_("This member was erased or merged."), code="member_not_live")
    if spending and member.status == Member.Status.FROZEN:
        raise Conflict(_("This member is frozen."), code="member_frozen")
    return member


def _store(actor: Principal, code: str | None) -> Store | None:
    return store_for_actor(actor=actor, code=code) if code is not None else None


def _amount(amount_fen: int) -> None:
    if not 0 < amount_fen <= MAX_AMOUNT_FEN:
        raise ValidationFailed(_("The amount must be a positive number of fen."), code="invalid_amount",
                               detail={"amount_fen": amount_fen})


def wallet_locked(member_id: int) -> Wallet:
    """The member's wallet, created on first use, locked for this transaction."""
    wallet = Wallet.objects.select_for_update().filter(member_id=member_id).first()
    if wallet is None:
        try:
            with transaction.atomic():
                Wallet.objects.create(member_id=member_id)
        except IntegrityError:
            pass  # created by a concurrent first top-up
        wallet = Wallet.objects.select_for_update().get(member_id=member_id)
    return wallet


def wallet_locked_live(member_id: int, act: Act | None = None) -> Wallet:
    """`wallet_locked` for a member checked as live before the transaction: checked again
    under the lock, as a merge (which empties the absorbed wallet into the survivor's) or an
    erasure may have committed meanwhile, and money must not be booked on a merged member.
    With `act` (a top-up or a payment) the member's status must allow it: a freeze that
    committed meanwhile refuses it (409 `member_frozen`, `member_act_check`)."""
    wallet = wallet_locked(member_id)
    if Member.objects.filter(pk=member_id, status__in=(Member.Status.ERASED, Member.Status.MERGED)).exists():
        raise Conflict(_("This member was erased or merged."), code="member_not_live")
    if act is not None:
        member_act_check(member_id, act)
    return wallet


def draw_order() -> rules.DrawOrder:
    config = WalletConfig.objects.filter(pk=1).first()
    return rules.DrawOrder(config.draw_order if config else WalletConfig.DrawOrder.PRINCIPAL_FIRST)


def _move(wallet: Wallet, *, kind: str, principal: int, bonus: int, ref: str, actor: Principal,
          now: datetime, store: Store | None = None, channel: str = "", rule_id: str = "",
          original: WalletMovement | None = None, requested_fen: int | None = None) -> WalletMovement:
    """Apply a signed change to both buckets and append its movement."""
    moved = Wallet.objects.filter(pk=wallet.pk, principal_fen__gte=-principal, bonus_fen__gte=-bonus).update(
        principal_fen=F("principal_fen") + principal, bonus_fen=F("bonus_fen") + bonus, updated_at=now)
    if not moved:
        raise Conflict(_("The balance is too low."), code="insufficient_balance")
    wallet.refresh_from_db(fields=["principal_fen", "bonus_fen"])
    return WalletMovement.objects.create(
        wallet=wallet, kind=kind, principal_fen=principal, bonus_fen=bonus, principal_after_fen=wallet.principal_fen,
        bonus_after_fen=wallet.bonus_fen, ref=ref, requested_fen=requested_fen, original=original, rule_id=rule_id, channel=channel, store=store,
        actor_label=actor.label, at=now)


def _replayed(wallet: Wallet, kind: str, ref: str) -> WalletMovement | None:
    return WalletMovement.objects.filter(wallet=wallet, kind=kind, ref=ref).first()


def replay_check(*, requested_fen: int, asked_fen: int, order_no: str | None = None,
                 original_ref: str | None = None) -> None:
    """A reference (payment ref, order number, refund number) names one effect: used again for
    another amount (or a refund for another order) it is refused, 409 `ref_reused`, as a
    top-up is, never answered with the first movement as if it were the same request."""
    if requested_fen != asked_fen or (order_no is not None and original_ref != order_no):
        raise Conflict(_("This reference was already used for another amount or order."), code="ref_reused",
                       detail={"amount_fen": requested_fen})


def _spend_asked(movement: WalletMovement) -> int:
    # rows from before requested_fen was kept: a payment that was not partial drew what it asked
    drawn = -(movement.principal_fen + movement.bonus_fen)
    return movement.requested_fen if movement.requested_fen is not None else drawn


def _ref(ref: str) -> str:
    ref = (ref or "").strip()
    if not ref or len(ref) > 120:
        raise ValidationFailed(_("A reference of 1 to 120 characters is required."), code="invalid_ref")
    return ref


def wallet_topup(*, actor: Principal, member_id: int, amount_fen: int, payment_ref: str, store: str | None = None,
                 channel: str = "offline", now: datetime | None = None) -> WalletMovement:
    """充值: the principal paid plus the best 充X送Y bonus, in separate buckets."""
    actor.require(Cap.WALLET_TOPUP)
    _amount(amount_fen)
    ref = _ref(payment_ref)
    now = now or timezone.now()
    the_store = _store(actor, store)
    _member(actor, member_id, spending=True, scoped=True, at_store=the_store)
    with transaction.atomic():
        wallet = wallet_locked_live(member_id, Act.STORED_VALUE)
        if (done := _replayed(wallet, WalletMovement.Kind.TOPUP, ref)) is not None:
            if done.principal_fen != amount_fen:
                raise Conflict(_("This payment reference was used for another amount."), code="ref_reused")
            return done
        live_rules = TopUpRule.objects.filter(is_active=True).filter(
            Q(valid_from__isnull=True) | Q(valid_from__lte=now), Q(valid_until__isnull=True) | Q(valid_until__gt=now))
        topup = rules.topup_apply(rules=[rules.TopUpRule(rule_id=str(r.pk), threshold_fen=r.threshold_fen,
                                                         bonus_fen=r.bonus_fen) for r in live_rules],
                                  amount_fen=amount_fen)
        movement = _move(wallet, kind=WalletMovement.Kind.TOPUP, principal=topup.principal_fen, bonus=topup.bonus_fen,
                         ref=ref, actor=actor, now=now, store=the_store, channel=channel, rule_id=topup.rule_id or "")
        audit_record(actor=actor, action="wallet.topup", target=wallet,
                     after={"principal_fen": topup.principal_fen, "bonus_fen": topup.bonus_fen, "ref": ref})
    return movement


def wallet_spend(*, actor: Principal, member_id: int, amount_fen: int, order_no: str, store: str | None = None,
                 channel: str = "offline", allow_partial: bool = False, now: datetime | None = None) -> WalletMovement:
    """储值支付: drawn from principal and bonus in the configured order; never below zero."""
    actor.require(Cap.WALLET_SPEND)
    _amount(amount_fen)
    ref = _ref(order_no)
    now = now or timezone.now()
    the_store = _store(actor, store)
    _member(actor, member_id, spending=True, scoped=True, at_store=the_store)
    with transaction.atomic():
        wallet = wallet_locked_live(member_id, Act.STORED_VALUE)
        if (done := _replayed(wallet, WalletMovement.Kind.SPEND, ref)) is not None:
            replay_check(requested_fen=_spend_asked(done), asked_fen=amount_fen)
            return done
        draw = rules.wallet_draw(balance=rules.WalletBalance(principal_fen=wallet.principal_fen,
                                                             bonus_fen=wallet.bonus_fen),
                                 amount_fen=amount_fen, order=draw_order(), allow_partial=allow_partial)
        if draw.total_fen == 0:
            raise Conflict(_("The balance is too low."), code="insufficient_balance",
                           detail={"amount_fen": amount_fen, "balance_fen": 0, "missing_fen": amount_fen})
        movement = _move(wallet, kind=WalletMovement.Kind.SPEND, principal=-draw.principal_fen, bonus=-draw.bonus_fen,
                         ref=ref, actor=actor, now=now, store=the_store, channel=channel, requested_fen=amount_fen)
        audit_record(actor=actor, action="wallet.spend", target=wallet,
                     after={"principal_fen": -draw.principal_fen, "bonus_fen": -draw.bonus_fen, "ref": ref})
    return movement


def wallet_refund(*, actor: Principal, member_id: int, order_no: str, amount_fen: int, refund_no: str,
                  now: datetime | None = None) -> WalletMovement:
    """退款回储值: back in the proportion that payment drew; partial refunds add up exactly."""
    actor.require(Cap.WALLET_SPEND)
    _amount(amount_fen)
    ref = _ref(refund_no)
    now = now or timezone.now()
    member = _member(actor, member_id)
    with transaction.atomic():
        wallet = wallet_locked_live(member_id)
        spend = WalletMovement.objects.filter(wallet=wallet, kind=WalletMovement.Kind.SPEND, ref=order_no).first()
        # a payment is its store's (else the member's home store's): another store's is not found
        if not store_scope.may_act_on_record(actor, spend.store_id if spend else None, member.home_store_id):
            raise NotFound(_("No such member."), code="member_not_found") if spend is None else \
                NotFound(_("No wallet payment for this order."), code="payment_not_found")
        if (done := _replayed(wallet, WalletMovement.Kind.REFUND, ref)) is not None:
            replay_check(requested_fen=done.principal_fen + done.bonus_fen, asked_fen=amount_fen, order_no=order_no,
                         original_ref=done.original.ref if done.original is not None else None)
            return done
        if spend is None:
            raise NotFound(_("No wallet payment for this order."), code="payment_not_found")
        before = [(m.principal_fen, m.bonus_fen) for m in spend.refunds.all()]
        back = rules.wallet_refund(draw=rules.WalletDraw(principal_fen=-spend.principal_fen, bonus_fen=-spend.bonus_fen),
                                   refund_fen=amount_fen, refunded_before_fen=sum(p + b for p, b in before))
        movement = _move(wallet, kind=WalletMovement.Kind.REFUND, principal=back.principal_fen, bonus=back.bonus_fen,
                         ref=ref, actor=actor, now=now, store=spend.store, channel=spend.channel, original=spend)
        audit_record(actor=actor, action="wallet.refund", target=wallet,
                     after={"principal_fen": back.principal_fen, "bonus_fen": back.bonus_fen, "ref": ref,
                            "order_no": order_no})
    return movement


def wallet_config_set(*, actor: Principal, draw_order: str) -> WalletConfig:
    actor.require(Cap.PROGRAMME_MANAGE)
    with transaction.atomic():
        config, _created = WalletConfig.objects.select_for_update().get_or_create(pk=1)
        before = {"draw_order": config.draw_order}
        config.draw_order = rules.DrawOrder(draw_order).value
        config.save()
        audit_record(actor=actor, action="wallet.config", target=config, before=before,
                     after={"draw_order": config.draw_order})
    return config


def topup_rule_create(*, actor: Principal, values: dict[str, Any]) -> TopUpRule:
    actor.require(Cap.PROGRAMME_MANAGE)
    rules.TopUpRule(rule_id="new", threshold_fen=values["threshold_fen"], bonus_fen=values["bonus_fen"])
    with transaction.atomic():
        rule = TopUpRule.objects.create(**values)
        audit_record(actor=actor, action="wallet.topup_rule_create", target=rule,
                     after={"threshold_fen": rule.threshold_fen, "bonus_fen": rule.bonus_fen})
    return rule


def topup_rule_set_active(*, actor: Principal, rule_id: int, active: bool) -> TopUpRule:
    actor.require(Cap.PROGRAMME_MANAGE)
    with transaction.atomic():
        rule = TopUpRule.objects.select_for_update().filter(pk=rule_id).first()
        if rule is None:
            raise NotFound(_("No such top-up rule."), code="topup_rule_not_found")
        before = {"is_active": rule.is_active}
        rule.is_active = active
        rule.save(update_fields=["is_active"])
        audit_record(actor=actor, action="wallet.topup_rule_update", target=rule, before=before,
                     after={"is_active": active})
    return rule
