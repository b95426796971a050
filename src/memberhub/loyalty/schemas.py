from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from ninja import Schema
from pydantic import ConfigDict, Field, model_validator

from memberhub.core.schemas import (
    Fen,
    Id,
    Int,
    Moment,
    PlainOut,
    PositivePoints,
    Qty,
    SignedPoints,
    StrictSchema,
)
from memberhub.loyalty.programme import ProgrammeConfig


class MemberRef(StrictSchema):
    """Name the member by `member_id`, or by `member`: a phone (any format), card code or member number."""

    # documented as well as checked, so a client working from the OpenAPI document names one
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "anyOf": [{"required": ["member_id"], "properties": {"member_id": {"type": "integer"}}},
                  {"required": ["member"], "properties": {"member": {"type": "string"}}}]})

    member_id: Id | None = None
    member: str | None = Field(default=None, min_length=1, max_length=40)

    @model_validator(mode="after")
    def _one(self) -> MemberRef:
        if self.member_id is None and not self.member:
            raise ValueError("name the member by member_id or member")
        return self


class PurchaseLineIn(StrictSchema):
    line_id: str | None = Field(default=None, max_length=40)
    sku: str = Field(default="", max_length=64)
    category: str = Field(default="", max_length=64)
    qty: Qty = 1
    unit_price_fen: Fen | None = None
    paid_fen: Fen = Field(description="paid for the line after every discount (实付, fen)")


class PurchaseIn(StrictSchema):
    member_id: Id | None = None
    member: str | None = Field(default=None, max_length=40, description="phone, card code or member number")
    channel: Literal["online", "offline"]
    order_no: str = Field(min_length=1, max_length=80)
    store: str | None = Field(default=None, max_length=32, description="store code")
    at: Moment | None = None
    paid_fen: Fen = Field(description="total paid (fen)")
    lines: list[PurchaseLineIn] = Field(default_factory=list, max_length=500)
    discounts: list[dict[str, Any]] = Field(default_factory=list, max_length=50)


class LineOut(PlainOut):
    line_id: str
    sku: str
    category: str
    qty: int
    unit_price_fen: int
    paid_fen: int
    points: int
    refunded_fen: int


class TierChangeOut(PlainOut):
    from_tier: str
    to_tier: str
    reason: str
    at: datetime
    term_ends_at: datetime | None = None
    explanation: dict[str, Any] = {}


class PurchaseOut(PlainOut):
    id: int
    member_id: int | None
    channel: str
    order_no: str
    store: str | None
    at: datetime
    total_fen: int
    paid_fen: int
    refunded_fen: int
    points: int
    replayed: bool = False
    tier_change: TierChangeOut | None = None
    lines: list[LineOut] = []


class BulkIn(StrictSchema):
    purchases: list[PurchaseIn] = Field(min_length=1, max_length=1000)


class BulkItemOut(Schema):
    index: int
    status: Literal["created", "replayed", "rejected"]
    purchase_id: int | None = None
    points: int | None = None
    code: str | None = None
    message: str | None = None


class BulkOut(Schema):
    created: int
    replayed: int
    rejected: int
    items: list[BulkItemOut]


class PurchaseRefundIn(StrictSchema):
    channel: Literal["online", "offline"]
    order_no: str = Field(min_length=1, max_length=80)
    refund_no: str = Field(min_length=1, max_length=80)
    lines: dict[str, Fen] | None = Field(default=None, description="line_id → fen refunded; omit for the whole order")
    at: Moment | None = None
    reason: str = Field(default="", max_length=1000)


class PurchaseRefundOut(Schema):
    id: int
    purchase_id: int
    refund_no: str
    at: datetime
    amount_fen: int
    whole: bool
    points: int
    settlement: dict[str, int]


class PurchaseClaimIn(MemberRef):
    channel: Literal["online", "offline"]
    order_no: str = Field(min_length=1, max_length=80)
    paid_fen: Fen = Field(description="the amount on the receipt, as proof")


class BasketLineIn(StrictSchema):
    line_id: str = Field(min_length=1, max_length=40)
    sku: str = Field(default="", max_length=64)
    category: str = Field(default="", max_length=64)
    qty: Qty
    unit_price_fen: Fen


class QuoteIn(MemberRef):
    lines: list[BasketLineIn] = Field(min_length=1, max_length=500)
    at: Moment | None = None


class QuoteLineOut(Schema):
    line_id: str
    list_fen: int
    member_fen: int
    discount_fen: int
    discounted: bool


