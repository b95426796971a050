"""Coupon templates (券模板), issued coupons (券), redemptions, issue batches, rewards catalogue.

Counters that must never overrun (uses left, issued quantity, budget, reward stock) are
changed only by conditional UPDATEs and backed by CheckConstraints.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _


class CouponTemplate(models.Model):
    class Kind(models.TextChoices):
        AMOUNT_OFF = "amount_off", _("Amount off")
        PERCENT_OFF = "percent_off", _("Percent off")
        FREE_ITEM = "free_item", _("Free item")
        FREE_SHIPPING = "free_shipping", _("Free shipping")
        EXCHANGE = "exchange", _("Exchange coupon")

    class ValidityKind(models.TextChoices):
        FIXED = "fixed", _("Fixed dates")
        RELATIVE = "relative", _("Days from issue")

    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    amount_off_fen = models.PositiveIntegerField(default=0)
    percent_off_bp = models.PositiveIntegerField(default=0)
    cap_fen = models.PositiveIntegerField(null=True, blank=True)
    sku = models.CharField(max_length=64, blank=True)
    exchange_price_fen = models.PositiveIntegerField(default=0)
    # conditions (使用条件); empty list = no restriction
    min_spend_fen = models.PositiveIntegerField(default=0)
    include_skus = models.JSONField(default=list, blank=True)
    exclude_skus = models.JSONField(default=list, blank=True)
    include_categories = models.JSONField(default=list, blank=True)
    exclude_categories = models.JSONField(default=list, blank=True)
    store_codes = models.JSONField(default=list, blank=True)
    channels = models.JSONField(default=list, blank=True)
    tiers = models.JSONField(default=list, blank=True)
    first_purchase_only = models.BooleanField(default=False)
    # validity (有效期)
    validity_kind = models.CharField(max_length=10, choices=ValidityKind.choices)
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    valid_days = models.PositiveIntegerField(null=True, blank=True)
    delay_days = models.PositiveIntegerField(default=0)
    whole_days = models.BooleanField(default=True)
    not_after = models.DateTimeField(null=True, blank=True)
    # combination and limits
    stacks_with_coupons = models.BooleanField(default=True)
    stacks_with_tier_discount = models.BooleanField(default=True)
    uses_per_coupon = models.PositiveIntegerField(default=1)
    per_member_limit = models.PositiveIntegerField(null=True, blank=True)
    total_quantity = models.PositiveIntegerField(null=True, blank=True)
    budget_fen = models.PositiveBigIntegerField(null=True, blank=True)
    issued_count = models.PositiveIntegerField(default=0)
    budget_spent_fen = models.BigIntegerField(default=0)
    # ways to obtain one
    points_price = models.PositiveIntegerField(null=True, blank=True)  # 积分兑券
    claim_code = models.CharField(max_length=40, null=True, blank=True, unique=True)  # public 领券码
    issue_rules = models.JSONField(default=list, blank=True)  # [{"event": "member.birthday", "to_tiers": [..]}]
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(total_quantity__isnull=True) | Q(issued_count__lte=F("total_quantity")),
                name="coupon_template_issued_within_quantity",
            ),
            models.CheckConstraint(
                condition=Q(budget_spent_fen__gte=0)
                & (Q(budget_fen__isnull=True) | Q(budget_spent_fen__lte=F("budget_fen"))),
                name="coupon_template_budget_within",
            ),
            models.CheckConstraint(condition=Q(uses_per_coupon__gte=1), name="coupon_template_uses_positive"),
        ]

    def __str__(self) -> str:
        return self.name


class IssueBatch(models.Model):
    """Background bulk issue (to members) or bulk code generation (bearer codes), with progress."""

    class Kind(models.TextChoices):
        MEMBERS = "members", _("To members")
        CODES = "codes", _("Bearer codes")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    template = models.ForeignKey(CouponTemplate, on_delete=models.PROTECT, related_name="batches")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    member_ids = models.JSONField(default=list, blank=True)
    prefix = models.CharField(max_length=10, blank=True)
    code_length = models.PositiveSmallIntegerField(default=10)
    failures = models.JSONField(default=dict, blank=True)  # {reason: count}
    error = models.TextField(blank=True)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)


class Coupon(models.Model):
    class Status(models.TextChoices):
        AVAILABLE = "available", _("Available")
        USED = "used", _("Used")
        REVOKED = "revoked", _("Revoked")
        EXPIRED = "expired", _("Expired")

    class Source(models.TextChoices):
        MANUAL = "manual", _("Issued by staff")
        BULK = "bulk", _("Bulk issue")
        EVENT = "event", _("Event")
        POINTS = "points", _("Exchanged for points")
        CLAIM = "claim", _("Claimed with a code")
        CODE = "code", _("Bearer code")

    template = models.ForeignKey(CouponTemplate, on_delete=models.PROTECT, related_name="coupons")
    code = models.CharField(max_length=30, unique=True)
    member = models.ForeignKey("members.Member", null=True, blank=True, on_delete=models.PROTECT,
                               related_name="coupons")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.AVAILABLE)
    uses_total = models.PositiveIntegerField(default=1)
    uses_left = models.IntegerField(default=1)
    valid_from = models.DateTimeField()
    valid_until = models.DateTimeField(db_index=True)
    issued_at = models.DateTimeField()
    source = models.CharField(max_length=10, choices=Source.choices)
    source_ref = models.CharField(max_length=120, null=True, blank=True)
    batch = models.ForeignKey(IssueBatch, null=True, blank=True, on_delete=models.PROTECT, related_name="coupons")
    revoked_at = models.DateTimeField(null=True, blank=True)
    expiring_notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["member", "template"]), models.Index(fields=["status", "valid_until"])]
        constraints = [
            models.CheckConstraint(condition=Q(uses_left__gte=0), name="coupon_uses_left_not_negative"),
            models.CheckConstraint(condition=Q(uses_left__lte=F("uses_total")), name="coupon_uses_left_within_total"),
            models.UniqueConstraint(fields=["template", "source_ref"], condition=Q(source_ref__isnull=False),
                                    name="coupon_template_source_ref_unique"),
        ]

    def __str__(self) -> str:
        return self.code


class RedemptionQuerySet(models.QuerySet["CouponRedemption"]):
    def live(self) -> RedemptionQuerySet:
        """Redemptions that still stand: not restored, by the old status or a reversal row."""
        return self.filter(status="redeemed", reversal__isnull=True)


class CouponRedemption(models.Model):
    """One use of a coupon on one order, never changed afterwards.

    A restore (退券) appends a ``CouponRedemptionReversal``; a redemption is live while it
    has none. ``status``/``restored_at`` are kept for rows written before reversals existed
    (a legacy ``restored`` row counts as reversed) and are no longer written.
    """

    class Status(models.TextChoices):
        REDEEMED = "redeemed", _("Redeemed")
        RESTORED = "restored", _("Restored")

    coupon = models.ForeignKey(Coupon, on_delete=models.PROTECT, related_name="redemptions")
    template = models.ForeignKey(CouponTemplate, on_delete=models.PROTECT, related_name="redemptions")
    member = models.ForeignKey("members.Member", null=True, blank=True, on_delete=models.PROTECT,
                               related_name="coupon_redemptions")
    channel = models.CharField(max_length=10)
    order_no = models.CharField(max_length=64)
    store = models.ForeignKey("stores.Store", null=True, blank=True, on_delete=models.PROTECT)
    amount_fen = models.PositiveIntegerField()
    shipping_fen = models.PositiveIntegerField(default=0)
    allocations = models.JSONField(default=dict)  # {line_id: fen}
    order_line_ids = models.JSONField(default=list)
    order_sales_fen = models.PositiveBigIntegerField(default=0)  # what the member paid for the goods
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.REDEEMED)

    objects = RedemptionQuerySet.as_manager()
    redeemed_at = models.DateTimeField()
    restored_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["channel", "order_no"])]
        constraints = [
            models.UniqueConstraint(fields=["channel", "order_no", "coupon"], name="coupon_redemption_once_per_order"),
        ]


class CouponRedemptionReversal(models.Model):
    """The reversing record of one redemption (退券): appended, never edited.

    One per redemption (unique), so a replayed or raced restore cannot give a use back twice.
    """

    redemption = models.OneToOneField(CouponRedemption, on_delete=models.PROTECT, related_name="reversal")
    coupon = models.ForeignKey(Coupon, on_delete=models.PROTECT, related_name="reversals")
    template = models.ForeignKey(CouponTemplate, on_delete=models.PROTECT, related_name="reversals")
    channel = models.CharField(max_length=10)
    order_no = models.CharField(max_length=64)
    amount_fen = models.PositiveIntegerField()  # the discount given back to the budget
    reason = models.CharField(max_length=40)
    refund_ref = models.CharField(max_length=120, blank=True)
    actor_label = models.CharField(max_length=150, blank=True)
    at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["channel", "order_no"])]


class Reward(models.Model):
    """积分商城 item: points (or points + cash), stock, limits, tiers, images."""

    class Period(models.TextChoices):
        DAY = "day", _("Day")
        WEEK = "week", _("Week")
        MONTH = "month", _("Month")
        YEAR = "year", _("Year")

    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    images = models.JSONField(default=list, blank=True)  # URLs
    points_price = models.PositiveIntegerField()
    cash_fen = models.PositiveIntegerField(default=0)
    stock_left = models.IntegerField(null=True, blank=True)  # None: unlimited
    per_member_limit = models.PositiveIntegerField(null=True, blank=True)
    period_limit_count = models.PositiveIntegerField(null=True, blank=True)
    period_limit_period = models.CharField(max_length=10, choices=Period.choices, blank=True)
    tiers = models.JSONField(default=list, blank=True)
    available_from = models.DateTimeField(null=True, blank=True)
    available_until = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(stock_left__isnull=True) | Q(stock_left__gte=0),
                                   name="reward_stock_not_negative"),
        ]

    def __str__(self) -> str:
        return self.name


class RewardOrder(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SHIPPED = "shipped", _("Shipped")
        DELIVERED = "delivered", _("Delivered")
        PICKED_UP = "picked_up", _("Picked up")
        CANCELLED = "cancelled", _("Cancelled")

    reward = models.ForeignKey(Reward, on_delete=models.PROTECT, related_name="orders")
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="reward_orders")
    quantity = models.PositiveIntegerField()
    points_total = models.PositiveIntegerField()
    cash_fen_total = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    store = models.ForeignKey("stores.Store", null=True, blank=True, on_delete=models.PROTECT)
    tracking_no = models.CharField(max_length=64, blank=True)
    points_ref = models.CharField(max_length=120, blank=True)  # the points ledger's reference
    created_at = models.DateTimeField(db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["member", "reward", "created_at"])]
