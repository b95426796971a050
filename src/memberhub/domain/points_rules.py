"""Earning rules (积分规则): how many points an order line or a member action earns, and why.

Points are computed per order line on the paid amount after discounts (实付金额), as
``paid yuan × base rate × tier × (SKU or category) × time-boxed multiplier`` kept as an
exact fraction and rounded once per line, so the member sees one rounding, not five.
Every factor is recorded as a ``TraceStep`` so support can answer "why 128 points?".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from fractions import Fraction
from math import ceil, floor
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from memberhub.domain.errors import DomainError
from memberhub.domain.points_lots import DEFAULT_TIMEZONE


class InvalidRule(DomainError):
    """An operator-configured rule is inconsistent (e.g. a negative rate)."""

    code = "invalid_rule"


class Rounding(StrEnum):
    FLOOR = "floor"  # 向下取整: the usual programme default, never over-awards
    HALF_UP = "half_up"  # 四舍五入
    CEIL = "ceil"  # 向上取整


def round_points(value: Fraction, rounding: Rounding) -> int:
    """Round an exact fraction of points to an integer by the programme's rule."""
    if rounding is Rounding.FLOOR:
        return floor(value)
    if rounding is Rounding.CEIL:
        return ceil(value)
    return floor(value + Fraction(1, 2)) if value >= 0 else -floor(-value + Fraction(1, 2))


def _fmt(value: Fraction) -> str:
    """Decimal text for traces: exact when it terminates, else 6 places (display only)."""
    text = str((Decimal(value.numerator) / Decimal(value.denominator)).quantize(Decimal("0.000001"),
                                                                                  rounding=ROUND_HALF_UP))
    return text.rstrip("0").rstrip(".") if "." in text else text


def _frozen(mapping: Mapping[str, Decimal]) -> Mapping[str, Decimal]:
    for key, value in mapping.items():
        if Decimal(value) < 0:
            raise InvalidRule(f"multiplier for {key!r} is negative", key=key)
    return MappingProxyType({k: Decimal(v) for k, v in mapping.items()})


@dataclass(frozen=True, slots=True)
class TimeMultiplier:
    """A time-boxed multiplier: a window (双倍积分周), a recurring member day (会员日), or both.

    ``starts_at``/``ends_at`` bound a half-open window ``[starts_at, ends_at)``; ``day_of_month``
    (1–31) and ``weekday`` (0 = Monday) restrict it to matching local days. With no
    window and no recurrence the multiplier always applies — refused as a likely mistake.
    """

    code: str
    multiplier: Decimal
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    day_of_month: int | None = None
    weekday: int | None = None
    categories: frozenset[str] = frozenset()  # empty = every category

    def __post_init__(self) -> None:
        if Decimal(self.multiplier) < 0:
            raise InvalidRule(f"time multiplier {self.code!r} is negative", code=self.code)
        if self.starts_at is None and self.ends_at is None and self.day_of_month is None and self.weekday is None:
            raise InvalidRule(f"time multiplier {self.code!r} has no window and no recurrence", code=self.code)
        if self.day_of_month is not None and not 1 <= self.day_of_month <= 31:
            raise InvalidRule("day_of_month must be 1..31", code=self.code)
        if self.weekday is not None and not 0 <= self.weekday <= 6:
            raise InvalidRule("weekday must be 0..6 (Monday = 0)", code=self.code)

    def applies(self, *, at: datetime, category: str, timezone: str) -> bool:
        if self.starts_at is not None and at < self.starts_at:
            return False
        if self.ends_at is not None and at >= self.ends_at:
            return False
        if self.categories and category not in self.categories:
            return False
        local = at.astimezone(ZoneInfo(timezone))
        if self.day_of_month is not None and local.day != self.day_of_month:
            return False
        return self.weekday is None or local.weekday() == self.weekday


class Stacking(StrEnum):
    MAX = "max"  # only the best time-boxed multiplier applies (default: bounded cost)
    MULTIPLY = "multiply"  # all matching multipliers multiply (member day during double week = 4×)


