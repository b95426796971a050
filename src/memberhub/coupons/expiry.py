"""The expiry job and the expiring-soon reminder (coupon.expiring)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from memberhub.core import events
from memberhub.coupons.models import Coupon

EXPIRING_DAYS = 3


def coupons_expire(*, now: datetime | None = None) -> int:
    """Mark available coupons past their window as expired (the window already refuses them).
    Not a frozen member's: on unfreeze they are extended by the time frozen instead."""
    now = now or timezone.now()
    return Coupon.objects.filter(status=Coupon.Status.AVAILABLE, valid_until__lte=now) \
        .exclude(member__status="frozen").update(status=Coupon.Status.EXPIRED)


def coupons_expiring_notify(*, now: datetime | None = None, days: int = EXPIRING_DAYS) -> int:
    """Emit one coupon.expiring per member for coupons ending within ``days``; each coupon once."""
    now = now or timezone.now()
    with transaction.atomic():
        rows = list(Coupon.objects.select_for_update().filter(
            status=Coupon.Status.AVAILABLE, member__isnull=False, expiring_notified_at__isnull=True,
            valid_until__gt=now, valid_until__lte=now + timedelta(days=days), uses_left__gte=1,
        ).values_list("pk", "member_id", "code", "valid_until", "template_id"))
        by_member: dict[int, list[dict[str, object]]] = defaultdict(list)
        for pk, member_id, code, until, template_id in rows:
            by_member[member_id].append({"coupon_id": pk, "code": code, "valid_until": until.isoformat(),
                                         "template_id": template_id})
        Coupon.objects.filter(pk__in=[r[0] for r in rows]).update(expiring_notified_at=now)
        for member_id, coupons in by_member.items():
            events.emit(events.COUPON_EXPIRING, member_id=member_id, coupons=coupons)
    return len(rows)
