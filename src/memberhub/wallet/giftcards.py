"""Gift cards (礼品卡): issued in batches with codes, one balance, spent and refunded like a wallet."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from memberhub.access.principal import Principal
from memberhub.access.roles import Cap
from memberhub.audit.services import audit_record
from memberhub.core.errors import Conflict, NotFound, ValidationFailed
from memberhub.domain import wallet as rules
from memberhub.domain.coupon_codes import code_normalize, code_verify, codes_generate
from memberhub.wallet.models import GiftCard, GiftCardMovement
from memberhub.wallet.services import MAX_AMOUNT_FEN, _amount, _ref, _store

CODE_PREFIX = "G"
CODE_LENGTH = 15  # 14 random + check: a gift card is bearer money, so far harder to guess than a coupon


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
            try:
                with transaction.atomic():
                    cards = GiftCard.objects.bulk_create(
                        [GiftCard(code=c, initial_fen=amount_fen, balance_fen=amount_fen, expires_at=expires_at,
                                  issued_at=now, batch_ref=ref) for c in codes])
                break
            except IntegrityError:
                continue
        else:
            raise Conflict(_("Could not allocate gift card codes; try again."), code="code_allocation_failed")
        cards = list(GiftCard.objects.filter(batch_ref=ref).order_by("pk"))
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
          store: Any = None, original: GiftCardMovement | None = None) -> GiftCardMovement:
    moved = GiftCard.objects.filter(pk=card.pk, balance_fen__gte=-amount).update(balance_fen=F("balance_fen") + amount)
    if not moved:
        raise Conflict(_("The balance is too low."), code="insufficient_balance")
    card.refresh_from_db(fields=["balance_fen"])
    return GiftCardMovement.objects.create(card=card, kind=kind, amount_fen=amount, balance_after_fen=card.balance_fen,
                                           ref=ref, store=store, original=original, actor_label=actor.label, at=now)


def gift_card_spend(*, actor: Principal, code: str, amount_fen: int, order_no: str, store: str | None = None,
                    allow_partial: bool = False, now: datetime | None = None) -> GiftCardMovement:
    actor.require(Cap.WALLET_SPEND)
    _amount(amount_fen)
    ref = _ref(order_no)
    now = now or timezone.now()
    the_store = _store(actor, store)
    with transaction.atomic():
        card = gift_card_get(actor=actor, code=code, for_update=True)
        if (done := card.movements.filter(kind=GiftCardMovement.Kind.SPEND, ref=ref).first()) is not None:
            return done
        _usable(card, now)
        draw = rules.gift_card_draw(card=rules.GiftCard(code=card.code, balance_fen=card.balance_fen),
                                    amount_fen=amount_fen, allow_partial=allow_partial)
        if draw.drawn_fen == 0:
            raise Conflict(_("The balance is too low."), code="insufficient_balance")
        movement = _move(card, kind=GiftCardMovement.Kind.SPEND, amount=-draw.drawn_fen, ref=ref, actor=actor,
                         now=now, store=the_store)
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


def gift_card_check(*, card: GiftCard) -> list[rules.WalletLedgerViolation]:
    entries = [rules.WalletLedgerEntry(entry_id=str(m.pk), bucket=rules.CARD, amount_fen=m.amount_fen)
               for m in card.movements.order_by("pk")]
    return rules.wallet_ledger_check(entries=entries, balances={rules.CARD: card.balance_fen})


__all__ = ["MAX_AMOUNT_FEN", "gift_card_get", "gift_card_refund", "gift_card_spend", "gift_cards_issue"]
