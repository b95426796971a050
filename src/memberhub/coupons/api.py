"""/api/v1/coupons: templates, issuing, batches, claim, validate / redeem / restore, statistics."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from ninja import Query, Router, Schema, Status

from memberhub.core.errors import ValidationFailed
from memberhub.core.pagination import paginate
from memberhub.core.schemas import ERRORS as API_ERRORS
from memberhub.coupons import checkout, issuing, selectors, templates
from memberhub.coupons.models import IssueBatch
from memberhub.coupons.schemas import (
    BatchOut,
    BulkIssueIn,
    CodesIn,
    CouponClaimIn,
    CouponExchangeIn,
    CouponOut,
    CouponPage,
    CouponRedeemIn,
    IssueIn,
    RestoreIn,
    RevokeIn,
    TemplateIn,
    TemplateOut,
    TemplatePage,
    TemplatePatch,
    ValidateIn,
)
from memberhub.stores.selectors import store_for_actor

router = Router(tags=["coupons"])
ERRORS: dict[int, Any] = API_ERRORS


def _store_id(request: HttpRequest, code: str | None) -> int | None:
    # a store-scoped cashier validates and redeems only at their own stores
    return store_for_actor(actor=request.auth, code=code).pk if code is not None else None  # type: ignore[attr-defined]


def _basket(body: Any) -> checkout.BasketIn:
    b = body.basket
    return checkout.BasketIn(lines=tuple(checkout.LineIn(**ln.model_dump()) for ln in b.lines),
                             shipping_fee_fen=b.shipping_fee_fen, tier_discount_permille=b.tier_discount_permille)


class TemplateFilters(Schema):
    active: bool | None = None
    cursor: str | None = None
    limit: int = 50


class CouponFilters(Schema):
    member_id: int | None = None
    template_id: int | None = None
    status: str | None = None
    cursor: str | None = None
    limit: int = 50


@router.post("/templates", response={201: TemplateOut, **ERRORS}, summary="Create a coupon template (券模板)")
def template_create(request: HttpRequest, body: TemplateIn) -> Status[Any]:
    return Status(201, templates.template_create(actor=request.auth, values=body.model_dump()))  # type: ignore[attr-defined]


@router.get("/templates", response={200: TemplatePage, **ERRORS}, summary="List coupon templates")
def template_list(request: HttpRequest, filters: Query[TemplateFilters]) -> dict[str, Any]:
    qs = selectors.template_list(actor=request.auth, active=filters.active)  # type: ignore[attr-defined]
    page, next_cursor = paginate(qs, cursor=filters.cursor, limit=filters.limit)
    return {"items": page, "next_cursor": next_cursor}


@router.get("/templates/{template_id}", response={200: TemplateOut, **ERRORS}, summary="Read a coupon template")
def template_get(request: HttpRequest, template_id: int) -> Any:
    selectors.template_list(actor=request.auth)  # type: ignore[attr-defined]
    return templates.template_get(template_id=template_id)


@router.patch("/templates/{template_id}", response={200: TemplateOut, **ERRORS}, summary="Change a coupon template")
def template_update(request: HttpRequest, template_id: int, body: TemplatePatch) -> Any:
    nullable = {"total_quantity", "budget_fen", "per_member_limit", "points_price", "claim_code", "not_after"}
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None or k in nullable}
    return templates.template_update(actor=request.auth, template_id=template_id, changes=changes)  # type: ignore[attr-defined]


@router.get("/templates/{template_id}/stats", response={200: dict, **ERRORS}, summary="Template statistics")
def template_stats(request: HttpRequest, template_id: int) -> dict[str, Any]:
    return selectors.template_stats(actor=request.auth, template_id=template_id)  # type: ignore[attr-defined]


@router.post("/templates/{template_id}/issue", response={201: list[CouponOut], **ERRORS}, summary="Issue to one member")
def coupon_issue(request: HttpRequest, template_id: int, body: IssueIn) -> Status[Any]:
    coupons = issuing.coupon_issue(actor=request.auth, template_id=template_id, member_id=body.member_id,  # type: ignore[attr-defined]
                                   quantity=body.quantity, reason=body.reason)
    return Status(201, [selectors.coupon_by_code(actor=request.auth, code=c.code) for c in coupons])  # type: ignore[attr-defined]


@router.post("/templates/{template_id}/issue-bulk", response={202: BatchOut, **ERRORS},
             summary="Issue to a list or a segment of members, in the background")
def coupon_issue_bulk(request: HttpRequest, template_id: int, body: BulkIssueIn) -> Status[Any]:
    if (body.member_ids is None) == (body.segment is None):
        raise ValidationFailed(_("Give either member_ids or a segment."), code="audience_required")
    ids = body.member_ids
    if body.segment is not None:
        ids = selectors.audience_member_ids(actor=request.auth, **body.segment.model_dump())  # type: ignore[attr-defined]
    batch = issuing.batch_create(actor=request.auth, template_id=template_id, kind=IssueBatch.Kind.MEMBERS,  # type: ignore[attr-defined]
                                 member_ids=ids)
    batch.refresh_from_db()
    return Status(202, batch)


@router.post("/templates/{template_id}/codes", response={202: BatchOut, **ERRORS},
             summary="Generate bearer coupon codes in bulk, in the background")
def coupon_codes(request: HttpRequest, template_id: int, body: CodesIn) -> Status[Any]:
    batch = issuing.batch_create(actor=request.auth, template_id=template_id, kind=IssueBatch.Kind.CODES,  # type: ignore[attr-defined]
                                 count=body.count, prefix=body.prefix, length=body.length)
    batch.refresh_from_db()
    return Status(202, batch)


@router.post("/templates/{template_id}/exchange", response={201: CouponOut, **ERRORS},
             summary="Exchange points for a coupon (积分兑券)")
def coupon_exchange(request: HttpRequest, template_id: int, body: CouponExchangeIn) -> Status[Any]:
    coupon = issuing.coupon_exchange_for_points(actor=request.auth, template_id=template_id, member_id=body.member_id)  # type: ignore[attr-defined]
    return Status(201, coupon)


@router.get("/batches/{batch_id}", response={200: BatchOut, **ERRORS}, summary="Progress of a bulk issue")
def batch_get(request: HttpRequest, batch_id: int) -> Any:
    return selectors.batch_get(actor=request.auth, batch_id=batch_id)  # type: ignore[attr-defined]


@router.get("/batches/{batch_id}/coupons", response={200: CouponPage, **ERRORS}, summary="Coupons made by a batch")
def batch_coupons(request: HttpRequest, batch_id: int, cursor: str | None = None, limit: int = 200) -> dict[str, Any]:
    batch = selectors.batch_get(actor=request.auth, batch_id=batch_id)  # type: ignore[attr-defined]
    page, next_cursor = paginate(batch.coupons.select_related("template"), cursor=cursor, limit=limit)
    return {"items": page, "next_cursor": next_cursor}


@router.post("/claim", response={201: CouponOut, **ERRORS}, summary="Claim a coupon with a code (领券)")
def coupon_claim(request: HttpRequest, body: CouponClaimIn) -> Status[Any]:
    return Status(201, issuing.coupon_claim(actor=request.auth, code=body.code, member_id=body.member_id))  # type: ignore[attr-defined]


@router.post("/validate", response={200: dict, **ERRORS}, summary="Price a basket with coupons, or say why not")
def coupons_validate(request: HttpRequest, body: ValidateIn) -> dict[str, Any]:
    return checkout.coupons_validate(actor=request.auth, member_id=body.member_id, codes=body.codes,  # type: ignore[attr-defined]
                                     basket=_basket(body), channel=body.channel, store_id=_store_id(request, body.store),
                                     best=body.best)


@router.post("/redeem", response={200: dict, **ERRORS}, summary="Redeem coupons on an order (核销)")
def coupons_redeem(request: HttpRequest, body: CouponRedeemIn) -> dict[str, Any]:
    return checkout.coupons_redeem_for_order(actor=request.auth, member_id=body.member_id, codes=body.codes,  # type: ignore[attr-defined]
                                             basket=_basket(body), channel=body.channel,
                                             store_id=_store_id(request, body.store), order_no=body.order_no)


@router.post("/restore", response={200: dict, **ERRORS}, summary="Give coupons back after a refund (退券)")
def coupons_restore(request: HttpRequest, body: RestoreIn) -> dict[str, Any]:
    return {"coupons": checkout.coupons_restore_for_refund(
        actor=request.auth, channel=body.channel, order_no=body.order_no,  # type: ignore[attr-defined]
        refunded_line_ids=body.refunded_line_ids, now=timezone.now())}


@router.get("", response={200: CouponPage, **ERRORS}, summary="List coupons (by member, template, status)")
def coupon_list(request: HttpRequest, filters: Query[CouponFilters]) -> dict[str, Any]:
    qs = selectors.coupon_list(actor=request.auth, **filters.model_dump(exclude={"cursor", "limit"}))  # type: ignore[attr-defined]
    page, next_cursor = paginate(qs, cursor=filters.cursor, limit=filters.limit)
    return {"items": page, "next_cursor": next_cursor}


@router.get("/code/{code}", response={200: CouponOut, **ERRORS}, summary="Look a coupon up by its code")
def coupon_by_code(request: HttpRequest, code: str) -> Any:
    return selectors.coupon_by_code(actor=request.auth, code=code)  # type: ignore[attr-defined]


@router.post("/{coupon_id}/revoke", response={200: CouponOut, **ERRORS}, summary="Revoke a coupon (作废)")
def coupon_revoke(request: HttpRequest, coupon_id: int, body: RevokeIn) -> Any:
    issuing.coupon_revoke(actor=request.auth, coupon_id=coupon_id, reason=body.reason)  # type: ignore[attr-defined]
    return selectors.coupon_list(actor=request.auth).get(pk=coupon_id)  # type: ignore[attr-defined]
