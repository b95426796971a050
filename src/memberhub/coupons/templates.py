"""Coupon templates: create and change them, and read them as the domain's frozen dataclasses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from memberhub.access.principal import Principal
from memberhub.access.roles import Cap
from memberhub.audit.services import audit_record
from memberhub.core import events
from memberhub.core.errors import Conflict, NotFound, ValidationFailed
from memberhub.coupons.models import CouponTemplate
from memberhub.domain import coupon_rules as rules
from memberhub.domain.coupon_codes import code_normalize
from memberhub.stores.models import Store

ISSUE_EVENTS = (events.MEMBER_REGISTERED, events.MEMBER_BIRTHDAY, events.TIER_UPGRADED)
CHANNELS = ("online", "offline")
# Fields an operator may change once coupons exist; the rest define what was promised.
MUTABLE_FIELDS = frozenset({"name", "description", "is_active", "total_quantity", "budget_fen", "per_member_limit",
                            "points_price", "claim_code", "issue_rules", "not_after"})


def template_to_domain(t: CouponTemplate) -> rules.CouponTemplate:
    validity: rules.Validity
    if t.validity_kind == CouponTemplate.ValidityKind.FIXED:
        assert t.valid_from is not None and t.valid_until is not None
        validity = rules.FixedValidity(valid_from=t.valid_from, valid_until=t.valid_until)
    else:
        validity = rules.RelativeValidity(days=t.valid_days or 0, delay_days=t.delay_days,
                                          whole_days=t.whole_days, not_after=t.not_after)
    return rules.CouponTemplate(
        template_id=str(t.pk),
        kind=rules.CouponKind(t.kind),
        validity=validity,
        conditions=rules.CouponConditions(
            min_spend_fen=t.min_spend_fen,
            include_skus=frozenset(t.include_skus), exclude_skus=frozenset(t.exclude_skus),
            include_categories=frozenset(t.include_categories), exclude_categories=frozenset(t.exclude_categories),
            store_ids=frozenset(t.store_codes), channels=frozenset(rules.Channel(c) for c in t.channels),
            tiers=frozenset(t.tiers), first_purchase_only=t.first_purchase_only,
        ),
        amount_off_fen=t.amount_off_fen, percent_off_bp=t.percent_off_bp, cap_fen=t.cap_fen,
        sku=t.sku or None, exchange_price_fen=t.exchange_price_fen,
        stacks_with_coupons=t.stacks_with_coupons, stacks_with_tier_discount=t.stacks_with_tier_discount,
        per_member_limit=t.per_member_limit, total_quantity=t.total_quantity, budget_fen=t.budget_fen,
    )


def template_view(t: CouponTemplate) -> dict[str, Any]:
    """The audit view: every field, JSON-safe."""
    out: dict[str, Any] = {}
    for f in CouponTemplate._meta.concrete_fields:
        value = getattr(t, f.attname)
        out[f.attname] = value.isoformat() if isinstance(value, datetime) else value
    return out


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    v = dict(values)
    bad_channels = [c for c in v.get("channels") or [] if c not in CHANNELS]
    if bad_channels:
        raise ValidationFailed(_("Unknown channel."), code="invalid_channel", detail={"channels": bad_channels})
    codes = v.get("store_codes") or []
    known = set(Store.objects.filter(code__in=codes).values_list("code", flat=True))
    if set(codes) - known:
        raise ValidationFailed(_("Unknown store."), code="store_not_found", detail={"stores": sorted(set(codes) - known)})
    for rule in v.get("issue_rules") or []:
        if not isinstance(rule, dict) or rule.get("event") not in ISSUE_EVENTS or set(rule) - {"event", "to_tiers"}:
            raise ValidationFailed(_("An issue rule names an unknown event."), code="invalid_issue_rule",
                                   detail={"rule": rule, "events": list(ISSUE_EVENTS)})
    if v.get("claim_code"):
        v["claim_code"] = code_normalize(v["claim_code"])
    kind = v.get("validity_kind")
    if kind == CouponTemplate.ValidityKind.FIXED and (not v.get("valid_from") or not v.get("valid_until")):
        raise ValidationFailed(_("Fixed validity needs valid_from and valid_until."), code="validity_incomplete")
    if kind == CouponTemplate.ValidityKind.RELATIVE and not v.get("valid_days"):
        raise ValidationFailed(_("Validity in days needs valid_days."), code="validity_incomplete")
    return v


def _claim_code_free(code: str | None, exclude_pk: int | None = None) -> None:
    qs = CouponTemplate.objects.filter(claim_code=code)
    if exclude_pk is not None:
        qs = qs.exclude(pk=exclude_pk)
    if code and qs.exists():
        raise Conflict(_("This claim code is already used by another template."), code="claim_code_taken")


def template_create(*, actor: Principal, values: dict[str, Any]) -> CouponTemplate:
    actor.require(Cap.COUPONS_MANAGE)
    values = _clean(values)
    with transaction.atomic():
        _claim_code_free(values.get("claim_code"))
        template = CouponTemplate(**values)
        template.pk = 0
        template_to_domain(template)  # the domain refuses inconsistent templates (422)
        template.pk = None
        template.save()
        audit_record(actor=actor, action="coupon_template.create", target=template, after=template_view(template))
    return template


def template_get(*, template_id: int, for_update: bool = False) -> CouponTemplate:
    qs = CouponTemplate.objects.select_for_update() if for_update else CouponTemplate.objects
    template = qs.filter(pk=template_id).first()
    if template is None:
        raise NotFound(_("No such coupon template."), code="coupon_template_not_found")
    return template


def template_update(*, actor: Principal, template_id: int, changes: dict[str, Any]) -> CouponTemplate:
    """Once issued, only the name, limits, budget, ways to obtain it and the campaign end change."""
    actor.require(Cap.COUPONS_MANAGE)
    with transaction.atomic():
        template = template_get(template_id=template_id, for_update=True)
        locked = set(changes) - MUTABLE_FIELDS
        if locked and template.issued_count:
            raise Conflict(_("These fields cannot change once coupons have been issued."),
                           code="template_in_use", detail={"fields": sorted(locked)})
        before = template_view(template)
        merged = _clean({**{k: before[k] for k in changes if k in before}, **changes,
                         "validity_kind": changes.get("validity_kind", template.validity_kind),
                         "valid_from": changes.get("valid_from", template.valid_from),
                         "valid_until": changes.get("valid_until", template.valid_until),
                         "valid_days": changes.get("valid_days", template.valid_days)})
        _claim_code_free(merged.get("claim_code"), exclude_pk=template.pk)
        for key, value in merged.items():
            if key in changes or key == "claim_code" and "claim_code" in changes:
                setattr(template, key, value)
        if template.total_quantity is not None and template.total_quantity < template.issued_count:
            raise Conflict(_("The total quantity is below what was already issued."), code="quantity_below_issued",
                           detail={"issued": template.issued_count})
        if template.budget_fen is not None and template.budget_fen < template.budget_spent_fen:
            raise Conflict(_("The budget is below what was already given."), code="budget_below_spent",
                           detail={"spent_fen": template.budget_spent_fen})
        template_to_domain(template)
        template.save()
        audit_record(actor=actor, action="coupon_template.update", target=template, before=before,
                     after=template_view(template), diff=True)
    return template
