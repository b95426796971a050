"""A coupon with k uses, spent by concurrent checkouts, is used exactly k times, and the
checkouts that lost the race leave nothing behind (no purchase, no points, no stored value)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from memberhub.access.principal import system_principal
from memberhub.checkout.models import Checkout
from memberhub.coupons.models import CouponRedemption
from memberhub.loyalty.models import PointsEntry, Purchase
from memberhub.loyalty.points import adjustment_request
from memberhub.wallet.models import Wallet
from memberhub.wallet.services import wallet_topup
from tests.conftest import race_posts
from tests.coupons.factories import coupon_make, template_make
from tests.loyalty.helpers import assert_sound
from tests.members.factories import member_make

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 10


def _race(token: str, bodies: list[dict[str, Any]]) -> list[Any]:
    return race_posts(token, "/checkout", bodies)


@pytest.mark.parametrize("k", [1, 3])
def test_a_k_use_coupon_is_used_by_exactly_k_concurrent_checkouts(make_key: Callable[..., str], k: int) -> None:
    system = system_principal("test")
    member = member_make()
    adjustment_request(actor=system, points=1000, reason="welcome", member_id=member.pk)
    wallet_topup(actor=system, member_id=member.pk, amount_fen=THREADS * 1000, payment_ref="PAY", store="SH")
    coupon = coupon_make(template_make(uses_per_coupon=k), member.pk)
    bodies = [{"member_id": member.pk, "channel": "offline", "store": "SH", "order_no": f"SO-{i}",
               "lines": [{"line_id": "L1", "sku": "SKU", "unit_price_fen": 20000}],
               "coupon_codes": [coupon.code], "points": 100, "wallet_fen": 1000} for i in range(THREADS)]
    results = _race(make_key(), bodies)
    ok = [r for r in results if r.status_code == 201]
    assert len(ok) == k, [(r.status_code, r.content[:200]) for r in results]
    for r in results:
        if r.status_code != 201:
            assert r.status_code in (409, 422), r.content
            assert r.json()["code"] in ("coupon_already_used", "coupon_not_applicable"), r.content
    coupon.refresh_from_db()
    assert (coupon.uses_left, coupon.status) == (0, "used")
    assert CouponRedemption.objects.filter(coupon=coupon).count() == k
    assert Purchase.objects.count() == Checkout.objects.count() == k
    assert PointsEntry.objects.filter(kind="redeem").count() == k  # one lot, one draw per checkout
    wallet = Wallet.objects.get(member=member)
    assert wallet.principal_fen + wallet.bonus_fen == (THREADS - k) * 1000
    assert_sound(member.pk)