@dataclass(frozen=True, slots=True)
class EarnRules:
    """What the operator configures for purchase points.

    A SKU multiplier overrides its category's multiplier (the more specific rule wins).
    The tier multiplier is *not* here: it belongs to the tier's benefits and is passed in.
    """

    points_per_yuan: Decimal = Decimal(1)
    rounding: Rounding = Rounding.FLOOR
    category_multipliers: Mapping[str, Decimal] = field(default_factory=dict)
    sku_multipliers: Mapping[str, Decimal] = field(default_factory=dict)
    excluded_categories: frozenset[str] = frozenset()
    excluded_skus: frozenset[str] = frozenset()
    time_multipliers: tuple[TimeMultiplier, ...] = ()
    stacking: Stacking = Stacking.MAX
    timezone: str = DEFAULT_TIMEZONE

    def __post_init__(self) -> None:
        if Decimal(self.points_per_yuan) < 0:
            raise InvalidRule("points_per_yuan must be >= 0")
        object.__setattr__(self, "points_per_yuan", Decimal(self.points_per_yuan))
        object.__setattr__(self, "category_multipliers", _frozen(self.category_multipliers))
        object.__setattr__(self, "sku_multipliers", _frozen(self.sku_multipliers))
        object.__setattr__(self, "excluded_categories", frozenset(self.excluded_categories))
        object.__setattr__(self, "excluded_skus", frozenset(self.excluded_skus))
        object.__setattr__(self, "time_multipliers", tuple(self.time_multipliers))


@dataclass(frozen=True, slots=True)
class OrderLine:
    line_id: str
    sku: str
    category: str
    paid_fen: int  # what the member paid for the line after every discount and points deduction


@dataclass(frozen=True, slots=True)
class TraceStep:
    """One rule applied to one line; ``value`` is the running points after this step (text)."""

    line_id: str
    step: str  # base_rate | tier_multiplier | sku_multiplier | category_multiplier | time_multiplier
    #            | rounding | excluded_sku | excluded_category | action | cap_day | cap_month | ...
    code: str  # the rule's own code: tier code, SKU, category, promotion code, rounding mode
    factor: str | None
    value: str

    def as_dict(self) -> dict[str, Any]:
        # spelled out: dataclasses.asdict deep-copies recursively, several times the cost
        return {"line_id": self.line_id, "step": self.step, "code": self.code, "factor": self.factor,
                "value": self.value}


@dataclass(frozen=True, slots=True)
class LineEarn:
    """Points earned by one line, with what a later refund needs to claw back proportionally."""

    line_id: str
    paid_fen: int
    points: int
    rounding: Rounding
    excluded: bool
    trace: tuple[TraceStep, ...]


@dataclass(frozen=True, slots=True)
class EarnResult:
    points: int
    lines: tuple[LineEarn, ...]

    @property
    def trace(self) -> list[dict[str, Any]]:
        """All steps of all lines as JSON-serialisable dicts, in line order."""
        return [step.as_dict() for line in self.lines for step in line.trace]


def _line_earn(*, rules: EarnRules, line: OrderLine, at: datetime, tier_code: str,
               tier_multiplier: Fraction) -> LineEarn:
    def excluded(step: str, code: str) -> LineEarn:
        trace = (TraceStep(line.line_id, step, code, None, "0"),)
        return LineEarn(line.line_id, line.paid_fen, 0, rules.rounding, True, trace)

    if line.sku in rules.excluded_skus:
        return excluded("excluded_sku", line.sku)
    if line.category in rules.excluded_categories:
        return excluded("excluded_category", line.category)
    steps: list[TraceStep] = []

    def apply(value: Fraction, step: str, code: str, factor: Fraction) -> Fraction:
        value *= factor
        steps.append(TraceStep(line.line_id, step, code, _fmt(factor), _fmt(value)))
        return value

    rate = Fraction(rules.points_per_yuan)
    value = apply(Fraction(max(line.paid_fen, 0), 100), "base_rate", "points_per_yuan", rate)
    if tier_multiplier != 1:
        value = apply(value, "tier_multiplier", tier_code, tier_multiplier)
    if line.sku in rules.sku_multipliers:
        value = apply(value, "sku_multiplier", line.sku, Fraction(rules.sku_multipliers[line.sku]))
    elif line.category in rules.category_multipliers:
        value = apply(value, "category_multiplier", line.category,
                      Fraction(rules.category_multipliers[line.category]))
    matching = [m for m in rules.time_multipliers if m.applies(at=at, category=line.category, timezone=rules.timezone)]
    if matching and rules.stacking is Stacking.MAX:
        best = max(matching, key=lambda m: (Decimal(m.multiplier), m.code))
        value = apply(value, "time_multiplier", best.code, Fraction(best.multiplier))
    else:
        for promo in matching:
            value = apply(value, "time_multiplier", promo.code, Fraction(promo.multiplier))
    points = round_points(value, rules.rounding)
    steps.append(TraceStep(line.line_id, "rounding", rules.rounding.value, None, str(points)))
    return LineEarn(line.line_id, line.paid_fen, points, rules.rounding, False, tuple(steps))


