"""/api/v1/rewards: the points catalogue (积分商城), exchanges and their fulfilment."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Query, Router, Schema, Status
from pydantic import Field

from memberhub.access.roles import Cap
from memberhub.core.pagination import paginate
from memberhub.core.schemas import ERRORS as API_ERRORS
from memberhub.core.schemas import Fen, Id, Int, Moment, Points, StrictSchema
from memberhub.coupons import rewards
from memberhub.coupons.models import Reward

router = Router(tags=["rewards"])
ERRORS: dict[int, Any] = API_ERRORS
Period = Literal["day", "week", "month", "year"]


class RewardIn(StrictSchema):
    name: str = Field(min_length=1, max_length=100)
    description: str = ""
    images: list[str] = Field([], max_length=20)
    points_price: Points = Field(ge=0, le=10**9)
    cash_fen: Fen = Field(0, ge=0, le=10**9)
    stock_left: Int | None = Field(None, ge=0)
    per_member_limit: Int | None = Field(None, ge=1)
    period_limit_count: Int | None = Field(None, ge=1)
    period_limit_period: Period | Literal[""] = ""
    tiers: list[str] = []
    available_from: Moment | None = None
    available_until: Moment | None = None
    is_active: bool = True


class RewardPatch(StrictSchema):
    name: str | None = Field(None, min_length=1, max_length=100)
    description: str | None = None
    images: list[str] | None = None
    points_price: Points | None = Field(None, ge=0)
    cash_fen: Fen | None = Field(None, ge=0)
    stock_left: Int | None = Field(None, ge=0)
    per_member_limit: Int | None = Field(None, ge=1)
    period_limit_count: Int | None = Field(None, ge=1)
    period_limit_period: Period | None = None
    tiers: list[str] | None = None
    available_from: Moment | None = None
    available_until: Moment | None = None
    is_active: bool | None = None


class RewardOut(Schema):
    id: int
    name: str
    description: str
    images: list[str]
    points_price: int
    cash_fen: int
    stock_left: int | None
    per_member_limit: int | None
    period_limit_count: int | None
    period_limit_period: str
    tiers: list[str]
    available_from: datetime | None
    available_until: datetime | None
    is_active: bool


class RewardPage(Schema):
    items: list[RewardOut]
    next_cursor: str | None


class RewardExchangeIn(StrictSchema):
    member_id: Id
    quantity: Int = Field(1, ge=1, le=100)
    store: str | None = None


class OrderOut(Schema):
    id: int
    reward_id: int
    reward_name: str = Field(alias="reward.name")
    member_id: int
    quantity: int
    points_total: int
    cash_fen_total: int
    status: str
    tracking_no: str
    created_at: datetime


class OrderPage(Schema):
    items: list[OrderOut]
    next_cursor: str | None


class MoveIn(StrictSchema):
    status: Literal["shipped", "delivered", "picked_up", "cancelled"]
    tracking_no: str = Field("", max_length=64)
    reason: str = Field("", max_length=1000)


class OrderFilters(Schema):
    member_id: int | None = None
    status: str | None = None
    cursor: str | None = None
    limit: int = 50


def _auth(request: HttpRequest) -> Any:
    return request.auth  # type: ignore[attr-defined]


@router.post("", response={201: RewardOut, **ERRORS}, summary="Add a reward to the catalogue")
def reward_create(request: HttpRequest, body: RewardIn) -> Status[Any]:
    return Status(201, rewards.reward_create(actor=_auth(request), values=body.model_dump()))


@router.get("", response={200: RewardPage, **ERRORS}, summary="The catalogue")
def reward_list(request: HttpRequest, active: bool | None = None, cursor: str | None = None,
                limit: int = 50) -> dict[str, Any]:
    actor = _auth(request)
    if not actor.can(Cap.REWARDS_MANAGE):
        actor.require(Cap.REWARDS_EXCHANGE)
    qs = Reward.objects.all() if active is None else Reward.objects.filter(is_active=active)
    page, next_cursor = paginate(qs, cursor=cursor, limit=limit)
    return {"items": page, "next_cursor": next_cursor}


@router.get("/orders", response={200: OrderPage, **ERRORS}, summary="Exchange orders")
def order_list(request: HttpRequest, filters: Query[OrderFilters]) -> dict[str, Any]:
    qs = rewards.reward_orders(actor=_auth(request), member_id=filters.member_id, status=filters.status)
    page, next_cursor = paginate(qs, cursor=filters.cursor, limit=filters.limit)
    return {"items": page, "next_cursor": next_cursor}


@router.post("/orders/{order_id}/status", response={200: OrderOut, **ERRORS},
             summary="Move an exchange order: shipped, delivered, picked up, cancelled (points returned)")
def order_move(request: HttpRequest, order_id: int, body: MoveIn) -> Any:
    return rewards.reward_order_move(actor=_auth(request), order_id=order_id, **body.model_dump())


@router.patch("/{reward_id}", response={200: RewardOut, **ERRORS}, summary="Change a reward")
def reward_update(request: HttpRequest, reward_id: int, body: RewardPatch) -> Any:
    nullable = {"stock_left", "per_member_limit", "period_limit_count", "available_from", "available_until"}
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None or k in nullable}
    return rewards.reward_update(actor=_auth(request), reward_id=reward_id, changes=changes)


@router.post("/{reward_id}/exchange", response={201: OrderOut, **ERRORS}, summary="Exchange points for a reward")
def reward_exchange(request: HttpRequest, reward_id: int, body: RewardExchangeIn) -> Status[Any]:
    return Status(201, rewards.reward_exchange(actor=_auth(request), reward_id=reward_id, **body.model_dump()))
