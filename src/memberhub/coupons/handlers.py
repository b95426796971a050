"""Issue on events (新会员 / 生日 / 升级): templates with a matching ``issue_rules`` entry.

Each issue carries ``source_ref`` = event:member[:year|tier], unique per template, so a
re-delivered event never gives the coupon twice.
"""

from __future__ import annotations

import logging
from typing import Any

from django.utils import timezone

from memberhub.access.principal import system_principal
from memberhub.core import events
from memberhub.core.errors import ApplicationError
from memberhub.coupons.models import Coupon, CouponTemplate

log = logging.getLogger("memberhub.coupons")


def templates_for_event(event: str, *, tier: str | None = None) -> list[CouponTemplate]:
    # JSON containment is not portable to SQLite; few templates carry rules, so filter here.
    out = []
    for t in CouponTemplate.objects.filter(is_active=True).exclude(issue_rules=[]):
        for rule in t.issue_rules:
            if rule.get("event") == event and (not rule.get("to_tiers") or tier in rule["to_tiers"]):
                out.append(t)
                break
    return out


def _benefit_template(ref: str) -> CouponTemplate | None:
    """A tier benefit's coupon (`benefits.<tier>.birthday_coupon_template`): a template id."""
    template = CouponTemplate.objects.filter(pk=int(ref), is_active=True).first() if ref.strip().isdigit() else None
    if template is None:
        log.warning("the tier benefit names coupon template %r, which is not an active template", ref)
    return template


def coupons_issue_on_event(*, event: str, member_id: int, ref: str, tier: str | None = None,
                           benefit_template: str | None = None) -> int:
    from memberhub.coupons.issuing import coupon_issue

    actor = system_principal(f"event:{event}")
    issued = 0
    templates = templates_for_event(event, tier=tier)
    extra = _benefit_template(benefit_template) if benefit_template else None
    if extra is not None and extra.pk not in {t.pk for t in templates}:
        templates.append(extra)
    # source_ref is unique per template: the same event again (a re-run) issues nothing twice
    for template in templates:
        try:
            issued += len(coupon_issue(actor=actor, template_id=template.pk, member_id=member_id,
                                       source=Coupon.Source.EVENT, source_ref=f"{event}:{member_id}:{ref}"))
        except ApplicationError as exc:  # sold out, limit reached, campaign over: not an error here
            log.info("no %s coupon for member %s on %s: %s", template.pk, member_id, event, exc.code)
    return issued


@events.subscribe(events.MEMBER_REGISTERED)
def on_member_registered(*, member_id: int, **_: Any) -> None:
    coupons_issue_on_event(event=events.MEMBER_REGISTERED, member_id=member_id, ref="")


@events.subscribe(events.MEMBER_BIRTHDAY)
def on_member_birthday(*, member_id: int, year: int | None = None, tier: str | None = None,
                       coupon_template: str | None = None, **_: Any) -> None:
    """Templates whose rule names this event (and the member's tier, when it lists `to_tiers`),
    and the tier's own `birthday_coupon_template`: once per member and year."""
    coupons_issue_on_event(event=events.MEMBER_BIRTHDAY, member_id=member_id,
                           ref=str(year or timezone.localdate().year), tier=tier, benefit_template=coupon_template)


@events.subscribe(events.TIER_UPGRADED)
def on_tier_upgraded(*, member_id: int, to_tier: str | None = None, tier: str | None = None, **_: Any) -> None:
    new_tier = to_tier or tier
    coupons_issue_on_event(event=events.TIER_UPGRADED, member_id=member_id, ref=str(new_tier or ""), tier=new_tier)
