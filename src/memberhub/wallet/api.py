"""/api/v1/wallet: stored value per member, top-up rules and draw order, gift cards."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Query, Router, Schema, Status
from pydantic import Field

from memberhub.access.roles import Cap
from memberhub.core import idempotency
from memberhub.core.pagination import paginate
from memberhub.core.schemas import ERRORS as API_ERRORS
from memberhub.core.schemas import ErrorOut, Fen, Int, Moment, PositiveFen, StrictSchema
from memberhub.wallet import giftcards, selectors, services
from memberhub.wallet.models import GiftCard, TopUpRule, WalletConfig

router = Router(tags=["wallet"])
ERRORS: dict[int, Any] = {**API_ERRORS, 423: ErrorOut}  # 423: a gift card locked by wrong PINs
Ref = Field(min_length=1, max_length=120)


class WalletBalanceOut(Schema):
    member_id: int
    as_of: datetime | None
    principal_fen: int
    bonus_fen: int
    total_fen: int


class MovementOut(Schema):
    id: int
    kind: str
    principal_fen: int
    bonus_fen: int
    principal_after_fen: int
    bonus_after_fen: int
    ref: str
    rule_id: str
    channel: str
    original_id: int | None
    at: datetime


class StatementOut(Schema):
    opening: WalletBalanceOut | None
    items: list[MovementOut]
    next_cursor: str | None


class TopUpIn(StrictSchema):
    amount_fen: PositiveFen
    payment_ref: str = Ref
    store: str | None = None
    channel: Literal["online", "offline"] = "offline"


class SpendIn(StrictSchema):
    amount_fen: PositiveFen
    order_no: str = Ref
    store: str | None = None
    channel: Literal["online", "offline"] = "offline"
    allow_partial: bool = False


class WalletRefundIn(StrictSchema):
    order_no: str = Ref
    amount_fen: PositiveFen
    refund_no: str = Ref


class RuleIn(StrictSchema):
    threshold_fen: PositiveFen
    bonus_fen: Fen
    valid_from: Moment | None = None
    valid_until: Moment | None = None


class RuleOut(Schema):
    id: int
    threshold_fen: int
    bonus_fen: int
    is_active: bool
    valid_from: datetime | None
    valid_until: datetime | None


class RuleActiveIn(StrictSchema):
    is_active: bool


class ConfigIn(StrictSchema):
    draw_order: Literal["principal_first", "bonus_first", "proportional"]


class ConfigOut(Schema):
    draw_order: str


class GiftCardsIn(StrictSchema):
    count: Int = Field(ge=1, le=10_000)
    amount_fen: PositiveFen
    batch_ref: str = Ref
    expires_at: Moment | None = None


class GiftCardOut(Schema):
    code: str
    initial_fen: int
    balance_fen: int
    status: str
    expires_at: datetime | None
    issued_at: datetime
    pin_locked_at: datetime | None = None  # locked after too many wrong PINs: staff unlock it


class GiftCardIssuedOut(GiftCardOut):
    pin: str | None = None  # shown once, at issue; a replayed batch cannot show it again


class GiftMovementOut(Schema):
    id: int
    kind: str
    amount_fen: int
    balance_after_fen: int
    ref: str
    at: datetime


class GiftSpendIn(StrictSchema):
    amount_fen: PositiveFen
    order_no: str = Ref
    store: str | None = None
    allow_partial: bool = False
    pin: str | None = Field(default=None, max_length=12)  # required unless the caller may waive it


class UnlockIn(StrictSchema):
    reason: str = Field(min_length=1, max_length=1000)


class StatementQuery(Schema):
    date_from: Moment | None = None
    date_to: Moment | None = None
    cursor: str | None = None
    limit: int = 50


def _auth(request: HttpRequest) -> Any:
    return request.auth  # type: ignore[attr-defined]


# --- programme settings (before /{member_id} so the paths do not clash) ---------------------

@router.get("/config", response={200: ConfigOut, **ERRORS}, summary="The draw order at the till")
def config_get(request: HttpRequest) -> Any:
    _auth(request).require(Cap.WALLET_READ)
    return {"draw_order": services.draw_order().value}


@router.put("/config", response={200: ConfigOut, **ERRORS}, summary="Set the draw order (扣款顺序)")
def config_set(request: HttpRequest, body: ConfigIn) -> WalletConfig:
    return services.wallet_config_set(actor=_auth(request), draw_order=body.draw_order)


@router.get("/topup-rules", response={200: list[RuleOut], **ERRORS}, summary="Top-up bonus rules (充值送)")
def rules_list(request: HttpRequest) -> Any:
    _auth(request).require(Cap.WALLET_READ)
    return list(TopUpRule.objects.order_by("threshold_fen", "pk"))


@router.post("/topup-rules", response={201: RuleOut, **ERRORS}, summary="Add a top-up rule")
def rule_create(request: HttpRequest, body: RuleIn) -> Status[Any]:
    return Status(201, services.topup_rule_create(actor=_auth(request), values=body.model_dump()))


@router.patch("/topup-rules/{rule_id}", response={200: RuleOut, **ERRORS}, summary="Switch a top-up rule on or off")
def rule_update(request: HttpRequest, rule_id: int, body: RuleActiveIn) -> Any:
    return services.topup_rule_set_active(actor=_auth(request), rule_id=rule_id, active=body.is_active)


@router.post("/gift-cards", response={201: list[GiftCardIssuedOut], **ERRORS},
             summary="Issue gift cards (礼品卡), each with its PIN shown once")
def gift_cards_issue(request: HttpRequest, body: GiftCardsIn) -> Status[Any]:
    idempotency.withhold("pin")  # never kept: a replay answers "pin": null, as a replayed batch does
    return Status(201, giftcards.gift_cards_issue(actor=_auth(request), **body.model_dump()))


@router.get("/gift-cards/{code}", response={200: GiftCardOut, **ERRORS}, summary="A gift card's balance")
def gift_card_get(request: HttpRequest, code: str) -> GiftCard:
    return giftcards.gift_card_get(actor=_auth(request), code=code)


@router.get("/gift-cards/{code}/statement", response={200: list[GiftMovementOut], **ERRORS},
            summary="A gift card's movements")
def gift_card_statement(request: HttpRequest, code: str) -> Any:
    return list(giftcards.gift_card_get(actor=_auth(request), code=code).movements.order_by("pk"))


@router.post("/gift-cards/{code}/spend", response={200: GiftMovementOut, **ERRORS}, summary="Pay with a gift card")
def gift_card_spend(request: HttpRequest, code: str, body: GiftSpendIn) -> Any:
    return giftcards.gift_card_spend(actor=_auth(request), code=code, **body.model_dump())


@router.post("/gift-cards/{code}/unlock", response={200: GiftCardOut, **ERRORS},
             summary="Unlock a gift card locked by wrong PINs (with a reason)")
def gift_card_unlock(request: HttpRequest, code: str, body: UnlockIn) -> GiftCard:
    return giftcards.gift_card_unlock(actor=_auth(request), code=code, reason=body.reason)


@router.post("/gift-cards/{code}/refund", response={200: GiftMovementOut, **ERRORS}, summary="Refund to a gift card")
def gift_card_refund(request: HttpRequest, code: str, body: WalletRefundIn) -> Any:
    return giftcards.gift_card_refund(actor=_auth(request), code=code, **body.model_dump())


# --- a member's wallet -------------------------------------------------------------------

@router.get("/{member_id}", response={200: WalletBalanceOut, **ERRORS}, summary="Balance now, or as of a past moment")
def wallet_balance(request: HttpRequest, member_id: int, as_of: Moment | None = None) -> dict[str, Any]:
    return selectors.wallet_balance(actor=_auth(request), member_id=member_id, as_of=as_of)


@router.get("/{member_id}/statement", response={200: StatementOut, **ERRORS}, summary="The wallet statement (对账单)")
def wallet_statement(request: HttpRequest, member_id: int, q: Query[StatementQuery]) -> dict[str, Any]:
    qs = selectors.wallet_statement(actor=_auth(request), member_id=member_id, date_from=q.date_from, date_to=q.date_to)
    page, next_cursor = paginate(qs, cursor=q.cursor, limit=q.limit)
    opening = None
    if q.date_from is not None:
        from datetime import timedelta

        opening = selectors.wallet_balance(actor=_auth(request), member_id=member_id,
                                           as_of=q.date_from - timedelta(microseconds=1))
    return {"opening": opening, "items": page, "next_cursor": next_cursor}


@router.get("/{member_id}/check", response={200: list[dict], **ERRORS}, summary="Ledger check: [] means sound")
def wallet_check(request: HttpRequest, member_id: int) -> Any:
    return selectors.wallet_check_for(actor=_auth(request), member_id=member_id)


@router.post("/{member_id}/topup", response={201: MovementOut, **ERRORS}, summary="Top up (充值)")
def wallet_topup(request: HttpRequest, member_id: int, body: TopUpIn) -> Status[Any]:
    return Status(201, services.wallet_topup(actor=_auth(request), member_id=member_id, **body.model_dump()))


@router.post("/{member_id}/spend", response={200: MovementOut, **ERRORS}, summary="Pay from the wallet")
def wallet_spend(request: HttpRequest, member_id: int, body: SpendIn) -> Any:
    return services.wallet_spend(actor=_auth(request), member_id=member_id, **body.model_dump())


@router.post("/{member_id}/refund", response={201: MovementOut, **ERRORS}, summary="Refund a payment to the wallet")
def wallet_refund(request: HttpRequest, member_id: int, body: WalletRefundIn) -> Status[Any]:
    return Status(201, services.wallet_refund(actor=_auth(request), member_id=member_id, **body.model_dump()))
