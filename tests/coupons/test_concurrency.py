"""A coupon with k uses left, redeemed by many requests at once, is used exactly k times."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from memberhub.coupons.models import Coupon, CouponRedemption
from tests.conftest import race_posts
from tests.coupons.factories import basket, coupon_make, template_make
from tests.members.factories import member_make

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 12


def _race(token: str, bodies: list[dict[str, Any]]) -> list[Any]:
    return race_posts(token, "/coupons/redeem", bodies)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_it_uses_a_k_use_coupon_exactly_k_times_under_concurrency(make_key: Callable[..., str], k: int) -> None:
    member = member_make()
    coupon = coupon_make(template_make(uses_per_coupon=k), member.pk)
    bodies = [{"member_id": member.pk, "codes": [coupon.code], "channel": "offline", "store": "SH",
               "order_no": f"SO-{i}", "basket": basket(("L1", "SKU", 20000, 1))} for i in range(THREADS)]
    results = _race(make_key(), bodies)
    ok = [r for r in results if r.status_code == 200]
    assert len(ok) == k, [(r.status_code, r.content[:200]) for r in results]
    for r in results:
        if r.status_code != 200:
            assert r.status_code in (409, 422), r.content
            assert r.json()["code"] in ("coupon_already_used", "coupon_not_applicable")
    coupon.refresh_from_db()
    assert (coupon.uses_left, coupon.status) == (0, "used")
    assert CouponRedemption.objects.filter(coupon=coupon).count() == k


def test_it_redeems_many_coupons_concurrently_without_losing_any(make_key: Callable[..., str]) -> None:
    member = member_make()
    t = template_make()
    coupons = [coupon_make(t, member.pk) for _ in range(THREADS)]
    bodies = [{"member_id": member.pk, "codes": [c.code], "channel": "online", "order_no": f"W-{i}",
               "basket": basket(("L1", "SKU", 20000, 1))} for i, c in enumerate(coupons)]
    results = _race(make_key(), bodies)
    assert [r.status_code for r in results] == [200] * THREADS, [r.content[:200] for r in results]
    assert Coupon.objects.filter(status="used").count() == THREADS


def test_it_refuses_the_same_order_twice_under_concurrency(make_key: Callable[..., str]) -> None:
    member = member_make()
    coupon = coupon_make(template_make(uses_per_coupon=5), member.pk)
    body = {"member_id": member.pk, "codes": [coupon.code], "channel": "offline", "store": "SH",
            "order_no": "SAME", "basket": basket(("L1", "SKU", 20000, 1))}
    results = _race(make_key(), [body] * 6)
    assert all(r.status_code in (200, 409) for r in results), [r.content[:200] for r in results]
    assert CouponRedemption.objects.filter(coupon=coupon).count() == 1
    coupon.refresh_from_db()
    assert coupon.uses_left == 4
