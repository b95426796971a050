"""Member tiers (会员等级): the ladder, evaluation (升级/降级/保级) and progress.

A tier is earned by spend (消费金额), number of purchases (消费次数) and/or points earned,
counted over a rolling window, the calendar year or the member's lifetime. Upgrades
happen as soon as a purchase qualifies; downgrades only at the periodic evaluation,
after the tier's term (保级期) has run out, so a member is never demoted the week after
being promoted. A manual override (人工调级) wins until its end date.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from memberhub.domain.errors import DomainError
from memberhub.domain.points_lots import DEFAULT_TIMEZONE, add_months, last_valid_day, local_midnight
from memberhub.domain.points_rules import InvalidRule


class UnknownTier(DomainError):
    """A tier code is not on the ladder being evaluated."""

    code = "unknown_tier"


class Combine(StrEnum):
    ANY = "any"  # any one configured criterion is enough
    ALL = "all"  # every configured criterion must be met


class WindowKind(StrEnum):
    ROLLING = "rolling"  # the last ``window_months`` months up to the evaluation time
    CALENDAR_YEAR = "calendar_year"  # 1 Jan (local) up to the evaluation time
    LIFETIME = "lifetime"


@dataclass(frozen=True, slots=True)
class QualifyingTotals:
    spend_fen: int = 0
    purchases: int = 0
    points: int = 0


@dataclass(frozen=True, slots=True)
class TierRule:
    """One rung. No criterion at all means everyone qualifies (the entry tier)."""

    code: str
    name: str
    min_spend_fen: int | None = None
    min_purchases: int | None = None
    min_points: int | None = None
    combine: Combine = Combine.ANY

    def criteria(self, totals: QualifyingTotals) -> list[tuple[str, int, int]]:
        """(criterion, threshold, actual) for each configured criterion."""
        pairs = (("spend_fen", self.min_spend_fen, totals.spend_fen),
                 ("purchases", self.min_purchases, totals.purchases),
                 ("points", self.min_points, totals.points))
        return [(name, threshold, actual) for name, threshold, actual in pairs if threshold is not None]

    def qualifies(self, totals: QualifyingTotals) -> bool:
        met = [actual >= threshold for _, threshold, actual in self.criteria(totals)]
        if not met:
            return True
        return all(met) if self.combine is Combine.ALL else any(met)


@dataclass(frozen=True, slots=True)
class TierLadder:
    """Tiers lowest first. ``term_months`` is how long a reached tier is kept (None = no term)."""

    tiers: tuple[TierRule, ...]
    window: WindowKind = WindowKind.ROLLING
    window_months: int = 12
    term_months: int | None = 12
    downgrade_one_step: bool = False
    timezone: str = DEFAULT_TIMEZONE

    def __post_init__(self) -> None:
        object.__setattr__(self, "tiers", tuple(self.tiers))
        if not self.tiers:
            raise InvalidRule("a ladder needs at least one tier")
        codes = [t.code for t in self.tiers]
        if len(set(codes)) != len(codes):
            raise InvalidRule("tier codes must be unique", codes=codes)
        if self.tiers[0].criteria(QualifyingTotals()):
            raise InvalidRule("the first tier is the entry tier and must have no criteria")
        if self.window is WindowKind.ROLLING and self.window_months < 1:
            raise InvalidRule("window_months must be >= 1")
        if self.term_months is not None and self.term_months < 1:
            raise InvalidRule("term_months must be >= 1 or None")

    def rank(self, code: str) -> int:
        for index, tier in enumerate(self.tiers):
            if tier.code == code:
                return index
        raise UnknownTier(f"tier {code!r} is not on the ladder", tier=code)


def default_ladder() -> TierLadder:
    """普通 / 银卡 / 金卡 / 钻石 over a rolling 12 months — a starting point for operators."""
    return TierLadder(tiers=(
        TierRule("normal", "普通会员"),
        TierRule("silver", "银卡会员", min_spend_fen=100_000, min_purchases=5),
        TierRule("gold", "金卡会员", min_spend_fen=500_000, min_purchases=15),
        TierRule("diamond", "钻石会员", min_spend_fen=2_000_000, min_purchases=30, combine=Combine.ALL),
    ))


@dataclass(frozen=True, slots=True)
class PurchaseFact:
    """A qualifying purchase, or a refund as a negative fact.

    ``count`` defaults to 1 for a purchase and 0 for a refund; pass ``count=-1`` for a
    refund that cancels the whole order so it no longer counts as a purchase.
    """

    at: datetime
    paid_fen: int
    points: int = 0
    count: int | None = None

    @property
    def purchases(self) -> int:
        if self.count is not None:
            return self.count
        return 1 if self.paid_fen > 0 else 0


def window_start(*, ladder: TierLadder, at: datetime) -> datetime | None:
    """First instant (inclusive) counted when evaluating at ``at``; None = lifetime."""
    if ladder.window is WindowKind.LIFETIME:
        return None
    if ladder.window is WindowKind.CALENDAR_YEAR:
        year = at.astimezone(ZoneInfo(ladder.timezone)).year
        return local_midnight(date(year, 1, 1), timezone=ladder.timezone)
    return add_months(at, -ladder.window_months, timezone=ladder.timezone)


def qualifying_totals(
    *, ladder: TierLadder, facts: Iterable[PurchaseFact], at: datetime, known_until: datetime | None = None
) -> QualifyingTotals:
    """Sum the facts in the window for an evaluation at ``at`` (only facts up to ``known_until``)."""
    start = window_start(ladder=ladder, at=at)
    end = at if known_until is None else min(at, known_until)
    spend = purchases = points = 0
    for fact in facts:
        if fact.at > end or (start is not None and fact.at < start):
            continue
        spend += fact.paid_fen
        purchases += fact.purchases
        points += fact.points
    return QualifyingTotals(spend, purchases, points)


def tier_qualified(*, ladder: TierLadder, totals: QualifyingTotals) -> str:
    """The highest tier whose criteria the totals meet."""
    best = ladder.tiers[0].code
    for tier in ladder.tiers[1:]:
        if tier.qualifies(totals):
            best = tier.code
    return best


class Mode(StrEnum):
    ON_PURCHASE = "on_purchase"  # upgrade only
    PERIODIC = "periodic"  # nightly/monthly run: may renew or downgrade after the term


class Reason(StrEnum):
    UPGRADE = "upgrade"
    DOWNGRADE = "downgrade"
    RENEWED = "renewed"  # term ended and the member qualified again (保级成功)
    UNCHANGED = "unchanged"
    PROTECTED = "protected"  # would downgrade, but the term has not ended
    OVERRIDE_ACTIVE = "override_active"
    OVERRIDE_ENDED = "override_ended"


@dataclass(frozen=True, slots=True)
class TierState:
    """The member's tier as stored: ``tier`` is what they hold now (the override tier while one is active)."""

    tier: str
    term_ends_at: datetime | None = None
    override_tier: str | None = None
    override_ends_at: datetime | None = None  # None with an override_tier: until removed

    def override_active(self, at: datetime) -> bool:
        return self.override_tier is not None and (self.override_ends_at is None or at < self.override_ends_at)


