"""The till's quote: member + basket → member price, points it will earn, benefits that apply."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from memberhub.access.principal import Principal
from memberhub.access.roles import Cap
from memberhub.domain.benefits import BasketLine, quote
from memberhub.domain.points_redeem import redeem_limit
from memberhub.loyalty.members import member_resolve
from memberhub.loyalty.models import PointsAccount
from memberhub.loyalty.programme import rules_current


def basket_quote(*, actor: Principal, basket: list[BasketLine], member_id: int | None = None,
                 member_key: str | None = None, at: datetime | None = None) -> dict[str, Any]:
    actor.require(Cap.POINTS_READ)
    at = at or timezone.now()
    member = member_resolve(member_id=member_id, key=member_key, actor=actor)
    rules = rules_current()
    account = PointsAccount.objects.filter(member=member).first() or PointsAccount(member=member)
    tier = account.override_tier if account.override_tier and (
        account.override_ends_at is None or at < account.override_ends_at) else account.tier
    if tier not in {t.code for t in rules.ladder.tiers}:
        tier = rules.ladder.tiers[0].code
    benefits = rules.benefits_for(tier)
    q = quote(benefits=benefits, basket=basket, earn_rules=rules.earn, at=at)
    available = max(account.balance - account.pending, 0)
    limit = redeem_limit(order_fen=q.member_fen, available=available, policy=rules.redeem)
    return {
        "member_id": member.pk, "tier": tier, "tier_name": rules.tier_name(tier),
        "list_fen": q.list_fen, "member_fen": q.member_fen, "discount_fen": q.discount_fen,
        "lines": [{"line_id": line.line_id, "list_fen": line.list_fen, "member_fen": line.member_fen,
                   "discount_fen": line.discount_fen, "discounted": line.discounted} for line in q.lines],
        "points": q.earn.points, "trace": q.earn.trace, "benefits": [b.value for b in q.benefits],
        "free_shipping": benefits.free_shipping, "priority_service": benefits.priority_service,
        "redeem_max_points": limit.max_points, "redeem_max_deduction_fen": limit.max_deduction_fen,
    }
