"""The programme configuration: its JSON shape, the domain objects it builds, and its edits.

The configuration is one JSON document (validated by `ProgrammeConfig`), turned into the
frozen domain dataclasses (`Rules`) once per version and cached per process.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from django.db import transaction
from django.db.models import F
from django.utils.translation import gettext_lazy as _
from pydantic import Field, WithJsonSchema
from pydantic import ValidationError as PydanticValidationError

from memberhub.access.principal import Principal
from memberhub.access.roles import Cap
from memberhub.audit.services import audit_record
from memberhub.core import rows
from memberhub.core.errors import ApplicationError, ValidationFailed
from memberhub.core.schemas import Fen, Int, Moment, Points, StrictSchema
from memberhub.domain.benefits import TierBenefits
from memberhub.domain.errors import DomainError
from memberhub.domain.points_adjust import AdjustPolicy
from memberhub.domain.points_lots import ExpiryKind, ExpiryPolicy
from memberhub.domain.points_redeem import RedeemPolicy
from memberhub.domain.points_rules import ActionRule, EarnRules, Rounding, Stacking, TimeMultiplier
from memberhub.domain.tiers import Combine, TierLadder, TierRule, WindowKind
from memberhub.loyalty.models import Programme

# A rate (points per yuan, a multiplier): a number, or a decimal written as text ("1.5") so no
# binary rounding creeps in; at most 1000, which no programme comes near, so points stay far
# inside the ceilings. Documented with the shape of the text it takes.
Rate = Annotated[Decimal, Field(ge=0, le=1000), WithJsonSchema({"anyOf": [
    {"type": "number", "minimum": 0, "maximum": 1000},
    {"type": "string", "pattern": r"^(1000(\.0{1,6})?|[0-9]{1,3}(\.[0-9]{1,6})?)$"}]})]


class TimeMultiplierConfig(StrictSchema):
    code: str = Field(min_length=1, max_length=40)
    multiplier: Rate
    starts_at: Moment | None = None
    ends_at: Moment | None = None
    day_of_month: Int | None = Field(default=None, ge=1, le=31)
    weekday: Int | None = Field(default=None, ge=0, le=6)
    categories: list[str] = []


class EarnConfig(StrictSchema):
    points_per_yuan: Rate = Decimal(1)
    rounding: Rounding = Rounding.FLOOR
    category_multipliers: dict[str, Rate] = {}
    sku_multipliers: dict[str, Rate] = {}
    excluded_categories: list[str] = []
    excluded_skus: list[str] = []
    time_multipliers: list[TimeMultiplierConfig] = []
    stacking: Stacking = Stacking.MAX


class ActionConfig(StrictSchema):
    points: Points
    per_day: Points | None = None
    per_month: Points | None = None
    per_year: Points | None = None
    per_lifetime: Points | None = None


class ExpiryConfig(StrictSchema):
    kind: ExpiryKind = ExpiryKind.END_OF_NEXT_YEAR
    months: Int = Field(default=12, ge=1, le=240)


class RedeemConfig(StrictSchema):
    points_per_unit: Points = Field(default=100, ge=1)
    unit_fen: Fen = Field(default=100, ge=1)
    max_order_percent: Int = Field(default=50, ge=0, le=100)
    min_points: Points = 0


class TierConfig(StrictSchema):
    code: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=40)
    min_spend_fen: Fen | None = None
    min_purchases: Int | None = Field(default=None, ge=0, le=10**9)
    min_points: Points | None = None
    combine: Combine = Combine.ANY


class LadderConfig(StrictSchema):
    tiers: list[TierConfig] = Field(min_length=1, max_length=20)
    window: WindowKind = WindowKind.ROLLING
    window_months: Int = Field(default=12, ge=1, le=120)
    term_months: Int | None = Field(default=12, ge=1, le=120)
    downgrade_one_step: bool = False


class BenefitConfig(StrictSchema):
    discount_permille: int = Field(default=1000, ge=1, le=1000)
    points_multiplier: Rate = Decimal(1)
    birthday_points: Points = 0
    birthday_coupon_template: str | None = None
    free_shipping: bool = False
    priority_service: bool = False
    discount_excluded_categories: list[str] = []
    discount_excluded_skus: list[str] = []


def _default_ladder() -> LadderConfig:
    return LadderConfig(tiers=[
        TierConfig(code="normal", name="普通会员"),
        TierConfig(code="silver", name="银卡会员", min_spend_fen=100_000, min_purchases=5),
        TierConfig(code="gold", name="金卡会员", min_spend_fen=500_000, min_purchases=15),
        TierConfig(code="diamond", name="钻石会员", min_spend_fen=2_000_000, min_purchases=30, combine=Combine.ALL),
    ])


def _default_benefits() -> dict[str, BenefitConfig]:
    return {
        "normal": BenefitConfig(),
        "silver": BenefitConfig(discount_permille=950, points_multiplier=Decimal("1.2"), birthday_points=100),
        "gold": BenefitConfig(discount_permille=900, points_multiplier=Decimal("1.5"), birthday_points=300,
                              free_shipping=True),
        "diamond": BenefitConfig(discount_permille=850, points_multiplier=Decimal(2), birthday_points=800,
                                 free_shipping=True, priority_service=True),
    }


def _default_actions() -> dict[str, ActionConfig]:
    return {
        "registration": ActionConfig(points=100, per_lifetime=100),
        "birthday": ActionConfig(points=0, per_year=0),
        "profile_completed": ActionConfig(points=50, per_lifetime=50),
        "check_in": ActionConfig(points=5, per_day=5, per_month=100),
        "review": ActionConfig(points=10, per_day=30, per_month=200),
    }


class ProgrammeConfig(StrictSchema):
    """Everything an operator sets for points and tiers (PUT replaces it whole)."""

    timezone: str = "Asia/Shanghai"
    # purchases dated before this day are refused (default: MEMBERHUB_PROGRAMME_START)
    starts_on: date | None = None
    earn: EarnConfig = Field(default_factory=EarnConfig)
    actions: dict[str, ActionConfig] = Field(default_factory=_default_actions)
    expiry: ExpiryConfig = Field(default_factory=ExpiryConfig)
    return_window_days: Int = Field(default=7, ge=0, le=365)
    claim_days: Int = Field(default=30, ge=0, le=3650)  # an anonymous receipt may be claimed this long
    expiry_reminder_days: Int = Field(default=30, ge=0, le=365)
    hold_ttl_minutes: Int = Field(default=30, ge=1, le=7 * 24 * 60)
    redeem: RedeemConfig = Field(default_factory=RedeemConfig)
    max_negative: Points = 0
    adjust_approval_threshold: Points | None = 1000
    tiers: LadderConfig = Field(default_factory=_default_ladder)
    benefits: dict[str, BenefitConfig] = Field(default_factory=_default_benefits)


@dataclass(frozen=True)
class Rules:
    """The configuration as domain objects, ready for the pure rule functions."""

    version: int
    raw: dict[str, Any]
    config: ProgrammeConfig
    timezone: str
    earn: EarnRules
    actions: dict[str, ActionRule]
    expiry: ExpiryPolicy
    return_window_days: int
    claim_days: int
    expiry_reminder_days: int
    hold_ttl_minutes: int
    redeem: RedeemPolicy
    max_negative: int
    adjust: AdjustPolicy
    ladder: TierLadder
    benefits: dict[str, TierBenefits]

    def benefits_for(self, tier: str) -> TierBenefits:
        return self.benefits.get(tier) or TierBenefits(tier)

    def tier_name(self, code: str) -> str:
        return next((t.name for t in self.ladder.tiers if t.code == code), code)


def rules_build(config: ProgrammeConfig, *, version: int = 0, raw: dict[str, Any] | None = None) -> Rules:
    """Domain objects from a validated configuration; refuses inconsistent rules (422)."""
    tz = config.timezone
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(tz)
        earn = EarnRules(
            points_per_yuan=config.earn.points_per_yuan, rounding=config.earn.rounding,
            category_multipliers=config.earn.category_multipliers, sku_multipliers=config.earn.sku_multipliers,
            excluded_categories=frozenset(config.earn.excluded_categories),
            excluded_skus=frozenset(config.earn.excluded_skus),
            time_multipliers=tuple(TimeMultiplier(**{**m.model_dump(), "categories": frozenset(m.categories)})
                                   for m in config.earn.time_multipliers),
            stacking=config.earn.stacking, timezone=tz,
        )
        ladder = TierLadder(
            tiers=tuple(TierRule(**t.model_dump()) for t in config.tiers.tiers), window=config.tiers.window,
            window_months=config.tiers.window_months, term_months=config.tiers.term_months,
            downgrade_one_step=config.tiers.downgrade_one_step, timezone=tz,
        )
        codes = {t.code for t in ladder.tiers}
        unknown = sorted(set(config.benefits) - codes)
        if unknown:
            raise ValidationFailed(_("Benefits name tiers that are not on the ladder."), code="invalid_rule",
                                   detail={"tiers": unknown})
        benefits = {
            code: TierBenefits(code, **{**b.model_dump(), "discount_excluded_categories": frozenset(b.discount_excluded_categories),
                                        "discount_excluded_skus": frozenset(b.discount_excluded_skus)})
            for code, b in config.benefits.items()
        }
        return Rules(
            version=version, raw=raw or {}, config=config, timezone=tz, earn=earn,
            actions={name: ActionRule(action=name, **a.model_dump()) for name, a in config.actions.items()},
            expiry=ExpiryPolicy(kind=config.expiry.kind, months=config.expiry.months, timezone=tz),
            return_window_days=config.return_window_days, claim_days=config.claim_days,
            expiry_reminder_days=config.expiry_reminder_days, hold_ttl_minutes=config.hold_ttl_minutes,
            redeem=RedeemPolicy(**config.redeem.model_dump()), max_negative=config.max_negative,
            adjust=AdjustPolicy(approval_threshold=config.adjust_approval_threshold), ladder=ladder,
            benefits=benefits,
        )
    except DomainError as exc:
        raise ValidationFailed(_("The programme configuration is not consistent."), code="invalid_rule",
                               detail={"error": exc.message, **{k: str(v) for k, v in exc.params.items()}}) from None
    except (ValueError, KeyError) as exc:
        raise ValidationFailed(_("The programme configuration is not consistent."), code="invalid_rule",
                               detail={"error": str(exc)}) from None


class ProgrammeInvalid(ApplicationError):
    """The stored programme does not validate (e.g. written by another release or by hand).
    Nothing that needs the rules runs on a guess: earning on default rules would hand out
    points the operator never set, so every such request answers 503 until the programme
    is corrected (PUT /loyalty/programme), and `memberhub check` / `serve` report it."""

    status = 503
    code = "programme_invalid"
    default_message = _(
        "The loyalty programme's stored configuration is not valid; an operator must correct it before points can be earned or spent.")  # noqa: E501


def programme_problems(raw: Any) -> list[str]:
    """What is wrong with a stored programme document (empty: it is valid)."""
    try:
        config = ProgrammeConfig.model_validate(raw)
    except PydanticValidationError as exc:
        return [f"{'.'.join(str(p) for p in e['loc']) or '(document)'}: {e['msg']}" for e in exc.errors()]
    try:
        rules_build(config)
    except ValidationFailed as exc:
        return [f"{exc.code}: {exc.detail}"]
    return []


def stored_programme_problems() -> list[str]:
    """`programme_problems` of the programme in the database (for `check` and `serve`)."""
    found = rows.one(_CURRENT_SQL, [1])
    if found is None:
        return []  # none stored yet: the defaults are written on first use
    raw = json.loads(found[1]) if isinstance(found[1], str | bytes) else found[1]
    return programme_problems(raw)


_cache: dict[str, tuple[int, Any, Rules]] = {}
_lock = threading.Lock()
_CURRENT_SQL = f'SELECT "version", "config" FROM "{Programme._meta.db_table}" WHERE "id" = %s'


def _row() -> Programme:
    row = Programme.objects.filter(pk=1).first()
    if row is None:
        row, _created = Programme.objects.get_or_create(
            pk=1, defaults={"config": ProgrammeConfig().model_dump(mode="json")})
    return row


def rules_current() -> Rules:
    """The rules in force now: one small read of the version and the stored document (its
    text, not parsed); the parsed rules are cached per process until either changes."""
    found = rows.one(_CURRENT_SQL, [1])
    if found is None:
        _row()
        found = rows.one(_CURRENT_SQL, [1])
    assert found is not None  # the row was just created
    version, text = found
    cached = _cache.get("rules")
    # compare the document too: a rolled-back test transaction can reuse a version number
    if cached is not None and cached[0] == version and cached[1] == text:
        return cached[2]
    raw = json.loads(text) if isinstance(text, str | bytes) else text
    try:
        config = ProgrammeConfig.model_validate(raw)
        rules = rules_build(config, version=version, raw=raw)
    except (PydanticValidationError, ValidationFailed):
        # never default rules in its place: refuse, loudly, until it is corrected
        raise ProgrammeInvalid(detail={"version": version, "problems": programme_problems(raw)[:20]}) from None
    with _lock:
        _cache["rules"] = (version, text, rules)
    return rules


def programme_get(*, actor: Principal) -> dict[str, Any]:
    actor.require(Cap.POINTS_READ)
    rules = rules_current()
    return {"version": rules.version, "config": rules.config.model_dump(mode="json")}


def programme_update(*, actor: Principal, config: ProgrammeConfig, reason: str,
                     expected_version: int | None = None) -> dict[str, Any]:
    """Replace the configuration (validated first), audited with the before and after."""
    actor.require(Cap.PROGRAMME_MANAGE)
    if not reason.strip():
        raise ValidationFailed(_("A reason is required."), code="reason_required")
    rules_build(config)  # refuse an inconsistent ladder or rule before writing anything
    after = config.model_dump(mode="json")
    with transaction.atomic():
        row = _row()
        row = Programme.objects.select_for_update().get(pk=row.pk)
        if expected_version is not None and expected_version != row.version:
            from memberhub.core.errors import Conflict

            raise Conflict(_("The programme was changed meanwhile; reload and try again."),
                           code="programme_version_conflict", detail={"version": row.version})
        before = row.config
        Programme.objects.filter(pk=row.pk).update(config=after, version=F("version") + 1)
        audit_record(actor=actor, action="loyalty.programme_update", target=row, before=before, after=after,
                     reason=reason, diff=True)
    return programme_get(actor=actor) if actor.can(Cap.POINTS_READ) else {"config": after}


def programme_config_set(config: dict[str, Any] | ProgrammeConfig) -> None:
    """Tests and demo: replace the configuration without an actor (not audited)."""
    if isinstance(config, dict):
        config = ProgrammeConfig.model_validate(config)
    rules_build(config)
    row = _row()
    Programme.objects.filter(pk=row.pk).update(config=config.model_dump(mode="json"), version=F("version") + 1)