@dataclass(frozen=True, slots=True)
class TierDecision:
    tier: str
    previous_tier: str
    reason: Reason
    term_ends_at: datetime | None  # to store; None for the entry tier or a ladder without term
    override_cleared: bool  # True once an ended override should be removed from the record
    explanation: dict[str, Any]  # JSON-serialisable: totals, window, computed tier, thresholds

    @property
    def changed(self) -> bool:
        return self.tier != self.previous_tier


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _term_end(*, ladder: TierLadder, tier: str, at: datetime) -> datetime | None:
    if ladder.rank(tier) == 0 or ladder.term_months is None:
        return None
    return add_months(at, ladder.term_months, timezone=ladder.timezone)


def tier_evaluate(
    *, ladder: TierLadder, facts: Sequence[PurchaseFact], state: TierState, at: datetime, mode: Mode
) -> TierDecision:
    """Decide the member's tier at ``at``.

    - an active override wins (reason ``override_active``); once ended, the computed
      tier applies at once, up or down (``override_ended``);
    - ``on_purchase``: upgrade when the window qualifies for a higher tier, never down;
    - ``periodic``: upgrade; at or after the term end renew (qualifies again) or
      downgrade — to the qualified tier, or one rung if ``downgrade_one_step``; before
      the term end a would-be downgrade is ``protected``.
    A new or renewed tier gets a new term starting at ``at``.
    """
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    current_rank = ladder.rank(state.tier)
    totals = qualifying_totals(ladder=ladder, facts=facts, at=at)
    computed = tier_qualified(ladder=ladder, totals=totals)
    computed_rank = ladder.rank(computed)
    start = window_start(ladder=ladder, at=at)
    explanation: dict[str, Any] = {
        "mode": mode.value, "window": ladder.window.value, "window_start": _iso(start), "window_end": at.isoformat(),
        "spend_fen": totals.spend_fen, "purchases": totals.purchases, "points": totals.points,
        "qualified_tier": computed, "term_ends_at": _iso(state.term_ends_at),
        "criteria": {t.code: {"combine": t.combine.value, **{c: th for c, th, _ in t.criteria(totals)}}
                     for t in ladder.tiers[1:]},
    }

    def decide(tier: str, reason: Reason, term: datetime | None, cleared: bool = False) -> TierDecision:
        return TierDecision(tier, state.tier, reason, term, cleared, explanation)

    if state.override_tier is not None:
        ladder.rank(state.override_tier)
        explanation.update(override_tier=state.override_tier, override_ends_at=_iso(state.override_ends_at))
        if state.override_active(at):
            return decide(state.override_tier, Reason.OVERRIDE_ACTIVE, state.term_ends_at)
        return decide(computed, Reason.OVERRIDE_ENDED, _term_end(ladder=ladder, tier=computed, at=at), True)
    if computed_rank > current_rank:
        return decide(computed, Reason.UPGRADE, _term_end(ladder=ladder, tier=computed, at=at))
    if mode is Mode.ON_PURCHASE:
        return decide(state.tier, Reason.UNCHANGED, state.term_ends_at)
    term_over = state.term_ends_at is None or at >= state.term_ends_at
    if computed_rank == current_rank:
        if term_over and current_rank > 0 and ladder.term_months is not None:
            return decide(state.tier, Reason.RENEWED, _term_end(ladder=ladder, tier=state.tier, at=at))
        return decide(state.tier, Reason.UNCHANGED, state.term_ends_at)
    if not term_over:
        explanation["protected_until"] = _iso(state.term_ends_at)
        return decide(state.tier, Reason.PROTECTED, state.term_ends_at)
    target_rank = current_rank - 1 if ladder.downgrade_one_step else computed_rank
    target = ladder.tiers[target_rank].code
    return decide(target, Reason.DOWNGRADE, _term_end(ladder=ladder, tier=target, at=at))


