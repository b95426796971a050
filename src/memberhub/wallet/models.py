"""Stored value (储值) and gift cards (礼品卡).

Each balance is cached on its account row and written in the same transaction as an
append-only movement; CheckConstraints forbid a negative bucket, and `wallet_ledger_check`
proves cached = sum of movements.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Wallet(models.Model):
    member = models.OneToOneField("members.Member", on_delete=models.PROTECT, related_name="wallet")
    principal_fen = models.BigIntegerField(default=0)  # 本金
    bonus_fen = models.BigIntegerField(default=0)  # 赠送金
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(principal_fen__gte=0), name="wallet_principal_not_negative"),
            models.CheckConstraint(condition=Q(bonus_fen__gte=0), name="wallet_bonus_not_negative"),
        ]


class WalletMovement(models.Model):
    """One append-only movement across both buckets; never updated, corrections are new rows."""

    class Kind(models.TextChoices):
        TOPUP = "topup", _("Top-up")
        SPEND = "spend", _("Payment")
        REFUND = "refund", _("Refund")
        MERGE_IN = "merge_in", _("Merged in")
        MERGE_OUT = "merge_out", _("Merged out")

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="movements")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    principal_fen = models.BigIntegerField()  # signed: + credit, - debit
    bonus_fen = models.BigIntegerField()
    principal_after_fen = models.BigIntegerField()
    bonus_after_fen = models.BigIntegerField()
    ref = models.CharField(max_length=120)  # payment ref / order no / refund no
    # a payment's amount as asked (a partial one draws less): a replay of its order number must ask the same
    requested_fen = models.BigIntegerField(null=True, blank=True)
    original = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="refunds")
    rule_id = models.CharField(max_length=40, blank=True)
    channel = models.CharField(max_length=10, blank=True)
    store = models.ForeignKey("stores.Store", null=True, blank=True, on_delete=models.PROTECT)
    actor_label = models.CharField(max_length=150)
    at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["wallet", "kind", "ref"], name="wallet_movement_ref_unique"),
        ]


class TopUpRule(models.Model):
    """充 threshold 送 bonus; the single best rule reached applies."""

    threshold_fen = models.PositiveBigIntegerField()
    bonus_fen = models.PositiveBigIntegerField()
    is_active = models.BooleanField(default=True)
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(threshold_fen__gt=0), name="topup_rule_threshold_positive")]


class WalletConfig(models.Model):
    """The programme's one wallet setting row (pk=1): the draw order at the till."""

    class DrawOrder(models.TextChoices):
        PRINCIPAL_FIRST = "principal_first", _("Principal first")
        BONUS_FIRST = "bonus_first", _("Bonus first")
        PROPORTIONAL = "proportional", _("Proportional")

    draw_order = models.CharField(max_length=20, choices=DrawOrder.choices, default=DrawOrder.PRINCIPAL_FIRST)
    updated_at = models.DateTimeField(auto_now=True)


class GiftCard(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        VOID = "void", _("Void")

    code = models.CharField(max_length=30, unique=True)
    initial_fen = models.PositiveBigIntegerField()
    balance_fen = models.BigIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    member = models.ForeignKey("members.Member", null=True, blank=True, on_delete=models.PROTECT,
                               related_name="gift_cards")
    expires_at = models.DateTimeField(null=True, blank=True)
    issued_at = models.DateTimeField()
    batch_ref = models.CharField(max_length=120, blank=True)
    # keyed HMAC of code and PIN (core.crypto.blind_index); empty for cards issued before PINs
    pin_hash = models.CharField(max_length=64, blank=True)
    pin_failures = models.PositiveIntegerField(default=0)  # refused PINs since the last right one or unlock
    pin_locked_at = models.DateTimeField(null=True, blank=True)  # locked: refuses every PIN until unlocked

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(balance_fen__gte=0), name="gift_card_balance_not_negative"),
        ]
        indexes = [models.Index(fields=["expires_at"], condition=Q(balance_fen__gt=0), name="gift_card_expiring")]


class GiftCardMovement(models.Model):
    class Kind(models.TextChoices):
        ISSUE = "issue", _("Issued")
        SPEND = "spend", _("Payment")
        REFUND = "refund", _("Refund")
        EXPIRE = "expire", _("Expired")

    card = models.ForeignKey(GiftCard, on_delete=models.PROTECT, related_name="movements")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    amount_fen = models.BigIntegerField()
    balance_after_fen = models.BigIntegerField()
    ref = models.CharField(max_length=120)
    requested_fen = models.BigIntegerField(null=True, blank=True)  # as on WalletMovement
    original = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="refunds")
    store = models.ForeignKey("stores.Store", null=True, blank=True, on_delete=models.PROTECT)
    actor_label = models.CharField(max_length=150)
    at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["card", "kind", "ref"], name="gift_card_movement_ref_unique"),
        ]
