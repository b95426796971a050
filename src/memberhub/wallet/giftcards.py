"""Gift cards (礼品卡): issued in batches with codes, one balance, spent and refunded like a wallet.

PIN: every card issued gets a 6-digit PIN, shown once in the issue answer and stored only as a
keyed HMAC of code and PIN (``core.crypto.blind_index``; a stolen database does not reveal
it without the key). Spending needs the PIN, except for a caller that holds
``programme:manage`` as well as ``wallet:spend`` (admins, the system, back-office keys given
both scopes) — e.g. to settle a card whose holder proved ownership another way. Cards issued
before PINs existed have none and need none.

Expiry: a card is refused from ``expires_at`` on, and ``gift_cards_expire`` (hourly job)
writes what is left off with one ``expire`` movement, so the balance stays the sum of the
movements.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from memberhub.access.principal import Principal
from memberhub.access.roles import Cap
from memberhub.audit.services import audit_record
from memberhub.core.crypto import blind_index
from memberhub.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from memberhub.domain import wallet as rules
from memberhub.domain.coupon_codes import code_normalize, code_verify, codes_generate
from memberhub.domain.member_status import Act
from memberhub.members.services import member_act_check
from memberhub.wallet.models import GiftCard, GiftCardMovement
from memberhub.wallet.services import MAX_AMOUNT_FEN, _amount, _ref, _store, replay_check

CODE_PREFIX = "G"
CODE_LENGTH = 15  # 14 random + check: a gift card is bearer money, so far harder to guess than a coupon
PIN_DIGITS = 6
PIN_WAIVER_CAP = Cap.PROGRAMME_MANAGE  # with wallet:spend, spends without the PIN


def pin_hash(code: str, pin: str) -> str:
    return blind_index(f"{code}:{pin}", purpose="gift_card_pin") or ""


def _pin_new() -> str:
    return f"{secrets.randbelow(10**PIN_DIGITS):0{PIN_DIGITS}d}"


def pin_check(card: GiftCard, actor: Principal, pin: str | None) -> None:
    """Refuse a spend without the card's PIN, unless the caller may waive it."""
    if not card.pin_hash or actor.can(PIN_WAIVER_CAP):
        return
    if not pin:
        raise ValidationFailed(_("The gift card's PIN is required."), code="gift_card_pin_required")
    if not hmac.compare_digest(pin_hash(card.code, pin.strip()), card.pin_hash):
        raise PermissionDenied(_("The gift card's PIN is wrong."), code="gift_card_pin_invalid")


def gift_cards_issue(*, actor: Principal, count: int, amount_fen: int, batch_ref: str,
                     expires_at: datetime | None = None, now: datetime | None = None) -> list[GiftCard]:
    actor.require(Cap.WALLET_TOPUP)
    _amount(amount_fen)
    if not 1 <= count <= 10_000:
        raise ValidationFailed(_("count must be between 1 and 10000."), code="invalid_count")
    ref = _ref(batch_ref)
    now = now or timezone.now()
    with transaction.atomic():
        existing = list(GiftCard.objects.filter(batch_ref=ref))
        if existing:  # a replayed batch: the cards already made
            return existing
        for _attempt in range(5):
            codes = codes_generate(count=count, length=CODE_LENGTH, prefix=CODE_PREFIX)
            pins = {c: _pin_new() for c in codes}
            try:
                with transaction.atomic():
                    cards = GiftCard.objects.bulk_create(
                        [GiftCard(code=c, initial_fen=amount_fen, balance_fen=amount_fen, expires_at=expires_at,
                                  issued_at=now, batch_ref=ref, pin_hash=pin_hash(c, pins[c])) for c in codes])
                break
            except IntegrityError:
                continue
        else:
            raise Conflict(_("Could not allocate gift card codes; try again."), code="code_allocation_failed")
        cards = list(GiftCard.objects.filter(batch_ref=ref).order_by("pk"))
        for card in cards:
            card.pin = pins[card.code]  # type: ignore[attr-defined]  # shown once, never stored
        GiftCardMovement.objects.bulk_create(
            [GiftCardMovement(card=c, kind=GiftCardMovement.Kind.ISSUE, amount_fen=amount_fen,
                              balance_after_fen=amount_fen, ref=ref, actor_label=actor.label, at=now) for c in cards])
        audit_record(actor=actor, action="gift_card.issue", target_type="wallet.giftcard_batch", target_id=ref,
                     after={"count": count, "amount_fen": amount_fen})
    return cards


def gift_card_get(*, actor: Principal, code: str, for_update: bool = False) -> GiftCard:
    actor.require(Cap.WALLET_READ)
    normalized = code_normalize(code)
    check = code_verify(code=normalized, prefix=CODE_PREFIX, length=CODE_LENGTH)
    if not check.valid:
        raise NotFound(_("No gift card has this code."), code="gift_card_not_found", detail={"format": check.reason})
    qs = GiftCard.objects.select_for_update() if for_update else GiftCard.objects
    card = qs.filter(code=normalized).first()
    if card is None:
        raise NotFound(_("No gift card has this code."), code="gift_card_not_found")
    return card


def _usable(card: GiftCard, now: datetime) -> None:
    if card.status != GiftCard.Status.ACTIVE:
        raise Conflict(_("This gift card is void."), code="gift_card_void")
    if card.expires_at is not None and now >= card.expires_at:
        raise Conflict(_("This gift card has expired."), code="gift_card_expired")


