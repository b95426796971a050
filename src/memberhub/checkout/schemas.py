"""Request and answer shapes of /api/v1/checkout."""

from __future__ import annotations

from typing import Any, Literal

from ninja import Schema
from pydantic import Field

from memberhub.core.schemas import Fen, Id, Int, Moment, Points, PositiveFen, StrictSchema


class CheckoutLineIn(StrictSchema):
    line_id: str = Field(min_length=1, max_length=40)
    sku: str = Field(min_length=1, max_length=64)
    category: str = Field(default="", max_length=64)
    qty: Int = Field(default=1, ge=1, le=100_000)
    unit_price_fen: Fen


class GiftCardIn(StrictSchema):
    code: str = Field(min_length=1, max_length=30)
    amount_fen: PositiveFen
    pin: str | None = Field(default=None, max_length=12)


class CheckoutIn(StrictSchema):
    member_id: Id | None = None
    member: str | None = Field(default=None, max_length=40, description="phone, card code or member number")
    channel: Literal["online", "offline"]
    store: str | None = Field(default=None, max_length=20)
    order_no: str = Field(min_length=1, max_length=64)
    at: Moment | None = None
    lines: list[CheckoutLineIn] = Field(min_length=1, max_length=200)
    coupon_codes: list[str] = Field(default_factory=list, max_length=20)
    points: Points = Field(default=0, description="points to redeem as cash (the programme's redeem policy)")
    wallet_fen: Fen = 0
    gift_cards: list[GiftCardIn] = Field(default_factory=list, max_length=5)


class CheckoutRefundIn(StrictSchema):
    channel: Literal["online", "offline"]
    order_no: str = Field(min_length=1, max_length=64)
    refund_no: str = Field(min_length=1, max_length=80)
    lines: dict[str, Fen] | None = Field(default=None, description="line_id → paid fen refunded; omit: everything left")
    reason: str = Field(default="", max_length=1000)


class ReceiptOut(Schema):
    """The receipt; amounts in fen. `due_fen` is what is left for cash or bank card."""

    order_no: str
    channel: str
    store: str | None
    at: str
    member_id: int | None
    tier: str | None
    purchase_id: int
    lines: list[dict[str, Any]]
    gross_fen: int
    tier_discount_fen: int
    member_price_fen: int
    coupon_discount_fen: int
    coupons: list[dict[str, Any]]
    payable_fen: int
    points: dict[str, Any]
    paid_fen: int
    wallet: dict[str, Any] | None
    gift_cards: list[dict[str, Any]]
    due_fen: int
    tier_change: dict[str, Any] | None
    replayed: bool


class CheckoutRefundOut(Schema):
    order_no: str
    channel: str
    refund_no: str
    amount_fen: int
    lines: dict[str, int]
    whole: bool
    points_clawed_back: int
    points_settlement: dict[str, Any]
    points_returned: int
    coupons: list[dict[str, Any]]
    wallet: dict[str, Any] | None
    gift_cards: list[dict[str, Any]]
    due_fen: int
    at: str
    replayed: bool
