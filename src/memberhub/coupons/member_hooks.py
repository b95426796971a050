"""Members hooks: coupons and reward orders follow a merge, die with an erasure, show in an export."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import F
from django.utils import timezone

from memberhub.coupons.models import Coupon, CouponRedemption, RewardOrder
from memberhub.domain.member_status import frozen_extension


def coupons_member_merge(survivor: Any, absorbed: Any, actor: Any) -> None:
    """The absorbed member's coupons, redemptions and reward orders now belong to the survivor."""
    Coupon.objects.filter(member=absorbed).update(member=survivor)
    CouponRedemption.objects.filter(member=absorbed).update(member=survivor)
    RewardOrder.objects.filter(member=absorbed).update(member=survivor)


def coupons_member_unfreeze(member: Any, frozen_at: datetime, unfrozen_at: datetime, actor: Any) -> dict[str, int]:
    """On unfreeze: the member's coupons still usable when frozen (the expiry job leaves a
    frozen member's coupons available) end the time frozen later."""
    delta = frozen_extension(frozen_at=frozen_at, unfrozen_at=unfrozen_at)
    if not delta:
        return {}
    moved = Coupon.objects.filter(member=member, status=Coupon.Status.AVAILABLE, valid_until__gt=frozen_at) \
        .update(valid_until=F("valid_until") + delta)
    return {"coupons_extended": moved}


def coupons_member_erase(member: Any, actor: Any) -> None:
    """An erased member can no longer use coupons; the records stay for the accounts."""
    Coupon.objects.filter(member=member, status=Coupon.Status.AVAILABLE).update(
        status=Coupon.Status.REVOKED, revoked_at=timezone.now())


def coupons_member_export(member: Any) -> dict[str, Any]:
    return {
        "coupons": [
            {"code": c.code, "template": c.template.name, "status": c.status, "uses_left": c.uses_left,
             "valid_from": c.valid_from.isoformat(), "valid_until": c.valid_until.isoformat(),
             "issued_at": c.issued_at.isoformat(), "source": c.source}
            for c in Coupon.objects.filter(member=member).select_related("template").order_by("pk")
        ],
        "reward_orders": [
            {"reward": o.reward.name, "quantity": o.quantity, "points": o.points_total, "cash_fen": o.cash_fen_total,
             "status": o.status, "created_at": o.created_at.isoformat()}
            for o in RewardOrder.objects.filter(member=member).select_related("reward").order_by("pk")
        ],
    }
