"""/api/v1/checkout: the till's one-call checkout and its refund.

Capabilities: purchases:write, plus coupons:redeem / points:redeem / wallet:spend when the
request uses coupons / points / stored value or gift cards. `Idempotency-Key` is honoured
(middleware); the same (channel, order_no) or refund number again answers the first receipt.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router, Status

from memberhub.checkout import services
from memberhub.checkout.schemas import CheckoutIn, CheckoutRefundIn, CheckoutRefundOut, ReceiptOut
from memberhub.core.schemas import ERRORS as API_ERRORS

router = Router(tags=["checkout"])
ERRORS: dict[int, Any] = API_ERRORS


@router.post("", response={200: ReceiptOut, 201: ReceiptOut, **ERRORS},
             summary="Check out a basket: coupons, points, stored value, gift cards and the purchase at once")
def checkout(request: HttpRequest, body: CheckoutIn) -> Status[Any]:
    data = services.CheckoutInput(
        channel=body.channel, order_no=body.order_no, store=body.store, member_id=body.member_id,
        member_key=body.member, at=body.at, coupon_codes=tuple(body.coupon_codes), points=body.points,
        wallet_fen=body.wallet_fen,
        lines=tuple(services.BasketLine(line_id=ln.line_id, sku=ln.sku, unit_price_fen=ln.unit_price_fen, qty=ln.qty,
                                        category=ln.category) for ln in body.lines),
        gift_cards=tuple(services.GiftCardTender(code=g.code, amount_fen=g.amount_fen, pin=g.pin)
                         for g in body.gift_cards))
    receipt = services.checkout_create(actor=request.auth, data=data)  # type: ignore[attr-defined]
    return Status(200 if receipt["replayed"] else 201, receipt)


@router.post("/refund", response={200: CheckoutRefundOut, 201: CheckoutRefundOut, **ERRORS},
             summary="Refund a checkout in whole or by line: points, coupons, stored value and gift cards")
def checkout_refund(request: HttpRequest, body: CheckoutRefundIn) -> Status[Any]:
    data = services.CheckoutRefundInput(channel=body.channel, order_no=body.order_no, refund_no=body.refund_no,
                                        lines=body.lines, reason=body.reason)
    receipt = services.checkout_refund(actor=request.auth, data=data)  # type: ignore[attr-defined]
    return Status(200 if receipt["replayed"] else 201, receipt)
