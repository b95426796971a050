"""Coupon test helpers: templates and coupons made through the real services."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from memberhub.access.principal import system_principal
from memberhub.coupons.issuing import coupon_issue
from memberhub.coupons.models import Coupon, CouponTemplate
from memberhub.coupons.templates import template_create


def template_make(**kw: Any) -> CouponTemplate:
    values: dict[str, Any] = {"name": "满100减20", "kind": "amount_off", "amount_off_fen": 2000,
                              "min_spend_fen": 10000, "validity_kind": "relative", "valid_days": 30}
    values.update(kw)
    return template_create(actor=system_principal("test"), values=values)


def coupon_make(template: CouponTemplate, member_id: int, **kw: Any) -> Coupon:
    [coupon] = coupon_issue(actor=system_principal("test"), template_id=template.pk, member_id=member_id, **kw)
    return coupon


def fixed_window(days_before: int = 1, days_after: int = 30) -> dict[str, Any]:
    now = timezone.now()
    return {"validity_kind": "fixed", "valid_from": now - timedelta(days=days_before),
            "valid_until": now + timedelta(days=days_after)}


def basket(*lines: tuple[str, str, int, int], shipping: int = 0, tier_permille: int = 1000, category: str = "food") -> dict[str, Any]:
    return {"lines": [{"line_id": lid, "sku": sku, "category": category, "unit_price_fen": price, "qty": qty}
                      for lid, sku, price, qty in lines],
            "shipping_fee_fen": shipping, "tier_discount_permille": tier_permille}
