"""Reads: coupons of a member, templates, batches, per-template statistics."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Count, F, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from memberhub.access.principal import Principal
from memberhub.access.roles import Cap
from memberhub.core.errors import NotFound
from memberhub.coupons.models import Coupon, CouponRedemption, CouponTemplate, IssueBatch
from memberhub.domain.coupon_codes import code_normalize


def coupon_list(*, actor: Principal, member_id: int | None = None, template_id: int | None = None,
                status: str | None = None) -> QuerySet[Coupon]:
    actor.require(Cap.COUPONS_READ)
    qs = Coupon.objects.select_related("template")
    if actor.store_ids is not None:
        qs = qs.filter(member__home_store_id__in=actor.store_ids)
    if member_id is not None:
        qs = qs.filter(member_id=member_id)
    if template_id is not None:
        qs = qs.filter(template_id=template_id)
    if status == "expired":
        qs = qs.filter(Q(status=Coupon.Status.EXPIRED) | Q(status=Coupon.Status.AVAILABLE,
                                                           valid_until__lte=timezone.now()))
    elif status == Coupon.Status.AVAILABLE:
        qs = qs.filter(status=status, valid_until__gt=timezone.now())
    elif status:
        qs = qs.filter(status=status)
    return qs


def coupon_by_code(*, actor: Principal, code: str) -> Coupon:
    actor.require(Cap.COUPONS_READ)
    coupon = Coupon.objects.select_related("template", "member").filter(code=code_normalize(code)).first()
    if coupon is None or (coupon.member is not None and not actor.sees_store(coupon.member.home_store_id)):
        raise NotFound(_("No coupon has this code."), code="coupon_not_found")
    return coupon


def template_list(*, actor: Principal, active: bool | None = None) -> QuerySet[CouponTemplate]:
    actor.require(Cap.COUPONS_READ)
    qs = CouponTemplate.objects.all()
    return qs if active is None else qs.filter(is_active=active)


def batch_get(*, actor: Principal, batch_id: int) -> IssueBatch:
    actor.require(Cap.COUPONS_READ)
    batch = IssueBatch.objects.filter(pk=batch_id).first()
    if batch is None or not _batch_in_scope(actor, batch):
        raise NotFound(_("No such batch."), code="batch_not_found")
    return batch


def _batch_in_scope(actor: Principal, batch: IssueBatch) -> bool:
    """Bearer codes are the chain's, never shown to a store-scoped caller (its codes could be
    redeemed anywhere); a batch to members is shown when every member is of its stores."""
    if actor.store_ids is None:
        return True
    if batch.kind != IssueBatch.Kind.MEMBERS:
        return False
    from memberhub.members.models import Member

    ids = set(batch.member_ids or [])
    return Member.objects.filter(pk__in=ids, home_store_id__in=actor.store_ids).count() == len(ids)


def template_stats(*, actor: Principal, template_id: int, now: datetime | None = None) -> dict[str, Any]:
    """Issued, redeemed, expired, redemption rate, discount given and sales made with the coupon."""
    actor.require(Cap.COUPONS_READ)
    now = now or timezone.now()
    template = CouponTemplate.objects.filter(pk=template_id).first()
    if template is None:
        raise NotFound(_("No such coupon template."), code="coupon_template_not_found")
    coupons = Coupon.objects.filter(template=template).aggregate(
        issued=Count("pk"),
        used_once=Count("pk", filter=Q(uses_left__lt=F("uses_total"))),
        expired=Count("pk", filter=Q(status=Coupon.Status.EXPIRED)
                      | Q(status=Coupon.Status.AVAILABLE, valid_until__lte=now)),
        revoked=Count("pk", filter=Q(status=Coupon.Status.REVOKED)),
    )
    live = CouponRedemption.objects.live().filter(template=template)
    agg = live.aggregate(redemptions=Count("pk"), discount=Sum("amount_fen"), orders=Count("order_no", distinct=True))
    # sales: each order counted once even when two coupons of this template were used on it
    sales = sum({(ch, no): fen for ch, no, fen in live.values_list("channel", "order_no", "order_sales_fen")}.values())
    issued = coupons["issued"]
    return {
        "template_id": template.pk, "name": template.name, "issued": issued, "redeemed": coupons["used_once"],
        "redemptions": agg["redemptions"], "expired": coupons["expired"], "revoked": coupons["revoked"],
        "redemption_rate": round(coupons["used_once"] / issued, 4) if issued else 0.0,
        "discount_fen": agg["discount"] or 0, "orders": agg["orders"], "sales_fen": sales,
        "budget_fen": template.budget_fen, "budget_spent_fen": template.budget_spent_fen,
    }



def audience_member_ids(
    *, actor: Principal, rfm_segment: str | None = None, stage: str | None = None,
    min_clv_fen: int | None = None, min_p_alive: float | None = None, **register_filters: Any,
) -> list[int]:
    """Members of a segment: register filters (store, registration dates, birth month, status)
    and, when given, the current RFM segment and CLV snapshot (stage, CLV, P(alive))."""
    from memberhub.analytics.selectors import snapshot_list
    from memberhub.members.selectors import member_list

    qs = member_list(actor=actor, **register_filters)
    if rfm_segment:
        qs = qs.filter(pk__in=snapshot_list(actor=actor, kind="rfm", segment=rfm_segment).values("member_id"))
    if stage or min_clv_fen is not None or min_p_alive is not None:
        clv = snapshot_list(actor=actor, kind="clv", stage=stage, min_clv_fen=min_clv_fen, min_p_alive=min_p_alive)
        qs = qs.filter(pk__in=clv.values("member_id"))
    return list(qs.values_list("pk", flat=True))
