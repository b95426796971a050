"""Demo coupons and rewards: a few templates of every kind, coupons for some members, a catalogue."""

from __future__ import annotations

from typing import Any

from memberhub.access.principal import system_principal
from memberhub.core import events
from memberhub.coupons.models import CouponTemplate, Reward
from memberhub.members.models import Member

TEMPLATES: list[dict[str, Any]] = [
    {"name": "满100减20", "kind": "amount_off", "amount_off_fen": 2000, "min_spend_fen": 10000,
     "validity_kind": "relative", "valid_days": 30},
    {"name": "全场8折 最多减50元", "kind": "percent_off", "percent_off_bp": 2000, "cap_fen": 5000,
     "validity_kind": "relative", "valid_days": 14, "exclude_categories": ["特价"]},
    {"name": "免邮券", "kind": "free_shipping", "channels": ["online"], "validity_kind": "relative", "valid_days": 60},
    {"name": "咖啡兑换券", "kind": "exchange", "sku": "COFFEE-LATTE", "validity_kind": "relative", "valid_days": 30,
     "points_price": 800},
    {"name": "新人礼 满50减10", "kind": "amount_off", "amount_off_fen": 1000, "min_spend_fen": 5000,
     "first_purchase_only": True, "validity_kind": "relative", "valid_days": 30,
     "issue_rules": [{"event": events.MEMBER_REGISTERED}]},
    {"name": "生日礼 满200减50", "kind": "amount_off", "amount_off_fen": 5000, "min_spend_fen": 20000,
     "validity_kind": "relative", "valid_days": 30, "issue_rules": [{"event": events.MEMBER_BIRTHDAY}]},
]
REWARDS: list[dict[str, Any]] = [
    {"name": "品牌帆布袋", "points_price": 1500, "stock_left": 200, "per_member_limit": 2},
    {"name": "保温杯", "points_price": 3000, "cash_fen": 2900, "stock_left": 50, "period_limit_count": 1,
     "period_limit_period": "month"},
    {"name": "金卡专享 咖啡机", "points_price": 50000, "stock_left": 5, "tiers": ["gold", "diamond"]},
]


def coupons_demo_load(out: Any) -> None:
    from memberhub.coupons.issuing import coupon_issue
    from memberhub.coupons.rewards import reward_create
    from memberhub.coupons.templates import template_create

    actor = system_principal("demo")
    if CouponTemplate.objects.exists():
        return  # a second demo run
    made = [template_create(actor=actor, values=values) for values in TEMPLATES]
    for member_id in Member.objects.order_by("pk").values_list("pk", flat=True)[:100]:
        coupon_issue(actor=actor, template_id=made[member_id % 3].pk, member_id=member_id, source="manual")
    for values in REWARDS:
        if not Reward.objects.filter(name=values["name"]).exists():
            reward_create(actor=actor, values=values)
    out.write(f"Demo coupons: {len(made)} templates, 100 coupons issued, {len(REWARDS)} rewards.\n")
