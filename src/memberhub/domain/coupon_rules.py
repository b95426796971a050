"""Coupon templates (券模板), their conditions and validity, and the basket they are judged on.

Everything here is data plus the few decisions that need no basket: when an issued coupon is
valid (``coupon_validity_window``) and whether one more coupon may be issued
(``coupon_issue_check``). Whether a coupon applies to a basket lives in ``coupon_validate``;
how several combine lives in ``coupon_stack``.

Money is integer fen (分). Percentages are basis points of the price (``2000`` = 20 % off =
八折) so that 8.5折 (``1500``) needs no float. Times are timezone-aware; validity windows are
half-open ``[valid_from, valid_until)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import StrEnum

from memberhub.domain.errors import DomainError

BP_WHOLE = 10_000  # basis points in 100 %


class CouponTemplateInvalid(DomainError):
    code = "coupon_template_invalid"


class NaiveDatetime(DomainError):
    code = "naive_datetime"


class BasketInvalid(DomainError):
    code = "basket_invalid"


class CouponKind(StrEnum):
    AMOUNT_OFF = "amount_off"  # 满减券: 满100减20
    PERCENT_OFF = "percent_off"  # 折扣券: 8折, 最多减50元
    FREE_ITEM = "free_item"  # 赠品券: one unit of a SKU free
    FREE_SHIPPING = "free_shipping"  # 免邮券 / 运费券
    EXCHANGE = "exchange"  # 兑换券: a SKU for free or at a fixed price


class Channel(StrEnum):
    ONLINE = "online"  # 线上
    OFFLINE = "offline"  # 线下 (门店)


class CouponStatus(StrEnum):
    AVAILABLE = "available"  # 未使用
    USED = "used"  # 已使用
    REVOKED = "revoked"  # 已作废


@dataclass(frozen=True, slots=True)
class CouponConditions:
    """使用条件. An empty set means "no restriction" on that dimension.

    A line is eligible when it is included (by SKU *or* category; no inclusion list at all
    includes everything) and not excluded (by SKU or category). Exclusion wins because it is
    how operators carve out 特价商品 from an otherwise store-wide coupon.
    """

    min_spend_fen: int = 0  # 门槛: measured on the eligible lines' current net amount
    include_skus: frozenset[str] = frozenset()
    exclude_skus: frozenset[str] = frozenset()
    include_categories: frozenset[str] = frozenset()
    exclude_categories: frozenset[str] = frozenset()
    store_ids: frozenset[str] = frozenset()  # 适用门店
    channels: frozenset[Channel] = frozenset()  # 适用渠道
    tiers: frozenset[str] = frozenset()  # 适用等级 (tier codes)
    first_purchase_only: bool = False  # 首单专享

    def line_is_eligible(self, *, sku: str, category: str) -> bool:
        if sku in self.exclude_skus or category in self.exclude_categories:
            return False
        if not self.include_skus and not self.include_categories:
            return True
        return sku in self.include_skus or category in self.include_categories


@dataclass(frozen=True, slots=True)
class FixedValidity:
    """固定日期: valid in ``[valid_from, valid_until)`` whenever it was issued."""

    valid_from: datetime
    valid_until: datetime


@dataclass(frozen=True, slots=True)
class RelativeValidity:
    """领取后N天有效.

    ``days`` counts the day of issue as day 1 when ``whole_days`` is true (the till and the
    member read "7天有效" as "until the end of the 7th day", never "until 15:42 next week").
    ``delay_days`` > 0 means 次日/N日后生效, starting at midnight. ``not_after`` caps the
    window at the end of the campaign.
    """

    days: int
    delay_days: int = 0
    whole_days: bool = True
    not_after: datetime | None = None


Validity = FixedValidity | RelativeValidity


@dataclass(frozen=True, slots=True)
class CouponTemplate:
    """券模板: what the coupon gives, to whom, when, and how it combines.

    Kind-specific fields: ``amount_off_fen`` (AMOUNT_OFF); ``percent_off_bp`` and optional
    ``cap_fen`` (PERCENT_OFF; ``cap_fen`` also caps FREE_SHIPPING); ``sku`` (FREE_ITEM,
    EXCHANGE); ``exchange_price_fen`` (EXCHANGE: 0 = free, else the member pays this).
    """

    template_id: str
    kind: CouponKind
    validity: Validity
    conditions: CouponConditions = field(default_factory=CouponConditions)
    amount_off_fen: int = 0
    percent_off_bp: int = 0
    cap_fen: int | None = None
    sku: str | None = None
    exchange_price_fen: int = 0
    stacks_with_coupons: bool = True  # 可与其他券叠加
    stacks_with_tier_discount: bool = True  # 可与会员折扣同享
    per_member_limit: int | None = None  # 每人限领
    total_quantity: int | None = None  # 发行总量
    budget_fen: int | None = None  # 优惠预算: total discount this template may give

    def __post_init__(self) -> None:
        problems = _template_problems(self)
        if problems:
            raise CouponTemplateInvalid("; ".join(problems), template_id=self.template_id, problems=problems)


def _template_problems(t: CouponTemplate) -> list[str]:
    problems: list[str] = []
    if t.kind is CouponKind.AMOUNT_OFF and t.amount_off_fen <= 0:
        problems.append("amount_off_fen must be > 0")
    if t.kind is CouponKind.PERCENT_OFF and not 0 < t.percent_off_bp <= BP_WHOLE:
        problems.append("percent_off_bp must be in 1..10000")
    if t.kind in (CouponKind.FREE_ITEM, CouponKind.EXCHANGE) and not t.sku:
        problems.append("sku is required")
    if t.exchange_price_fen < 0 or t.amount_off_fen < 0 or t.conditions.min_spend_fen < 0:
        problems.append("amounts must not be negative")
    if t.cap_fen is not None and t.cap_fen <= 0:
        problems.append("cap_fen must be > 0")
    for name in ("per_member_limit", "total_quantity", "budget_fen"):
        value = getattr(t, name)
        if value is not None and value < 0:
            problems.append(f"{name} must not be negative")
    v = t.validity
    if isinstance(v, FixedValidity):
        require_aware(v.valid_from, v.valid_until)
        if v.valid_until <= v.valid_from:
            problems.append("valid_until must be after valid_from")
    else:
        if v.days <= 0 or v.delay_days < 0:
            problems.append("days must be > 0 and delay_days >= 0")
        if v.not_after is not None:
            require_aware(v.not_after)
    return problems


def require_aware(*moments: datetime) -> None:
    for moment in moments:
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise NaiveDatetime("datetimes must be timezone-aware", value=moment.isoformat())


@dataclass(frozen=True, slots=True)
class ValidityWindow:
    valid_from: datetime
    valid_until: datetime  # exclusive


def _midnight(moment: datetime, days_later: int) -> datetime:
    day = moment.date() + timedelta(days=days_later)
    return datetime.combine(day, time.min, tzinfo=moment.tzinfo)


def coupon_validity_window(*, template: CouponTemplate, issued_at: datetime) -> ValidityWindow:
    """The ``[valid_from, valid_until)`` of a coupon issued at ``issued_at``.

    Relative windows are computed in ``issued_at``'s own time zone, so pass the store's local
    time: "valid 7 days" ends at local midnight, not at UTC midnight.
    """
    require_aware(issued_at)
    v = template.validity
    if isinstance(v, FixedValidity):
        return ValidityWindow(valid_from=v.valid_from, valid_until=v.valid_until)
    start = issued_at if v.delay_days == 0 else _midnight(issued_at, v.delay_days)
    until = _midnight(start, v.days) if v.whole_days else start + timedelta(days=v.days)
    if v.not_after is not None and v.not_after < until:
        until = v.not_after
    if until <= start:
        raise CouponTemplateInvalid(
            "the campaign ends before this coupon would start",
            template_id=template.template_id,
            issued_at=issued_at.isoformat(),
        )
    return ValidityWindow(valid_from=start, valid_until=until)


class IssueRefusalCode(StrEnum):
    MEMBER_LIMIT_REACHED = "member_limit_reached"  # 超出每人限领
    SOLD_OUT = "sold_out"  # 已领完
    BUDGET_EXHAUSTED = "budget_exhausted"  # 预算已用完


@dataclass(frozen=True, slots=True)
class IssueRefusal:
    code: IssueRefusalCode
    params: dict[str, int] = field(default_factory=dict)


def coupon_issue_check(
    *,
    template: CouponTemplate,
    issued_to_member: int,
    issued_total: int,
    budget_spent_fen: int = 0,
    quantity: int = 1,
) -> IssueRefusal | None:
    """May ``quantity`` more coupons of ``template`` be issued to this member? ``None`` = yes.

    The counts come from the database; the service must still claim them with a conditional
    UPDATE, because this check alone cannot stop two concurrent issues. The budget is the
    discount actually given at redemption, so it only stops issuing once fully spent;
    ``coupon_validate`` enforces the remaining budget against each discount.
    """
    if template.per_member_limit is not None and issued_to_member + quantity > template.per_member_limit:
        return IssueRefusal(
            code=IssueRefusalCode.MEMBER_LIMIT_REACHED,
            params={"limit": template.per_member_limit, "issued": issued_to_member},
        )
    if template.total_quantity is not None and issued_total + quantity > template.total_quantity:
        return IssueRefusal(
            code=IssueRefusalCode.SOLD_OUT,
            params={
                "total_quantity": template.total_quantity,
                "left": max(0, template.total_quantity - issued_total),
            },
        )
    if template.budget_fen is not None and budget_spent_fen >= template.budget_fen:
        return IssueRefusal(
            code=IssueRefusalCode.BUDGET_EXHAUSTED,
            params={"budget_fen": template.budget_fen, "spent_fen": budget_spent_fen},
        )
    return None


@dataclass(frozen=True, slots=True)
class CouponState:
    """One issued coupon (券实例) as the database holds it."""

    coupon_id: str
    template_id: str
    valid_from: datetime
    valid_until: datetime  # exclusive
    status: CouponStatus = CouponStatus.AVAILABLE
    owner_member_id: str | None = None  # None: a bearer code anyone may redeem


@dataclass(frozen=True, slots=True)
class BasketLine:
    line_id: str
    sku: str
    category: str
    unit_price_fen: int
    quantity: int
    tier_discountable: bool = True  # False for goods already at a net price (特价不参与会员折扣)

    def __post_init__(self) -> None:
        if self.unit_price_fen < 0 or self.quantity <= 0:
            raise BasketInvalid("a basket line needs a non-negative price and a positive quantity")

    @property
    def gross_fen(self) -> int:
        return self.unit_price_fen * self.quantity


@dataclass(frozen=True, slots=True)
class Basket:
    lines: tuple[BasketLine, ...]
    store_id: str
    channel: Channel
    shipping_fee_fen: int = 0

    def __post_init__(self) -> None:
        ids = [line.line_id for line in self.lines]
        if len(set(ids)) != len(ids):
            raise BasketInvalid("line ids must be unique within a basket")
        if self.shipping_fee_fen < 0:
            raise BasketInvalid("shipping fee must not be negative")


@dataclass(frozen=True, slots=True)
class MemberContext:
    member_id: str
    tier: str
    is_first_purchase: bool = False
