"""The loyalty HTTP API under /api/v1/loyalty: thin, every rule is in the services."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from ninja import File, Query, Router, Schema, Status
from ninja.files import UploadedFile

from memberhub.access import store_scope
from memberhub.core.errors import ApplicationError
from memberhub.core.messages import domain_message
from memberhub.core.pagination import paginate
from memberhub.core.schemas import ERRORS as API_ERRORS
from memberhub.core.schemas import Moment
from memberhub.domain.benefits import BasketLine
from memberhub.domain.errors import DomainError
from memberhub.imports import services as import_jobs
from memberhub.imports.schemas import ImportJobOut
from memberhub.loyalty import jobs, points, programme, purchases, quote, selectors, tiering
from memberhub.loyalty.members import member_resolve
from memberhub.loyalty.models import Adjustment, Hold, Purchase, Refund
from memberhub.loyalty.schemas import (
    ActionIn,
    ActionOut,
    AdjustmentIn,
    AdjustmentOut,
    AsOfOut,
    BulkIn,
    BulkOut,
    DecisionIn,
    DecisionOut,
    EntryPage,
    EvaluateOut,
    ExpiringOut,
    HoldIn,
    HoldOut,
    OverrideIn,
    PointsBalanceOut,
    PointsRedeemIn,
    ProgrammeIn,
    ProgrammeOut,
    ProgressOut,
    PurchaseClaimIn,
    PurchaseIn,
    PurchaseOut,
    PurchaseRefundIn,
    PurchaseRefundOut,
    QuoteIn,
    QuoteOut,
    RedeemOut,
    TierChangeOut,
    ViolationOut,
    WhatIfIn,
    WhatIfOut,
)

router = Router(tags=["loyalty"])
PURCHASE_IMPORTS_URL = "/api/v1/loyalty/purchases/imports"
ERRORS: dict[int, Any] = API_ERRORS


def _actor(request: HttpRequest) -> Any:
    return request.auth  # type: ignore[attr-defined]


def _change(change: Any) -> dict[str, Any] | None:
    if change is None:
        return None
    return {"from_tier": change.from_tier, "to_tier": change.to_tier, "reason": change.reason, "at": change.at,
            "term_ends_at": change.term_ends_at, "explanation": change.explanation}


def _purchase(p: Purchase, *, replayed: bool = False, change: Any = None, lines: list[Any] | None = None,
              store: str | None = None) -> dict[str, Any]:
    """`lines` and `store` as just written spare reading them back."""
    if store is None and p.store_id:
        store = p.store.code if p.store else None
    return {
        "id": p.pk, "member_id": p.member_id, "channel": p.channel, "order_no": p.order_no,
        "store": store, "at": p.at, "total_fen": p.total_fen,
        "paid_fen": p.paid_fen, "refunded_fen": p.refunded_fen, "points": p.points, "replayed": replayed,
        "tier_change": _change(change),
        "lines": [{"line_id": ln.line_id, "sku": ln.sku, "category": ln.category, "qty": ln.qty,
                   "unit_price_fen": ln.unit_price_fen, "paid_fen": ln.paid_fen, "points": ln.points,
                   "refunded_fen": ln.refunded_fen}
                  for ln in (lines if lines is not None else p.lines.all().order_by("pk"))],
    }


def _purchase_input(body: Any) -> purchases.PurchaseInput:
    return purchases.PurchaseInput(
        channel=body.channel, order_no=body.order_no, paid_fen=body.paid_fen, at=body.at, store=body.store,
        member_id=body.member_id, member_key=body.member, discounts=tuple(body.discounts),
        lines=tuple(purchases.LineInput(**line.model_dump()) for line in body.lines),
    )


# --- purchases and refunds ------------------------------------------------------------------

@router.post("/purchases", response={200: PurchaseOut, 201: PurchaseOut, **ERRORS},
             summary="Record a purchase and earn its points (once per channel and order number)")
def purchase_record(request: HttpRequest, body: PurchaseIn) -> Status[dict[str, Any]]:
    result = purchases.purchase_record(actor=_actor(request), data=_purchase_input(body))
    payload = _purchase(result.purchase, replayed=result.replayed, change=result.tier_change, lines=result.lines,
                        store=result.store_code if result.lines is not None else None)
    return Status(200 if result.replayed else 201, payload)


@router.post("/purchases/bulk", response={200: BulkOut, **ERRORS},
             summary="Record up to 1000 purchases; each is accepted or rejected on its own")
def purchase_bulk(request: HttpRequest, body: BulkIn) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    counts = {"created": 0, "replayed": 0, "rejected": 0}
    for index, item in enumerate(body.purchases):
        try:
            data = _purchase_input(item)
            if data.member_id is None and data.member_key:
                # found before the item's transaction: a miss is audited and counted even though
                # the item is rolled back (access/lookup_guard.py)
                found = member_resolve(key=data.member_key, actor=_actor(request))
                data = dataclasses.replace(data, member_id=found.pk, member_key=None)
            with transaction.atomic():
                result = purchases.purchase_record(actor=_actor(request), data=data)
            status = "replayed" if result.replayed else "created"
            items.append({"index": index, "status": status, "purchase_id": result.purchase.pk,
                          "points": result.purchase.points})
        except ApplicationError as exc:
            if exc.status in (401, 403):
                raise
            status = "rejected"
            items.append({"index": index, "status": status, "code": exc.code, "message": str(exc.message)})
        except DomainError as exc:
            status = "rejected"
            items.append({"index": index, "status": status, "code": exc.code, "message": str(domain_message(exc))})
        counts[status] += 1
    return {**counts, "items": items}


@router.post("/purchases/import", response={202: ImportJobOut, **ERRORS},
             summary="Import purchases from CSV or Excel (also CDNOW text) as a background job; idempotent per "
                     "order number")
def purchase_import(request: HttpRequest, file: File[UploadedFile], create_members: bool = False,
                    source: str | None = None) -> Status[dict[str, Any]]:
    job = import_jobs.job_create(actor=_actor(request), kind="orders", fh=file.open("rb"), filename=file.name or "",
                                 size=file.size, options={"create_members": create_members, "source": source})
    return Status(202, import_jobs.job_out(job, PURCHASE_IMPORTS_URL))


@router.get("/purchases/imports/{job_id}", response={200: ImportJobOut, **ERRORS},
            summary="A purchases import's progress and report")
def purchase_import_get(request: HttpRequest, job_id: int) -> dict[str, Any]:
    return import_jobs.job_out(import_jobs.job_get(actor=_actor(request), kind="orders", job_id=job_id),
                               PURCHASE_IMPORTS_URL)


@router.get("/purchases/{int:purchase_id}", response={200: PurchaseOut, **ERRORS}, summary="Read a purchase")
def purchase_get(request: HttpRequest, purchase_id: int) -> dict[str, Any]:
    _actor(request).require("points:read")
    p = Purchase.objects.select_related("store", "member").filter(pk=purchase_id).first()
    if p is None or not store_scope.may_read_record(_actor(request), p.store_id,
                                                      p.member.home_store_id if p.member else None):
        from memberhub.core.errors import NotFound

        raise NotFound(_("No such purchase."), code="purchase_not_found")
    return _purchase(p)


@router.post("/purchases/claim", response={200: PurchaseOut, **ERRORS},
             summary="A member claims an anonymous purchase from the receipt (补登)")
def purchase_claim(request: HttpRequest, body: PurchaseClaimIn) -> dict[str, Any]:
    result = purchases.purchase_claim(actor=_actor(request), channel=body.channel, order_no=body.order_no,
                                      paid_fen=body.paid_fen, member_id=body.member_id, member_key=body.member)
    return _purchase(result.purchase, replayed=result.replayed, change=result.tier_change)


def _refund(r: Refund) -> dict[str, Any]:
    return {"id": r.pk, "purchase_id": r.purchase_id, "refund_no": r.refund_no, "at": r.at, "amount_fen": r.amount_fen,
            "whole": r.whole, "points": r.points, "settlement": r.settlement}


@router.post("/refunds", response={201: PurchaseRefundOut, **ERRORS}, summary="Refund a purchase, whole or by line")
def refund_create(request: HttpRequest, body: PurchaseRefundIn) -> Status[dict[str, Any]]:
    refund = purchases.purchase_refund(actor=_actor(request), data=purchases.RefundInput(**body.model_dump()))
    return Status(201, _refund(refund))


@router.post("/quote", response={200: QuoteOut, **ERRORS},
             summary="Member price, points to earn and benefits for a basket (the till)")
def basket_quote(request: HttpRequest, body: QuoteIn) -> dict[str, Any]:
    basket = [BasketLine(**line.model_dump()) for line in body.lines]
    return quote.basket_quote(actor=_actor(request), basket=basket, member_id=body.member_id,
                              member_key=body.member, at=body.at)


# --- points -----------------------------------------------------------------------------------

@router.get("/members/{member_id}/points", response={200: PointsBalanceOut, **ERRORS}, summary="Points balance")
def points_balance(request: HttpRequest, member_id: int) -> dict[str, Any]:
    return selectors.points_summary(actor=_actor(request), member_id=member_id)


class StatementFilters(Schema):
    kind: Literal["earn", "redeem", "expire", "adjust", "reverse", "transfer"] | None = None
    rule: str | None = None
    at_from: Moment | None = None
    at_to: Moment | None = None
    cursor: str | None = None
    limit: int = 50


@router.get("/members/{member_id}/points/statement", response={200: EntryPage, **ERRORS},
            summary="Points statement, newest first (cursor pagination)")
def points_statement(request: HttpRequest, member_id: int, filters: Query[StatementFilters]) -> dict[str, Any]:
    qs = selectors.statement(actor=_actor(request), member_id=member_id,
                             **filters.model_dump(exclude={"cursor", "limit"}))
    page, next_cursor = paginate(qs, cursor=filters.cursor, limit=filters.limit)
    return {"items": [{"id": e.pk, "kind": e.kind, "points": e.points, "at": e.at, "rule": e.rule, "reason": e.reason,
                       "order_no": e.purchase.order_no if e.purchase_id and e.purchase else None,
                       "lot_id": e.lot_id, "trace": e.trace, "actor": e.actor} for e in page],
            "next_cursor": next_cursor}


@router.get("/members/{member_id}/points/as-of", response={200: AsOfOut, **ERRORS},
            summary="The balance at a past date and time")
def points_as_of(request: HttpRequest, member_id: int, at: Moment) -> dict[str, Any]:
    return selectors.balance_as_of(actor=_actor(request), member_id=member_id, at=at)


@router.get("/members/{member_id}/points/expiring", response={200: list[ExpiringOut], **ERRORS},
            summary="What expires when for one member")
def points_expiring(request: HttpRequest, member_id: int, by: Literal["month", "date"] = "month") -> list[dict[str, Any]]:
    return selectors.expiring_member(actor=_actor(request), member_id=member_id, by=by)


@router.get("/members/{member_id}/points/check", response={200: list[ViolationOut], **ERRORS},
            summary="Ledger invariants of the account (empty list = sound)")
def points_check(request: HttpRequest, member_id: int) -> list[dict[str, Any]]:
    _actor(request).require("audit:read")
    return [{"code": v.code, "message": v.message, "ref": v.ref} for v in selectors.account_check(member_id=member_id,
                                                                                      actor=_actor(request))]


@router.post("/members/{member_id}/actions", response={200: ActionOut, **ERRORS},
             summary="Action points: registration, birthday, profile completed, check-in, review")
def action_award(request: HttpRequest, member_id: int, body: ActionIn) -> dict[str, Any]:
    return points.action_award(actor=_actor(request), member_id=member_id, action=body.action,
                               reference=body.reference, at=body.at)


@router.get("/expiring", response={200: list[ExpiringOut], **ERRORS}, summary="What expires when, whole programme")
def programme_expiring(request: HttpRequest, by: Literal["month", "date"] = "month",
                       until: Moment | None = None) -> list[dict[str, Any]]:
    return selectors.expiring_programme(actor=_actor(request), by=by, until=until)


@router.post("/redeem", response={200: RedeemOut, **ERRORS}, summary="Redeem points at once (cash or reward)")
def points_redeem(request: HttpRequest, body: PointsRedeemIn) -> dict[str, Any]:
    result = points.points_redeem(actor=_actor(request), member_id=body.member_id, member_key=body.member,
                                  points=body.points, order_fen=body.order_fen, reference=body.reference,
                                  reason=body.reason)
    return {"member_id": result.account.member_id, "points": result.points, "deduction_fen": result.deduction_fen,
            "balance": result.account.balance}


def _hold(h: Hold) -> dict[str, Any]:
    from memberhub.loyalty.models import PointsAccount

    member_id = PointsAccount.objects.values_list("member_id", flat=True).get(pk=h.account_id)
    return {"id": h.pk, "member_id": member_id, "points": h.points, "deduction_fen": h.deduction_fen,
            "reference": h.reference, "state": h.state, "expires_at": h.expires_at}


@router.post("/holds", response={201: HoldOut, **ERRORS}, summary="Hold points for a checkout (phase one)")
def hold_create(request: HttpRequest, body: HoldIn) -> Status[dict[str, Any]]:
    hold = points.hold_create(actor=_actor(request), member_id=body.member_id, member_key=body.member,
                              points=body.points, order_fen=body.order_fen, reference=body.reference)
    return Status(201, _hold(hold))


@router.post("/holds/{hold_id}/confirm", response={200: HoldOut, **ERRORS}, summary="Confirm a hold (phase two)")
def hold_confirm(request: HttpRequest, hold_id: int) -> dict[str, Any]:
    return _hold(points.hold_confirm(actor=_actor(request), hold_id=hold_id))


@router.post("/holds/{hold_id}/release", response={200: HoldOut, **ERRORS}, summary="Release a hold: points back")
def hold_release(request: HttpRequest, hold_id: int) -> dict[str, Any]:
    return _hold(points.hold_release(actor=_actor(request), hold_id=hold_id))


def _adjustment(a: Adjustment) -> dict[str, Any]:
    return {"id": a.pk, "member_id": a.account.member_id, "points": a.points, "reason": a.reason, "state": a.state,
            "requested_by": a.requested_by, "requested_at": a.requested_at, "decided_by": a.decided_by,
            "decided_at": a.decided_at}


@router.post("/adjustments", response={201: AdjustmentOut, **ERRORS},
             summary="Manual adjustment; above the threshold it waits for a second staff member")
def adjustment_request(request: HttpRequest, body: AdjustmentIn) -> Status[dict[str, Any]]:
    adj = points.adjustment_request(actor=_actor(request), member_id=body.member_id, member_key=body.member,
                                    points=body.points, reason=body.reason)
    return Status(201, _adjustment(adj))


@router.get("/adjustments", response={200: list[AdjustmentOut], **ERRORS}, summary="Adjustments awaiting approval")
def adjustment_list(request: HttpRequest, state: str = "pending") -> list[dict[str, Any]]:
    _actor(request).require("points:approve")
    mine = store_scope.home_store_filter(_actor(request), "account__member__home_store_id")
    return [_adjustment(a) for a in
            Adjustment.objects.select_related("account").filter(state=state, **mine).order_by("pk")[:500]]


@router.post("/adjustments/{adjustment_id}/approve", response={200: AdjustmentOut, **ERRORS},
             summary="Approve (and apply) an adjustment")
def adjustment_approve(request: HttpRequest, adjustment_id: int, body: DecisionIn) -> dict[str, Any]:
    adj = points.adjustment_decide(actor=_actor(request), adjustment_id=adjustment_id, approve=True, reason=body.reason)
    return _adjustment(adj)


@router.post("/adjustments/{adjustment_id}/reject", response={200: AdjustmentOut, **ERRORS},
             summary="Reject an adjustment")
def adjustment_reject(request: HttpRequest, adjustment_id: int, body: DecisionIn) -> dict[str, Any]:
    adj = points.adjustment_decide(actor=_actor(request), adjustment_id=adjustment_id, approve=False, reason=body.reason)
    return _adjustment(adj)


# --- tiers ------------------------------------------------------------------------------------

@router.get("/members/{member_id}/tier", response={200: ProgressOut, **ERRORS},
            summary="Tier and progress: what is missing to reach the next tier or keep this one")
def tier_progress(request: HttpRequest, member_id: int) -> dict[str, Any]:
    return tiering.tier_progress_get(actor=_actor(request), member_id=member_id)


@router.get("/members/{member_id}/tier/history", response={200: list[TierChangeOut], **ERRORS},
            summary="Tier changes with their reasons")
def tier_history(request: HttpRequest, member_id: int) -> list[dict[str, Any]]:
    return [_change(c) for c in tiering.tier_history(actor=_actor(request), member_id=member_id)]  # type: ignore[misc]


@router.post("/members/{member_id}/tier/override", response={200: ProgressOut, **ERRORS},
             summary="Set or remove a manual tier until an end date")
def tier_override(request: HttpRequest, member_id: int, body: OverrideIn) -> dict[str, Any]:
    tiering.tier_override(actor=_actor(request), member_id=member_id, tier=body.tier, ends_at=body.ends_at,
                          reason=body.reason)
    return tiering.tier_progress_get(actor=_actor(request), member_id=member_id)


@router.post("/members/{member_id}/tier/evaluate", response={200: DecisionOut, **ERRORS},
             summary="Evaluate one member's tier now (as the nightly run would)")
def tier_evaluate(request: HttpRequest, member_id: int) -> dict[str, Any]:
    d = tiering.tier_evaluate_member(actor=_actor(request), member_id=member_id)
    return {"tier": d.tier, "previous_tier": d.previous_tier, "reason": d.reason.value,
            "term_ends_at": d.term_ends_at, "explanation": d.explanation}


@router.post("/tiers/evaluate", response={200: EvaluateOut, **ERRORS}, summary="Run the periodic tier evaluation now")
def tiers_evaluate(request: HttpRequest) -> dict[str, Any]:
    _actor(request).require("programme:manage")
    return {"counts": jobs.tiers_evaluate_all(actor=_actor(request))}


@router.post("/tiers/what-if", response={200: WhatIfOut, **ERRORS},
             summary="Evaluate a proposed ladder on the real purchase history, without applying it")
def tiers_whatif(request: HttpRequest, body: WhatIfIn) -> dict[str, Any]:
    return tiering.tier_whatif_run(actor=_actor(request), config=body.config, at=body.at)


# --- programme --------------------------------------------------------------------------------

@router.get("/programme", response={200: ProgrammeOut, **ERRORS}, summary="The programme configuration")
def programme_get(request: HttpRequest) -> dict[str, Any]:
    return programme.programme_get(actor=_actor(request))


@router.put("/programme", response={200: ProgrammeOut, **ERRORS},
            summary="Replace the programme configuration (audited)")
def programme_update(request: HttpRequest, body: ProgrammeIn) -> dict[str, Any]:
    programme.programme_update(actor=_actor(request), config=body.config, reason=body.reason,
                               expected_version=body.expected_version)
    rules = programme.rules_current()
    return {"version": rules.version, "config": rules.config}
