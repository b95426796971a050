from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ninja import Schema
from pydantic import Field

from memberhub.core.schemas import Fen, Id, Int, Moment, Points, StrictSchema

Kind = Literal["amount_off", "percent_off", "free_item", "free_shipping", "exchange"]
Str64 = Field(max_length=64)


class IssueRuleIn(StrictSchema):
    event: str
    to_tiers: list[str] = []


class TemplateIn(StrictSchema):
    name: str = Field(min_length=1, max_length=100)
    description: str = ""
    kind: Kind
    amount_off_fen: Fen = Field(0, ge=0)
    percent_off_bp: Int = Field(0, ge=0, le=10_000)
    cap_fen: Fen | None = Field(None, gt=0)
    sku: str = Field("", max_length=64)
    exchange_price_fen: Fen = Field(0, ge=0)
    min_spend_fen: Fen = Field(0, ge=0)
    include_skus: list[str] = []
    exclude_skus: list[str] = []
    include_categories: list[str] = []
    exclude_categories: list[str] = []
    store_codes: list[str] = []
    channels: list[Literal["online", "offline"]] = []
    tiers: list[str] = []
    first_purchase_only: bool = False
    validity_kind: Literal["fixed", "relative"]
    valid_from: Moment | None = None
    valid_until: Moment | None = None
    valid_days: Int | None = Field(None, ge=1, le=3650)
    delay_days: Int = Field(0, ge=0, le=365)
    whole_days: bool = True
    not_after: Moment | None = None
    stacks_with_coupons: bool = True
    stacks_with_tier_discount: bool = True
    uses_per_coupon: Int = Field(1, ge=1, le=1000)
    per_member_limit: Int | None = Field(None, ge=1)
    total_quantity: Int | None = Field(None, ge=0, le=100_000_000)
    budget_fen: Fen | None = Field(None, ge=0)
    points_price: Points | None = Field(None, ge=1)
    claim_code: str | None = Field(None, min_length=4, max_length=40)
    issue_rules: list[IssueRuleIn] = []
    is_active: bool = True


class TemplatePatch(StrictSchema):
    name: str | None = Field(None, min_length=1, max_length=100)
    description: str | None = None
    is_active: bool | None = None
    total_quantity: Int | None = Field(None, ge=0, le=100_000_000)
    budget_fen: Fen | None = Field(None, ge=0)
    per_member_limit: Int | None = Field(None, ge=1)
    points_price: Points | None = Field(None, ge=1)
    claim_code: str | None = Field(None, min_length=4, max_length=40)
    issue_rules: list[IssueRuleIn] | None = None
    not_after: Moment | None = None


class TemplateOut(Schema):
    id: int
    name: str
    description: str
    kind: str
    amount_off_fen: int
    percent_off_bp: int
    cap_fen: int | None
    sku: str
    exchange_price_fen: int
    min_spend_fen: int
    include_skus: list[str]
    exclude_skus: list[str]
    include_categories: list[str]
    exclude_categories: list[str]
    store_codes: list[str]
    channels: list[str]
    tiers: list[str]
    first_purchase_only: bool
    validity_kind: str
    valid_from: datetime | None
    valid_until: datetime | None
    valid_days: int | None
    delay_days: int
    whole_days: bool
    not_after: datetime | None
    stacks_with_coupons: bool
    stacks_with_tier_discount: bool
    uses_per_coupon: int
    per_member_limit: int | None
    total_quantity: int | None
    budget_fen: int | None
    issued_count: int
    budget_spent_fen: int
    points_price: int | None
    claim_code: str | None
    issue_rules: list[dict[str, Any]]
    is_active: bool
    created_at: datetime


class TemplatePage(Schema):
    items: list[TemplateOut]
    next_cursor: str | None


class CouponOut(Schema):
    id: int
    code: str
    template_id: int
    template_name: str = Field(alias="template.name")
    kind: str = Field(alias="template.kind")
    member_id: int | None
    status: str
    uses_total: int
    uses_left: int
    valid_from: datetime
    valid_until: datetime
    issued_at: datetime
    source: str


class CouponPage(Schema):
    items: list[CouponOut]
    next_cursor: str | None


class IssueIn(StrictSchema):
    member_id: Id
    quantity: Int = Field(1, ge=1, le=100)
    reason: str = Field("", max_length=1000)


class SegmentIn(StrictSchema):
    store: str | None = None
    registered_from: Moment | None = None
    registered_to: Moment | None = None
    birth_month: Int | None = Field(None, ge=1, le=12)
    status: str | None = None
    # From the current analytics snapshots (memberhub analytics / POST /analytics/runs):
    rfm_segment: str | None = Field(None, max_length=20, description="e.g. 重要挽留客户")
    stage: str | None = Field(None, max_length=10, description="lifecycle stage, e.g. 沉睡")
    min_clv_fen: Fen | None = Field(None, ge=0)
    min_p_alive: float | None = Field(None, ge=0, le=1)


class BulkIssueIn(StrictSchema):
    member_ids: list[Id] | None = Field(None, max_length=1_000_000)
    segment: SegmentIn | None = None


class CodesIn(StrictSchema):
    count: Int = Field(ge=1, le=2_000_000)
    prefix: str = Field("", max_length=8)
    length: Int = Field(10, ge=6, le=20)


class BatchOut(Schema):
    id: int
    template_id: int
    kind: str
    status: str
    total: int
    done: int
    failed: int
    failures: dict[str, int]
    error: str
    created_by: str
    created_at: datetime
    finished_at: datetime | None


class CouponClaimIn(StrictSchema):
    code: str = Field(min_length=1, max_length=60)
    member_id: Id


class CouponExchangeIn(StrictSchema):
    member_id: Id


class LineSchema(StrictSchema):
    line_id: str = Field(min_length=1, max_length=64)
    sku: str = Field(min_length=1, max_length=64)
    category: str = Field("", max_length=64)
    unit_price_fen: Fen
    qty: Int = Field(ge=1, le=100_000)
    tier_discountable: bool = True


class BasketSchema(StrictSchema):
    lines: list[LineSchema] = Field(min_length=1, max_length=500)
    shipping_fee_fen: Fen = Field(0, ge=0, le=10**9)
    tier_discount_permille: Int = Field(1000, ge=1, le=1000, description="the member's tier price as ‰ of the list price paid (金卡8折 = 800, none = 1000), as in the programme's benefits")


class ValidateIn(StrictSchema):
    member_id: Id | None = None
    codes: list[str] = Field(max_length=20)
    basket: BasketSchema
    channel: Literal["online", "offline"]
    store: str | None = None
    best: bool = False


class CouponRedeemIn(StrictSchema):
    member_id: Id | None = None
    codes: list[str] = Field(min_length=1, max_length=20)
    basket: BasketSchema
    channel: Literal["online", "offline"]
    store: str | None = None
    order_no: str = Field(min_length=1, max_length=64)


class RestoreIn(StrictSchema):
    channel: Literal["online", "offline"]
    order_no: str = Field(min_length=1, max_length=64)
    refunded_line_ids: list[str] | None = None


class RevokeIn(StrictSchema):
    reason: str = Field(min_length=1, max_length=1000)
