"""Stored value (储值) and gift cards (礼品卡): top-up bonus, draws, refunds, ledger check.

A wallet has two buckets kept apart: **principal** (本金, the member's own money, refundable
in cash under the prepaid-card rules) and **bonus** (赠送金, the 充1000送100 part, never paid
out in cash). Keeping them apart is why every draw says how much came from each, and why a
refund puts back exactly what that payment took from each.

A gift card is the same logic with a single bucket.

All amounts are integer fen; nothing here lets a bucket go negative.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from memberhub.domain.errors import DomainError

PRINCIPAL = "principal"
BONUS = "bonus"
CARD = "card"  # the one bucket of a gift card


class WalletAmountInvalid(DomainError):
    code = "wallet_amount_invalid"


class InsufficientBalance(DomainError):
    code = "insufficient_balance"


class RefundExceedsPayment(DomainError):
    code = "refund_exceeds_payment"


class DrawOrder(StrEnum):
    PRINCIPAL_FIRST = "principal_first"  # 先扣本金
    BONUS_FIRST = "bonus_first"  # 先扣赠送金
    PROPORTIONAL = "proportional"  # 按比例扣


@dataclass(frozen=True, slots=True)
class TopUpRule:
    """充 ``threshold_fen`` 送 ``bonus_fen``."""

    rule_id: str
    threshold_fen: int
    bonus_fen: int

    def __post_init__(self) -> None:
        if self.threshold_fen <= 0 or self.bonus_fen < 0:
            raise WalletAmountInvalid("a top-up rule needs a positive threshold", rule_id=self.rule_id)


@dataclass(frozen=True, slots=True)
class TopUp:
    principal_fen: int  # what the member paid
    bonus_fen: int
    rule_id: str | None  # the rule that gave the bonus, for the ledger entry's memo


def topup_apply(*, rules: Sequence[TopUpRule], amount_fen: int) -> TopUp:
    """The bonus a top-up of ``amount_fen`` earns: the single best rule it reaches.

    Best = largest bonus among rules whose threshold is met (ties: higher threshold, then
    rule id). Rules do not add up: 充2000 under 充1000送100 earns 100, not 200 — operators
    who want that publish a 充2000送200 rule, which the member can read on the poster.
    """
    if amount_fen <= 0:
        raise WalletAmountInvalid("top-up amount must be positive", amount_fen=amount_fen)
    reached = [r for r in rules if r.threshold_fen <= amount_fen]
    if not reached:
        return TopUp(principal_fen=amount_fen, bonus_fen=0, rule_id=None)
    best = min(reached, key=lambda r: (-r.bonus_fen, -r.threshold_fen, r.rule_id))
    return TopUp(principal_fen=amount_fen, bonus_fen=best.bonus_fen, rule_id=best.rule_id)


@dataclass(frozen=True, slots=True)
class WalletBalance:
    principal_fen: int
    bonus_fen: int

    def __post_init__(self) -> None:
        if self.principal_fen < 0 or self.bonus_fen < 0:
            raise WalletAmountInvalid("a wallet bucket cannot be negative")

    @property
    def total_fen(self) -> int:
        return self.principal_fen + self.bonus_fen


@dataclass(frozen=True, slots=True)
class WalletDraw:
    """How much a payment (or a refund of it) took from (or gives back to) each bucket."""

    principal_fen: int
    bonus_fen: int

    @property
    def total_fen(self) -> int:
        return self.principal_fen + self.bonus_fen


def proportional_split(*, amount_fen: int, principal_fen: int, bonus_fen: int) -> WalletDraw:
    """Split ``amount_fen`` in the ratio principal : bonus, exactly.

    The principal part is ``amount * P / (P + B)`` rounded half-up to the fen; the bonus part
    is the rest, so the two always sum to ``amount``. For ``amount <= P + B`` neither part
    exceeds its bucket, and both parts grow monotonically with ``amount`` (which is what lets
    ``wallet_refund`` work on cumulative amounts).
    """
    whole = principal_fen + bonus_fen
    if amount_fen == 0:
        return WalletDraw(principal_fen=0, bonus_fen=0)
    principal = (2 * amount_fen * principal_fen + whole) // (2 * whole)
    return WalletDraw(principal_fen=principal, bonus_fen=amount_fen - principal)


def wallet_draw(
    *, balance: WalletBalance, amount_fen: int, order: DrawOrder, allow_partial: bool = False
) -> WalletDraw:
    """Take ``amount_fen`` from the wallet in the configured order.

    ``allow_partial`` takes what there is (the rest is paid another way, 组合支付); otherwise
    a payment larger than the balance is refused.
    """
    if amount_fen < 0:
        raise WalletAmountInvalid("amount must not be negative", amount_fen=amount_fen)
    if amount_fen > balance.total_fen:
        if not allow_partial:
            raise InsufficientBalance(
                "wallet balance too low",
                amount_fen=amount_fen,
                balance_fen=balance.total_fen,
                missing_fen=amount_fen - balance.total_fen,
            )
        amount_fen = balance.total_fen
    if order is DrawOrder.PROPORTIONAL:
        return proportional_split(
            amount_fen=amount_fen, principal_fen=balance.principal_fen, bonus_fen=balance.bonus_fen
        )
    if order is DrawOrder.PRINCIPAL_FIRST:
        principal = min(amount_fen, balance.principal_fen)
        return WalletDraw(principal_fen=principal, bonus_fen=amount_fen - principal)
    bonus = min(amount_fen, balance.bonus_fen)
    return WalletDraw(principal_fen=amount_fen - bonus, bonus_fen=bonus)


def wallet_refund(*, draw: WalletDraw, refund_fen: int, refunded_before_fen: int = 0) -> WalletDraw:
    """What a refund of ``refund_fen`` restores to each bucket, for the payment that drew ``draw``.

    Always in the proportion that payment drew, whatever the draw order was. Computed on the
    cumulative amount (``refunded_before_fen`` + this refund) and differenced, so several
    partial refunds add up to exactly ``draw`` and never restore more than it to a bucket.
    """
    if refund_fen < 0 or refunded_before_fen < 0:
        raise WalletAmountInvalid("refund amounts must not be negative")
    if refunded_before_fen + refund_fen > draw.total_fen:
        raise RefundExceedsPayment(
            "refund exceeds what this payment drew",
            drawn_fen=draw.total_fen,
            refunded_before_fen=refunded_before_fen,
            refund_fen=refund_fen,
        )
    after = proportional_split(
        amount_fen=refunded_before_fen + refund_fen,
        principal_fen=draw.principal_fen,
        bonus_fen=draw.bonus_fen,
    )
    before = proportional_split(
        amount_fen=refunded_before_fen, principal_fen=draw.principal_fen, bonus_fen=draw.bonus_fen
    )
    return WalletDraw(
        principal_fen=after.principal_fen - before.principal_fen, bonus_fen=after.bonus_fen - before.bonus_fen
    )


@dataclass(frozen=True, slots=True)
class GiftCard:
    code: str
    balance_fen: int

    def __post_init__(self) -> None:
        if self.balance_fen < 0:
            raise WalletAmountInvalid("a gift card balance cannot be negative", code=self.code)


@dataclass(frozen=True, slots=True)
class GiftCardDraw:
    code: str
    drawn_fen: int
    balance_after_fen: int


def gift_card_draw(*, card: GiftCard, amount_fen: int, allow_partial: bool = False) -> GiftCardDraw:
    """Take ``amount_fen`` from a gift card (single bucket; ``allow_partial`` as for a wallet)."""
    drawn = wallet_draw(
        balance=WalletBalance(principal_fen=card.balance_fen, bonus_fen=0),
        amount_fen=amount_fen,
        order=DrawOrder.PRINCIPAL_FIRST,
        allow_partial=allow_partial,
    ).principal_fen
    return GiftCardDraw(code=card.code, drawn_fen=drawn, balance_after_fen=card.balance_fen - drawn)


def gift_card_refund(*, drawn_fen: int, refund_fen: int, refunded_before_fen: int = 0) -> int:
    """What goes back onto the card: the refund, provided it stays within what was drawn."""
    return wallet_refund(
        draw=WalletDraw(principal_fen=drawn_fen, bonus_fen=0),
        refund_fen=refund_fen,
        refunded_before_fen=refunded_before_fen,
    ).principal_fen


@dataclass(frozen=True, slots=True)
class WalletLedgerEntry:
    """One append-only movement: positive credits the bucket, negative debits it."""

    entry_id: str
    bucket: str  # PRINCIPAL | BONUS | CARD
    amount_fen: int


@dataclass(frozen=True, slots=True)
class WalletLedgerViolation:
    code: str  # balance_mismatch | negative_bucket | unknown_bucket | duplicate_entry
    bucket: str
    entry_id: str | None = None
    params: dict[str, int] = field(default_factory=dict)


def wallet_ledger_check(
    *, entries: Sequence[WalletLedgerEntry], balances: Mapping[str, int]
) -> list[WalletLedgerViolation]:
    """Every way the entries and the cached balances disagree; an empty list means sound.

    ``entries`` in the order they were written; ``balances`` the cached balance per bucket
    (``{PRINCIPAL: .., BONUS: ..}`` for a wallet, ``{CARD: ..}`` for a gift card). A running
    balance dipping below zero is reported at the entry that took it there, even if later
    entries bring it back: an overdraft that happened is still a bug.
    """
    violations: list[WalletLedgerViolation] = []
    running = dict.fromkeys(balances, 0)
    seen: set[str] = set()
    for entry in entries:
        if entry.entry_id in seen:
            violations.append(
                WalletLedgerViolation(code="duplicate_entry", bucket=entry.bucket, entry_id=entry.entry_id)
            )
        seen.add(entry.entry_id)
        if entry.bucket not in running:
            violations.append(
                WalletLedgerViolation(code="unknown_bucket", bucket=entry.bucket, entry_id=entry.entry_id)
            )
            continue
        was = running[entry.bucket]
        running[entry.bucket] = was + entry.amount_fen
        if running[entry.bucket] < 0 <= was:
            violations.append(
                WalletLedgerViolation(
                    code="negative_bucket",
                    bucket=entry.bucket,
                    entry_id=entry.entry_id,
                    params={"balance_fen": running[entry.bucket]},
                )
            )
    for bucket, cached in balances.items():
        if cached != running[bucket]:
            violations.append(
                WalletLedgerViolation(
                    code="balance_mismatch",
                    bucket=bucket,
                    params={"cached_fen": cached, "computed_fen": running[bucket]},
                )
            )
        if cached < 0:
            violations.append(
                WalletLedgerViolation(code="negative_bucket", bucket=bucket, params={"balance_fen": cached})
            )
    return violations
