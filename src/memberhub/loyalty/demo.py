"""Demo purchases drawn from the BG/NBD and Gamma-Gamma processes with known parameters.

Every active demo member buys first on the day they registered, then as the models assume
(Poisson purchasing while alive, dropping out after a purchase with a member-specific
probability, Gamma-distributed order values), so `memberhub analytics clv` on the demo fits
the default model and recovers DEMO_PURCHASES and DEMO_SPEND within their standard errors
(tests/analytics/test_demo_clv.py). Seeded: the same members get the same history.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from memberhub.core.output import Writer
from memberhub.domain.clv.bgnbd import BgNbdParams
from memberhub.domain.clv.gammagamma import GammaGammaParams
from memberhub.members.models import Member

if TYPE_CHECKING:
    from memberhub.access.principal import Principal
    from memberhub.domain.clv.simulate import History

# Days: a purchase every ~100 days while active (r/alpha), ~1 in 6 drops out after a repeat
# purchase (a/(a+b)); orders of ~200 yuan on average (gamma p/(q-1), in fen).
DEMO_PURCHASES = BgNbdParams(r=0.6, alpha=60.0, a=0.8, b=4.0)
DEMO_SPEND = GammaGammaParams(p=4.0, q=5.0, gamma=20000.0)
SEED = 20261207
STORES = ["SH-NJL", "BJ-SLT", "GZ-TH", "SZ-WXC", "HZ-XH", "ONLINE"]
CATALOGUE = [("SKU-TEA-01", "food"), ("SKU-CRM-02", "beauty"), ("SKU-TSH-03", "apparel"), ("SKU-BAG-04", "apparel")]


def demo_purchases_load(out: Writer) -> None:
    """Idempotent: order numbers repeat, so a second run replays every purchase."""
    import numpy as np

    from memberhub.access.principal import system_principal
    from memberhub.domain.clv.simulate import simulate_histories

    actor = system_principal("demo")
    now = timezone.now()
    members = list(Member.objects.filter(status=Member.Status.ACTIVE).order_by("pk").values_list("pk", "registered_at"))
    if not members:
        return
    rng = np.random.default_rng(SEED)
    first = [registered + timedelta(minutes=5) for _, registered in members]
    ages = np.array([max((now - at) / timedelta(days=1), 0.0) for at in first])
    histories = simulate_histories(DEMO_PURCHASES, DEMO_SPEND, ages, rng)
    with transaction.atomic():  # one commit, not one fsync per demo purchase
        made = _record(members, first, histories, actor)
    out.write(f"Demo loyalty data: {made} new purchases.\n")


def _record(members: list[tuple[int, datetime]], first: list[datetime], histories: list[History],
            actor: Principal) -> int:
    from memberhub.loyalty.purchases import LineInput, PurchaseInput, purchase_record

    made = 0
    for (member_id, _), start, history in zip(members, first, histories, strict=True):
        store = STORES[member_id % len(STORES)]
        for n, (day, amount) in enumerate(zip(history.days, history.amounts, strict=True)):
            fen = max(int(round(amount)), 100)
            sku, category = CATALOGUE[(member_id + n) % len(CATALOGUE)]
            data = PurchaseInput(
                channel="online" if store == "ONLINE" else "offline", order_no=f"DEMO-{member_id}-{n}",
                paid_fen=fen, lines=(LineInput(sku=sku, category=category, qty=1, unit_price_fen=fen, paid_fen=fen),),
                store=store, member_id=member_id, at=start + timedelta(days=day),
            )
            if not purchase_record(actor=actor, data=data).replayed:
                made += 1
    return made
