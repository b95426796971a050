"""One till checkout (收银结账) and its refunds: the receipt as it was answered, kept to replay it.

The money and points themselves live in their own ledgers (purchase, coupon redemptions,
points entries, wallet and gift card movements); these rows tie one order's parts together
and remember what each refund gave back, so that later refunds stay proportional.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class Checkout(models.Model):
    channel = models.CharField(max_length=10)
    order_no = models.CharField(max_length=64)
    member = models.ForeignKey("members.Member", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    store = models.ForeignKey("stores.Store", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    purchase = models.OneToOneField("loyalty.Purchase", on_delete=models.PROTECT, related_name="checkout")
    fingerprint = models.CharField(max_length=64)  # the request, to tell a replay from another order
    coupon_codes = models.JSONField(default=list, blank=True)
    points_redeemed = models.BigIntegerField(default=0)
    points_ref = models.CharField(max_length=120, blank=True)
    wallet_fen = models.BigIntegerField(default=0)
    gift_cards = models.JSONField(default=list, blank=True)  # [{code, amount_fen}]
    paid_fen = models.BigIntegerField()  # recorded on the purchase: after coupons and points
    due_fen = models.BigIntegerField()  # left for cash, bank card, ...
    receipt = models.JSONField()
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel", "order_no"], name="checkout_order_unique"),
            models.CheckConstraint(condition=Q(points_redeemed__gte=0) & Q(wallet_fen__gte=0) & Q(due_fen__gte=0),
                                   name="checkout_amounts_non_negative"),
        ]


class CheckoutRefund(models.Model):
    checkout = models.ForeignKey(Checkout, on_delete=models.PROTECT, related_name="refunds")
    refund_no = models.CharField(max_length=80)
    lines = models.JSONField(default=dict)  # line_id -> fen, as asked (empty: everything left)
    amount_fen = models.BigIntegerField()
    points_returned = models.BigIntegerField(default=0)
    wallet_fen = models.BigIntegerField(default=0)
    gift_cards = models.JSONField(default=dict, blank=True)  # code -> fen given back
    receipt = models.JSONField()
    created_by = models.CharField(max_length=200, blank=True)
    at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["checkout", "refund_no"], name="checkout_refund_no_unique"),
        ]
