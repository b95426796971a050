"""The points ledger, purchases and tiers.

Money is integer fen, points are integers, times are aware. The ledger (`PointsEntry`)
is append-only; `PointsAccount` caches the balance, written in the same transaction as
its entries, and database constraints back every invariant a bug could break.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _


class Programme(models.Model):
    """The operator's configuration (one row, pk=1): earn rules, expiry, redeem, tiers, benefits.

    Stored as JSON validated by `loyalty.programme.ProgrammeConfig`; `version` increases on
    every change so processes can cache the parsed rules.
    """

    config = models.JSONField(default=dict)
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)


class PointsAccount(models.Model):
    """One member's points and tier. `balance` = sum of entries (pending included);
    `pending` = points still in the return window; `debt` = clawback owed outside the ledger."""

    member = models.OneToOneField("members.Member", on_delete=models.PROTECT, related_name="points_account")
    balance = models.BigIntegerField(default=0)
    pending = models.BigIntegerField(default=0)
    debt = models.BigIntegerField(default=0)
    earned_total = models.BigIntegerField(default=0)  # lifetime points earned (for "points" tier criteria)
    tier = models.CharField(max_length=32, default="normal")
    tier_term_ends_at = models.DateTimeField(null=True, blank=True)
    override_tier = models.CharField(max_length=32, null=True, blank=True)
    override_ends_at = models.DateTimeField(null=True, blank=True)
    tier_changed_at = models.DateTimeField(null=True, blank=True)
    # set when the member was merged into another: a till that locked this account while the
    # merge held it finds it closed and goes to the survivor instead
    closed_at = models.DateTimeField(null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(debt__gte=0), name="points_account_debt_non_negative"),
            models.CheckConstraint(condition=Q(pending__gte=0), name="points_account_pending_non_negative"),
            # pending lots are part of the lots, which hold the balance (nothing while overdrawn)
            models.CheckConstraint(condition=Q(pending=0) | Q(pending__lte=F("balance")),
                                   name="points_account_pending_within_balance"),
        ]


class Purchase(models.Model):
    """A purchase in any channel. `member` is null until an anonymous receipt is claimed."""

    class Channel(models.TextChoices):
        ONLINE = "online", _("Online")
        OFFLINE = "offline", _("Offline")

    # Every index is one more page written per purchase (an earn's commit writes each touched
    # B-tree's leaf to the WAL), so none that another index covers or that nothing reads:
    # the member is led by the (member, at) index; external_ref is kept, never looked up.
    member = models.ForeignKey("members.Member", null=True, blank=True, on_delete=models.PROTECT,
                               related_name="purchases", db_index=False)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    order_no = models.CharField(max_length=80)
    store = models.ForeignKey("stores.Store", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()
    total_fen = models.BigIntegerField()  # list total (qty × unit price)
    paid_fen = models.BigIntegerField()  # what the member paid after every discount
    discounts = models.JSONField(default=list, blank=True)
    refunded_fen = models.BigIntegerField(default=0)
    points = models.BigIntegerField(default=0)  # earned at payment (0 while unclaimed)
    clawed_back = models.BigIntegerField(default=0)
    earned = models.BooleanField(default=False)  # points computed and booked (once)
    external_ref = models.CharField(max_length=80, blank=True)  # e.g. cdnow:00001
    recorded_by = models.CharField(max_length=200, blank=True)
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel", "order_no"], name="purchase_channel_order_unique"),
            models.CheckConstraint(condition=Q(paid_fen__gte=0) & Q(total_fen__gte=0), name="purchase_amounts_non_negative"),
            models.CheckConstraint(condition=Q(refunded_fen__gte=0) & Q(refunded_fen__lte=F("paid_fen")),
                                   name="purchase_refund_within_paid"),
            models.CheckConstraint(condition=Q(clawed_back__gte=0) & Q(clawed_back__lte=F("points")),
                                   name="purchase_clawback_within_points"),
        ]
        indexes = [models.Index(fields=["member", "at"])]


class PurchaseLine(models.Model):
    # led by the (purchase, line_id) unique index
    purchase = models.ForeignKey(Purchase, on_delete=models.CASCADE, related_name="lines", db_index=False)
    line_id = models.CharField(max_length=40)
    sku = models.CharField(max_length=64, blank=True)
    category = models.CharField(max_length=64, blank=True)
    qty = models.IntegerField(default=1)
    unit_price_fen = models.BigIntegerField(default=0)
    paid_fen = models.BigIntegerField()
    points = models.BigIntegerField(default=0)
    rounding = models.CharField(max_length=10, default="floor")
    refunded_fen = models.BigIntegerField(default=0)
    clawed_back = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["purchase", "line_id"], name="purchase_line_unique"),
            models.CheckConstraint(condition=Q(refunded_fen__gte=0) & Q(refunded_fen__lte=F("paid_fen")),
                                   name="purchase_line_refund_within_paid"),
            models.CheckConstraint(condition=Q(clawed_back__gte=0) & Q(clawed_back__lte=F("points")),
                                   name="purchase_line_clawback_within_points"),
        ]


class Refund(models.Model):
    purchase = models.ForeignKey(Purchase, on_delete=models.PROTECT, related_name="refunds")
    refund_no = models.CharField(max_length=80)
    at = models.DateTimeField()
    amount_fen = models.BigIntegerField()
    whole = models.BooleanField(default=False)  # the order is now fully refunded
    lines = models.JSONField(default=dict)  # line_id -> fen refunded by this refund
    points = models.BigIntegerField(default=0)  # clawed back
    settlement = models.JSONField(default=dict)  # from_pending / from_balance / into_negative / debt
    recorded_by = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["purchase", "refund_no"], name="refund_no_unique")]


class PointsLot(models.Model):
    """A batch of earned points (积分批次): pending until `available_at`, usable until `expires_at`."""

    account = models.ForeignKey(PointsAccount, on_delete=models.PROTECT, related_name="lots")
    points = models.BigIntegerField()
    remaining = models.BigIntegerField()
    earned_at = models.DateTimeField()
    available_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    pending = models.BooleanField(default=False)
    purchase = models.ForeignKey(Purchase, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    reminded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(points__gt=0), name="points_lot_points_positive"),
            models.CheckConstraint(condition=Q(remaining__gte=0) & Q(remaining__lte=F("points")),
                                   name="points_lot_remaining_in_range"),
        ]
        indexes = [
            models.Index(fields=["account", "expires_at"], condition=Q(remaining__gt=0), name="points_lot_live"),
            models.Index(fields=["expires_at"], condition=Q(remaining__gt=0), name="points_lot_expiring"),
            models.Index(fields=["available_at"], condition=Q(pending=True), name="points_lot_pending"),
        ]


class Hold(models.Model):
    """A two-phase redeem: points are taken at once, then confirmed or given back."""

    class State(models.TextChoices):
        HELD = "held", _("Held")
        CONFIRMED = "confirmed", _("Confirmed")
        RELEASED = "released", _("Released")

    account = models.ForeignKey(PointsAccount, on_delete=models.PROTECT, related_name="holds")
    points = models.BigIntegerField()
    deduction_fen = models.BigIntegerField(default=0)
    reference = models.CharField(max_length=80, blank=True)  # the checkout's order number
    state = models.CharField(max_length=10, choices=State.choices, default=State.HELD)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    settled_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(points__gt=0), name="hold_points_positive")]
        indexes = [models.Index(fields=["state", "expires_at"])]


class Adjustment(models.Model):
    """A manual adjustment; above the threshold it waits for a second staff member."""

    class State(models.TextChoices):
        PENDING = "pending", _("Awaiting approval")
        APPLIED = "applied", _("Applied")
        REJECTED = "rejected", _("Rejected")

    account = models.ForeignKey(PointsAccount, on_delete=models.PROTECT, related_name="adjustments")
    points = models.BigIntegerField()
    reason = models.TextField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    requested_by = models.CharField(max_length=200)
    requested_at = models.DateTimeField()
    decided_by = models.CharField(max_length=200, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=~Q(points=0), name="adjustment_points_non_zero")]


class PointsEntry(models.Model):
    """One movement of points, append-only. Corrections are new entries, never edits."""

    class Kind(models.TextChoices):
        EARN = "earn", _("Earned")
        REDEEM = "redeem", _("Redeemed")
        EXPIRE = "expire", _("Expired")
        ADJUST = "adjust", _("Adjusted")
        REVERSE = "reverse", _("Reversed")
        TRANSFER = "transfer", _("Transferred")  # merging two members

    # Entries are read by account (the two indexes below lead with it) and a hold's entries by
    # hold; the other references are followed from the entry, never searched for, and the rows
    # they point to are never deleted. Unindexed, an earn's commit writes 3 entry B-tree pages
    # instead of 9 (an index takes a row even where the column is NULL).
    account = models.ForeignKey(PointsAccount, on_delete=models.PROTECT, related_name="entries", db_index=False)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    points = models.BigIntegerField()
    at = models.DateTimeField()  # business time: the purchase, the refund, the expiry instant
    lot = models.ForeignKey(PointsLot, null=True, blank=True, on_delete=models.PROTECT, related_name="entries",
                            db_index=False)
    purchase = models.ForeignKey(Purchase, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                 db_index=False)
    refund = models.ForeignKey(Refund, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                               db_index=False)
    hold = models.ForeignKey(Hold, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False)
    adjustment = models.ForeignKey(Adjustment, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                   db_index=False)
    rule = models.CharField(max_length=40, blank=True)  # purchase / action code / refund / hold / ...
    reason = models.TextField(blank=True)
    trace = models.JSONField(default=list, blank=True)
    actor = models.CharField(max_length=200, blank=True)
    reference = models.CharField(max_length=120, blank=True)  # e.g. an action's idempotency reference
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["account", "at"]),
            models.Index(fields=["account", "kind", "rule"]),
            models.Index(fields=["hold"], condition=Q(hold__isnull=False), name="points_entry_hold"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["account", "rule", "reference"], condition=~Q(reference=""),
                                    name="points_entry_reference_unique"),
        ]


class TierChange(models.Model):
    """Every tier decision that changed something, with why."""

    account = models.ForeignKey(PointsAccount, on_delete=models.PROTECT, related_name="tier_changes")
    from_tier = models.CharField(max_length=32)
    to_tier = models.CharField(max_length=32)
    reason = models.CharField(max_length=20)
    explanation = models.JSONField(default=dict)
    term_ends_at = models.DateTimeField(null=True, blank=True)
    actor = models.CharField(max_length=200, blank=True)
    at = models.DateTimeField()
