"""Demo stored value: 充1000送100 / 充500送30 rules and a few wallets with history."""

from __future__ import annotations

from typing import Any

from memberhub.access.principal import system_principal
from memberhub.members.models import Member
from memberhub.wallet.models import TopUpRule


def wallet_demo_load(out: Any) -> None:
    from memberhub.wallet.services import topup_rule_create, wallet_spend, wallet_topup

    actor = system_principal("demo")
    if TopUpRule.objects.exists():
        return
    for threshold, bonus in ((100000, 10000), (50000, 3000)):
        topup_rule_create(actor=actor, values={"threshold_fen": threshold, "bonus_fen": bonus})
    ids = list(Member.objects.filter(status="active").order_by("pk").values_list("pk", flat=True)[:30])
    for i, member_id in enumerate(ids):
        wallet_topup(actor=actor, member_id=member_id, amount_fen=50000 if i % 2 else 100000, payment_ref=f"demo-{i}")
        wallet_spend(actor=actor, member_id=member_id, amount_fen=12800 + 100 * i, order_no=f"demo-order-{i}")
    out.write(f"Demo wallets: {len(ids)} members topped up.\n")