class QuoteOut(Schema):
    member_id: int
    tier: str
    tier_name: str
    list_fen: int
    member_fen: int
    discount_fen: int
    lines: list[QuoteLineOut]
    points: int
    trace: list[dict[str, Any]]
    benefits: list[str]
    free_shipping: bool
    priority_service: bool
    redeem_max_points: int
    redeem_max_deduction_fen: int


class PointsBalanceOut(Schema):
    member_id: int
    balance: int = Field(description="sum of the ledger (pending included, expired excluded)")
    available: int
    pending: int
    held: int
    debt: int
    earned_total: int
    tier: str
    tier_name: str
    tier_term_ends_at: datetime | None
    override_tier: str | None
    override_ends_at: datetime | None


class EntryOut(Schema):
    id: int
    kind: str
    points: int
    at: datetime
    rule: str
    reason: str
    order_no: str | None
    lot_id: int | None
    trace: list[dict[str, Any]]
    actor: str


class EntryPage(Schema):
    items: list[EntryOut]
    next_cursor: str | None


class AsOfOut(Schema):
    member_id: int
    at: datetime
    balance: int


class ExpiringOut(Schema):
    period: date
    points: int
    lots: int | None = None


class PointsRedeemIn(MemberRef):
    points: PositivePoints
    order_fen: Fen | None = Field(default=None, description="payable amount: redeem as cash, capped by policy")
    reference: str = Field(default="", max_length=80)
    reason: str = Field(default="", max_length=1000)


class RedeemOut(Schema):
    member_id: int
    points: int
    deduction_fen: int
    balance: int


class HoldIn(MemberRef):
    points: PositivePoints
    order_fen: Fen | None = None
    reference: str = Field(default="", max_length=80)


class HoldOut(Schema):
    id: int
    member_id: int
    points: int
    deduction_fen: int
    reference: str
    state: str
    expires_at: datetime


class AdjustmentIn(MemberRef):
    points: SignedPoints = Field(description="credit > 0, debit < 0")
    reason: str = Field(min_length=1, max_length=1000)


class AdjustmentOut(Schema):
    id: int
    member_id: int
    points: int
    reason: str
    state: str
    requested_by: str
    requested_at: datetime
    decided_by: str
    decided_at: datetime | None


class DecisionIn(StrictSchema):
    reason: str = Field(default="", max_length=1000)


class ActionIn(StrictSchema):
    action: str = Field(min_length=1, max_length=40)
    reference: str = Field(default="", max_length=80)
    at: Moment | None = None


class ActionOut(Schema):
    member_id: int
    action: str
    points: int
    trace: list[dict[str, Any]]
    replayed: bool


class OverrideIn(StrictSchema):
    tier: str | None = Field(default=None, max_length=32, description="null removes the override")
    ends_at: Moment | None = None
    reason: str = Field(min_length=1, max_length=1000)


class GapOut(Schema):
    tier: str
    tier_name: str
    combine: str
    missing_spend_fen: int | None
    missing_purchases: int | None
    missing_points: int | None
    met: bool
    deadline: date | None


class ProgressOut(Schema):
    member_id: int
    tier: str
    tier_name: str
    term_ends_at: datetime | None
    override_tier: str | None
    override_ends_at: datetime | None
    next: GapOut | None
    keep: GapOut | None


class DecisionOut(Schema):
    tier: str
    previous_tier: str
    reason: str
    term_ends_at: datetime | None
    explanation: dict[str, Any]


class ProgrammeOut(Schema):
    version: int
    config: ProgrammeConfig


class ProgrammeIn(StrictSchema):
    config: ProgrammeConfig
    reason: str = Field(min_length=1, max_length=1000)
    expected_version: Int | None = None


class WhatIfIn(StrictSchema):
    config: ProgrammeConfig
    at: Moment | None = None


class WhatIfOut(Schema):
    at: datetime
    members: int
    current_counts: dict[str, int]
    proposed_counts: dict[str, int]
    up: int
    down: int
    same: int
    unmapped: int
    transitions: dict[str, dict[str, int]]


class EvaluateOut(Schema):
    counts: dict[str, int]


class PurchaseImportReportOut(Schema):
    total: int
    created: int
    existing: int
    rejected: int
    members_created: int
    rejections: list[dict[str, Any]]
    rejections_truncated: bool


class ViolationOut(Schema):
    code: str
    message: str
    ref: str | None