def _move(card: GiftCard, *, kind: str, amount: int, ref: str, actor: Principal, now: datetime,
          store: Any = None, original: GiftCardMovement | None = None,
          requested_fen: int | None = None) -> GiftCardMovement:
    moved = GiftCard.objects.filter(pk=card.pk, balance_fen__gte=-amount).update(balance_fen=F("balance_fen") + amount)
    if not moved:
        raise Conflict(_("The balance is too low."), code="insufficient_balance")
    card.refresh_from_db(fields=["balance_fen"])
    return GiftCardMovement.objects.create(card=card, kind=kind, amount_fen=amount, balance_after_fen=card.balance_fen,
                                           ref=ref, requested_fen=requested_fen, store=store, original=original,
                                           actor_label=actor.label, at=now)


def gift_card_spend(*, actor: Principal, code: str, amount_fen: int, order_no: str, store: str | None = None,
                    allow_partial: bool = False, now: datetime | None = None,
                    pin: str | None = None) -> GiftCardMovement:
    """Pay with a gift card (PIN required, see the module docstring); a replayed order
    number answers the first payment."""
    actor.require(Cap.WALLET_SPEND)
    _amount(amount_fen)
    ref = _ref(order_no)
    now = now or timezone.now()
    the_store = _store(actor, store)
    with transaction.atomic():
        card = gift_card_get(actor=actor, code=code, for_update=True)
        pin_check(card, actor, pin)
        if (done := card.movements.filter(kind=GiftCardMovement.Kind.SPEND, ref=ref).first()) is not None:
            replay_check(requested_fen=done.requested_fen if done.requested_fen is not None else -done.amount_fen,
                         asked_fen=amount_fen)
            return done
        _usable(card, now)
        if card.member_id is not None:  # a card bound to a frozen member is frozen with them
            member_act_check(card.member_id, Act.STORED_VALUE)
        draw = rules.gift_card_draw(card=rules.GiftCard(code=card.code, balance_fen=card.balance_fen),
                                    amount_fen=amount_fen, allow_partial=allow_partial)
        if draw.drawn_fen == 0:
            raise Conflict(_("The balance is too low."), code="insufficient_balance")
        movement = _move(card, kind=GiftCardMovement.Kind.SPEND, amount=-draw.drawn_fen, ref=ref, actor=actor,
                         now=now, store=the_store, requested_fen=amount_fen)
        audit_record(actor=actor, action="gift_card.spend", target=card, after={"amount_fen": -draw.drawn_fen, "ref": ref})
    return movement


def gift_card_refund(*, actor: Principal, code: str, order_no: str, amount_fen: int, refund_no: str,
                     now: datetime | None = None) -> GiftCardMovement:
    actor.require(Cap.WALLET_SPEND)
    _amount(amount_fen)
    ref = _ref(refund_no)
    now = now or timezone.now()
    with transaction.atomic():
        card = gift_card_get(actor=actor, code=code, for_update=True)
        if (done := card.movements.filter(kind=GiftCardMovement.Kind.REFUND, ref=ref).first()) is not None:
            replay_check(requested_fen=done.amount_fen, asked_fen=amount_fen, order_no=order_no,
                         original_ref=done.original.ref if done.original is not None else None)
            return done
        spend = card.movements.filter(kind=GiftCardMovement.Kind.SPEND, ref=order_no).first()
        if spend is None:
            raise NotFound(_("No gift card payment for this order."), code="payment_not_found")
        before = sum(r.amount_fen for r in spend.refunds.all())
        back = rules.gift_card_refund(drawn_fen=-spend.amount_fen, refund_fen=amount_fen, refunded_before_fen=before)
        movement = _move(card, kind=GiftCardMovement.Kind.REFUND, amount=back, ref=ref, actor=actor, now=now,
                         store=spend.store, original=spend)
        audit_record(actor=actor, action="gift_card.refund", target=card, after={"amount_fen": back, "ref": ref})
    return movement


def gift_cards_expire(*, now: datetime | None = None, actor: Principal | None = None) -> int:
    """Job: write off what is left on cards past their expiry (one ``expire`` movement each,
    dated at the expiry instant). One short transaction per card; re-run safe."""
    from memberhub.access.principal import system_principal

    now = now or timezone.now()
    actor = actor or system_principal("gift_card_expiry")
    done = 0
    for card_id in list(GiftCard.objects.filter(balance_fen__gt=0, expires_at__lte=now)
                        .order_by("expires_at", "pk").values_list("pk", flat=True)[:10000]):
        with transaction.atomic():
            card = GiftCard.objects.select_for_update().get(pk=card_id)
            if card.balance_fen <= 0 or card.expires_at is None or card.expires_at > now:
                continue
            left = card.balance_fen
            if not GiftCard.objects.filter(pk=card.pk, balance_fen=left).update(balance_fen=0):
                continue
            GiftCardMovement.objects.create(card=card, kind=GiftCardMovement.Kind.EXPIRE, amount_fen=-left,
                                            balance_after_fen=0, ref="expiry", actor_label=actor.label,
                                            at=card.expires_at)
            audit_record(actor=actor, action="gift_card.expire", target=card, after={"amount_fen": -left})
            done += 1
    return done


def gift_card_check(*, card: GiftCard) -> list[rules.WalletLedgerViolation]:
    entries = [rules.WalletLedgerEntry(entry_id=str(m.pk), bucket=rules.CARD, amount_fen=m.amount_fen)
               for m in card.movements.order_by("pk")]
    return rules.wallet_ledger_check(entries=entries, balances={rules.CARD: card.balance_fen})


__all__ = ["MAX_AMOUNT_FEN", "gift_card_get", "gift_card_refund", "gift_card_spend", "gift_cards_expire",
           "gift_cards_issue", "pin_check"]
