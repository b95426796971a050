"""Gift cards (礼品卡): issued in batches with codes, one balance, spent and refunded like a wallet.

PIN: every card issued gets a 6-digit PIN, shown once in the issue answer and stored only as a
keyed HMAC of code and PIN (``core.crypto.blind_index``; a stolen database does not reveal
it without the key). Spending needs the PIN, except for a caller that holds
``programme:manage`` as well as ``wallet:spend`` (admins, the system, back-office keys given
both scopes) — e.g. to settle a card whose holder proved ownership another way. Cards issued
before PINs existed have none and need none.

Guessing: every PIN refused (wrong, or given for a locked card) is counted on the card and
audited (``gift_card.pin_failed``) in its own transaction, committed although the refusal rolls
back the payment (core/outlive.py). After ``GIFT_CARD_PIN_ATTEMPTS`` (5) refused in a row the
card locks (``gift_card.lock``): every spend answers 423 ``gift_card_locked``, the right PIN
too, until someone who may waive the PIN unlocks it with a reason (``gift_card_unlock``,
audited). The right PIN sets the count back to 0. A caller with
``GIFT_CARD_PIN_CALLER_LIMIT`` (10) refused PINs within ``GIFT_CARD_PIN_CALLER_WINDOW_SECONDS``
(15 min), across all cards, is answered 429 ``gift_card_pin_throttled`` with ``Retry-After``
before the PIN is looked at (counted from the audit log, so across every worker process).

Expiry: a card is refused from ``expires_at`` on, and ``gift_cards_expire`` (hourly job)
writes what is left off with one ``expire`` movement, so the balance stays the sum of the
movements.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from memberhub.access.principal import Principal
from memberhub.access.roles import Cap
from memberhub.audit.models import AuditEntry
from memberhub.audit.services import audit_record
from memberhub.core.crypto import blind_index
from memberhub.core.errors import (
    ApplicationError,
    Conflict,
    NotFound,
    PermissionDenied,
    RateLimited,
    ValidationFailed,
)
from memberhub.core.outlive import outlive_rollback, run_outliving, take_outliving
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


PIN_FAILED = "gift_card.pin_failed"


def _caller_throttle(actor: Principal, now: datetime) -> None:
    """429 for a caller with too many refused PINs lately, on any card (the audit log is the
    count, so every worker process sees the same)."""
    window = settings.GIFT_CARD_PIN_CALLER_WINDOW_SECONDS
    since = now - timedelta(seconds=window)
    recent = list(AuditEntry.objects.filter(action=PIN_FAILED, at__gte=since, actor_kind=actor.kind,
                                            actor_id=actor.id, actor_label=actor.label)
                  .order_by("-at").values_list("at", flat=True)[:settings.GIFT_CARD_PIN_CALLER_LIMIT])
    if len(recent) >= settings.GIFT_CARD_PIN_CALLER_LIMIT:
        wait = int((recent[-1] + timedelta(seconds=window) - now).total_seconds()) + 1
        raise RateLimited(_("Too many wrong gift card PINs; try again later."), code="gift_card_pin_throttled",
                          detail={"retry_after_seconds": max(wait, 1)})


def _pin_refused(card_id: int, actor: Principal, now: datetime) -> Callable[[], None]:
    """The record of one refused PIN, for `outlive_rollback`: counted on the card (one
    conditional UPDATE, so parallel refusals all count), the card locked at the limit, audited."""

    def record() -> None:
        GiftCard.objects.filter(pk=card_id).update(pin_failures=F("pin_failures") + 1)
        locked = GiftCard.objects.filter(pk=card_id, pin_locked_at__isnull=True,
                                         pin_failures__gte=settings.GIFT_CARD_PIN_ATTEMPTS).update(pin_locked_at=now)
        card = GiftCard.objects.get(pk=card_id)
        audit_record(actor=actor, action=PIN_FAILED, target=card,
                     after={"failures": card.pin_failures, "locked": card.pin_locked_at is not None})
        if locked:
            audit_record(actor=actor, action="gift_card.lock", target=card, after={"failures": card.pin_failures},
                         reason="too many wrong PINs")

    return record


def _locked() -> ApplicationError:
    return ApplicationError(_("This gift card is locked after too many wrong PINs; staff must unlock it."),
                            code="gift_card_locked", status=423)


def pin_check(card: GiftCard, actor: Principal, pin: str | None, now: datetime | None = None) -> None:
    """Refuse a spend without the card's PIN, unless the caller may waive it; refuse every
    spend of a locked card. `card` is locked for update by the caller; a refusal carries its
    record (see the module docstring)."""
    now = now or timezone.now()
    given = pin is not None and pin.strip() != ""
    if card.pin_locked_at is not None:
        exc = _locked()
        if given and not actor.can(PIN_WAIVER_CAP):
            outlive_rollback(exc, _pin_refused(card.pk, actor, now))
        raise exc
    if not card.pin_hash or actor.can(PIN_WAIVER_CAP):
        return
    if not given:
        raise ValidationFailed(_("The gift card's PIN is required."), code="gift_card_pin_required")
    _caller_throttle(actor, now)
    if not hmac.compare_digest(pin_hash(card.code, (pin or "").strip()), card.pin_hash):
        left = max(settings.GIFT_CARD_PIN_ATTEMPTS - card.pin_failures - 1, 0)
        exc = PermissionDenied(_("The gift card's PIN is wrong."), code="gift_card_pin_invalid",
                               detail={"attempts_left": left})
        outlive_rollback(exc, _pin_refused(card.pk, actor, now))
        raise exc
    if card.pin_failures:  # the right PIN: the count starts again (committed with the payment)
        GiftCard.objects.filter(pk=card.pk).update(pin_failures=0)
        card.pin_failures = 0


def gift_card_unlock(*, actor: Principal, code: str, reason: str) -> GiftCard:
    """Unlock a card locked by wrong PINs. Only a caller who may spend without the PIN (see the
    module docstring) may: unlocking gives them nothing they do not already have."""
    actor.require(Cap.WALLET_SPEND, PIN_WAIVER_CAP)
    if not reason.strip():
        raise ValidationFailed(_("A reason is required."), code="reason_required")
    with transaction.atomic():
        card = gift_card_get(actor=actor, code=code, for_update=True)
        if card.pin_locked_at is None:
            raise Conflict(_("This gift card is not locked."), code="gift_card_not_locked")
        before = {"failures": card.pin_failures, "locked_at": card.pin_locked_at.isoformat()}
        GiftCard.objects.filter(pk=card.pk).update(pin_failures=0, pin_locked_at=None)
        card.refresh_from_db()
        audit_record(actor=actor, action="gift_card.unlock", target=card, before=before,
                     after={"failures": 0, "locked_at": None}, reason=reason.strip())
    return card


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
    # Called on its own, a refused PIN is recorded in this transaction, under the card's lock:
    # the next spend waiting for that lock sees the count and the lock, so a burst of parallel
    # guesses gets no more tries than one after another. Inside a caller's transaction (a
    # checkout) the refusal rolls that back, and the record is written once it has.
    outermost = not transaction.get_connection().in_atomic_block
    refused: ApplicationError | None = None
    try:
        with transaction.atomic():
            card = gift_card_get(actor=actor, code=code, for_update=True)
            try:
                pin_check(card, actor, pin, now)
            except ApplicationError as exc:
                if not outermost:
                    raise
                for write in take_outliving(exc):
                    write()
                refused = exc
            if refused is None:
                done = card.movements.filter(kind=GiftCardMovement.Kind.SPEND, ref=ref).first()
                if done is not None:
                    replay_check(requested_fen=done.requested_fen if done.requested_fen is not None
                                 else -done.amount_fen, asked_fen=amount_fen)
                    return done
                _usable(card, now)
                if card.member_id is not None:  # a card bound to a frozen member is frozen with them
                    member_act_check(card.member_id, Act.STORED_VALUE)
                draw = rules.gift_card_draw(card=rules.GiftCard(code=card.code, balance_fen=card.balance_fen),
                                            amount_fen=amount_fen, allow_partial=allow_partial)
                if draw.drawn_fen == 0:
                    raise Conflict(_("The balance is too low."), code="insufficient_balance")
                movement = _move(card, kind=GiftCardMovement.Kind.SPEND, amount=-draw.drawn_fen, ref=ref,
                                 actor=actor, now=now, store=the_store, requested_fen=amount_fen)
                audit_record(actor=actor, action="gift_card.spend", target=card,
                             after={"amount_fen": -draw.drawn_fen, "ref": ref})
    except ApplicationError as exc:
        run_outliving(exc)  # a refused PIN is recorded now if this was the outermost transaction
        raise
    if refused is not None:
        raise refused  # its record committed with the transaction above
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


__all__ = ["MAX_AMOUNT_FEN", "gift_card_get", "gift_card_refund", "gift_card_spend", "gift_card_unlock",
           "gift_cards_expire", "gift_cards_issue", "pin_check"]