def earn_points(
    *,
    rules: EarnRules,
    lines: Sequence[OrderLine],
    at: datetime,
    tier_code: str = "",
    tier_multiplier: Decimal = Decimal(1),
) -> EarnResult:
    """Points an order earns, line by line, with the trace of every rule applied.

    ``at`` is the payment time (it decides which time-boxed multipliers apply);
    ``tier_multiplier`` comes from the member's tier benefits. Excluded SKUs and
    categories earn nothing; negative paid amounts earn nothing (refunds go through
    ``points_refund``, not here).
    """
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    if Decimal(tier_multiplier) < 0:
        raise InvalidRule("tier_multiplier must be >= 0")
    factor = Fraction(Decimal(tier_multiplier))
    earned = tuple(
        _line_earn(rules=rules, line=line, at=at, tier_code=tier_code, tier_multiplier=factor) for line in lines
    )
    return EarnResult(points=sum(line.points for line in earned), lines=earned)


# --- action points (行为积分) ---------------------------------------------------------


class Action(StrEnum):
    REGISTRATION = "registration"  # 注册
    BIRTHDAY = "birthday"  # 生日
    PROFILE_COMPLETED = "profile_completed"  # 完善资料
    CHECK_IN = "check_in"  # 签到
    REVIEW = "review"  # 评价


@dataclass(frozen=True, slots=True)
class ActionRule:
    """Points for one action and the caps on points from it (None = no cap).

    Caps count *points* in the local day / month / year / whole life, so "check-in once
    a day" is ``points=5, per_day=5`` and registration is ``per_lifetime=points``. When a
    cap is partly used the member gets the remainder, never more than the cap.
    """

    action: str
    points: int
    per_day: int | None = None
    per_month: int | None = None
    per_year: int | None = None
    per_lifetime: int | None = None

    def __post_init__(self) -> None:
        if self.points < 0:
            raise InvalidRule(f"action {self.action!r} has negative points", action=self.action)
        for cap in (self.per_day, self.per_month, self.per_year, self.per_lifetime):
            if cap is not None and cap < 0:
                raise InvalidRule(f"action {self.action!r} has a negative cap", action=self.action)


@dataclass(frozen=True, slots=True)
class ActionAward:
    """A past award of the same action to the same member (from the ledger)."""

    at: datetime
    points: int


@dataclass(frozen=True, slots=True)
class ActionEarn:
    points: int
    trace: tuple[TraceStep, ...]


def action_points(
    *, rule: ActionRule, at: datetime, history: Iterable[ActionAward], timezone: str = DEFAULT_TIMEZONE
) -> ActionEarn:
    """Points for doing ``rule.action`` at ``at``, after the day/month/year/lifetime caps.

    ``history`` holds the awards of this action to this member already booked. Every award
    in the same day, month or year as ``at`` counts against that cap, whether its time is
    before or after ``at``: events can be booked out of order (a backdated one; two tills at
    once, the later event booked first), and the cap is what a period may give in all. A
    replay of the same event is answered from its first award by reference, not decided again.
    """
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    tz = ZoneInfo(timezone)
    now = at.astimezone(tz)
    used = {"cap_day": 0, "cap_month": 0, "cap_year": 0, "cap_lifetime": 0}
    for award in history:
        local = award.at.astimezone(tz)
        used["cap_lifetime"] += award.points
        if local.year == now.year:
            used["cap_year"] += award.points
            if local.month == now.month:
                used["cap_month"] += award.points
                if local.day == now.day:
                    used["cap_day"] += award.points
    caps = {"cap_day": rule.per_day, "cap_month": rule.per_month, "cap_year": rule.per_year,
            "cap_lifetime": rule.per_lifetime}
    points = rule.points
    steps = [TraceStep("", "action", rule.action, None, str(points))]
    for step, cap in caps.items():
        if cap is None:
            continue
        room = max(cap - used[step], 0)
        if room < points:
            points = room
            steps.append(TraceStep("", step, rule.action, str(cap), str(points)))
    return ActionEarn(points=points, trace=tuple(steps))