def upgrade_due(*, ladder: TierLadder, facts: Sequence[PurchaseFact], state: TierState, at: datetime) -> bool:
    """Whether an on-purchase evaluation can change anything: an override is on record, or
    the window qualifies above the tier held. When not, `tier_evaluate(mode=ON_PURCHASE)`
    answers UNCHANGED with the tier and term as they are, so the till (which holds the
    writers' turn meanwhile) skips it and the explanation it builds."""
    if state.override_tier is not None:
        return True
    totals = qualifying_totals(ladder=ladder, facts=facts, at=at)
    return ladder.rank(tier_qualified(ladder=ladder, totals=totals)) > ladder.rank(state.tier)


# --- progress (升级/保级进度) ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TierGap:
    """What is still missing for ``tier``; a criterion not configured is None, a met one 0."""

    tier: str
    combine: Combine
    missing_spend_fen: int | None
    missing_purchases: int | None
    missing_points: int | None
    met: bool
    deadline: date | None  # last local day on which the gap holds; None = no deadline


@dataclass(frozen=True, slots=True)
class TierProgress:
    current: str
    next: TierGap | None  # None at the top of the ladder
    keep: TierGap | None  # None for the entry tier


def _gap(rule: TierRule, totals: QualifyingTotals, deadline: date | None) -> TierGap:
    missing: dict[str, int | None] = {"spend_fen": None, "purchases": None, "points": None}
    for name, threshold, actual in rule.criteria(totals):
        missing[name] = max(threshold - actual, 0)
    return TierGap(rule.code, rule.combine, missing["spend_fen"], missing["purchases"], missing["points"],
                   rule.qualifies(totals), deadline)


def _reach_deadline(*, ladder: TierLadder, facts: Sequence[PurchaseFact], at: datetime) -> date | None:
    tz = ZoneInfo(ladder.timezone)
    if ladder.window is WindowKind.LIFETIME:
        return None
    if ladder.window is WindowKind.CALENDAR_YEAR:
        return date(at.astimezone(tz).year, 12, 31)
    start = window_start(ladder=ladder, at=at)
    counted = [f.at for f in facts if start is not None and start <= f.at <= at and f.paid_fen > 0]
    if not counted:
        return None
    # the day before the oldest counted purchase ages out: the gap quoted today holds until then
    ages_out = add_months(min(counted), ladder.window_months, timezone=ladder.timezone)
    return ages_out.astimezone(tz).date() - timedelta(days=1)


def tier_progress(
    *, ladder: TierLadder, facts: Sequence[PurchaseFact], state: TierState, at: datetime
) -> TierProgress:
    """"Spend ¥X or make N more purchases before DATE to reach / keep 金卡".

    ``next`` compares today's window with the next rung. ``keep`` compares the facts
    known today with the window that will be evaluated when the term (or an active
    override) ends, with that day as the deadline; with no future term end it is
    evaluated as of today and has no deadline.
    """
    current = state.override_tier if state.override_active(at) and state.override_tier else state.tier
    rank = ladder.rank(current)
    next_gap = None
    if rank + 1 < len(ladder.tiers):
        totals = qualifying_totals(ladder=ladder, facts=facts, at=at)
        next_gap = _gap(ladder.tiers[rank + 1], totals, _reach_deadline(ladder=ladder, facts=facts, at=at))
    keep_gap = None
    if rank > 0:
        ends = state.override_ends_at if state.override_active(at) else state.term_ends_at
        if ends is not None and ends > at:
            totals = qualifying_totals(ladder=ladder, facts=facts, at=ends, known_until=at)
            keep_gap = _gap(ladder.tiers[rank], totals, last_valid_day(ends, timezone=ladder.timezone))
        else:
            totals = qualifying_totals(ladder=ladder, facts=facts, at=at)
            keep_gap = _gap(ladder.tiers[rank], totals, None)
    return TierProgress(current=current, next=next_gap, keep=keep_gap)
