"""积分商城: exchange takes points and stock together; limits; fulfilment; cancel gives both back.

The points ledger is reached through ``memberhub.coupons.seams``. Most tests replace the seam
with a recording fake; the cancellation test runs on the real loyalty ledger.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from memberhub.coupons import seams
from memberhub.coupons.models import Reward, RewardOrder
from tests.conftest import Api
from tests.members.factories import member_make


class FakePoints:
    def __init__(self) -> None:
        self.spent: list[tuple[int, int, str]] = []
        self.returned: list[tuple[int, int, str]] = []
        self.fail = False

    def spend(self, *, member_id: int, points: int, reason: str, ref: str) -> str:
        if self.fail:
            raise seams.PointsUnavailable(code="insufficient_points", status=422)
        self.spent.append((member_id, points, ref))
        return ref

    def give_back(self, *, member_id: int, points: int, reason: str, ref: str) -> str:
        self.returned.append((member_id, points, ref))
        return ref


@pytest.fixture
def points(monkeypatch: pytest.MonkeyPatch) -> FakePoints:
    fake = FakePoints()
    monkeypatch.setattr(seams, "points_spend_for", fake.spend)
    monkeypatch.setattr(seams, "points_return_for", fake.give_back)
    return fake


def _reward(api: Any, **kw: Any) -> dict[str, Any]:
    r = api.post("/rewards", {"name": "帆布袋", "points_price": 1500, "stock_left": 10, **kw})
    assert r.status_code == 201, r.content
    return r.json()


def _exchange(api: Any, reward: dict[str, Any], member: Any, quantity: int = 1) -> Any:
    return api.post(f"/rewards/{reward['id']}/exchange", {"member_id": member.pk, "quantity": quantity})


@pytest.mark.django_db
def test_an_exchange_takes_points_and_stock(admin_api: Any, points: FakePoints) -> None:
    member = member_make()
    reward = _reward(admin_api, cash_fen=990)
    r = _exchange(admin_api, reward, member, quantity=2)
    assert r.status_code == 201, r.content
    assert (r.json()["points_total"], r.json()["cash_fen_total"], r.json()["status"]) == (3000, 1980, "pending")
    assert points.spent == [(member.pk, 3000, f"reward-order:{r.json()['id']}")]
    assert Reward.objects.get().stock_left == 8


@pytest.mark.django_db
def test_limits_stock_and_tiers_are_enforced(admin_api: Any, points: FakePoints) -> None:
    member = member_make()
    limited = _reward(admin_api, per_member_limit=1)
    assert _exchange(admin_api, limited, member).status_code == 201
    r = _exchange(admin_api, limited, member)
    assert r.status_code == 409 and r.json()["code"] == "member_limit_reached"
    monthly = _reward(admin_api, period_limit_count=1, period_limit_period="month")
    _exchange(admin_api, monthly, member)
    assert _exchange(admin_api, monthly, member).json()["code"] == "period_limit_reached"
    scarce = _reward(admin_api, stock_left=1)
    assert _exchange(admin_api, scarce, member, quantity=2).json()["code"] == "out_of_stock"
    gold_only = _reward(admin_api, tiers=["gold"])
    assert _exchange(admin_api, gold_only, member).json()["code"] == "tier_not_eligible"


@pytest.mark.django_db
def test_no_points_means_no_stock_taken(admin_api: Any, points: FakePoints) -> None:
    member = member_make()
    reward = _reward(admin_api)
    points.fail = True
    r = _exchange(admin_api, reward, member)
    assert r.status_code == 422
    assert Reward.objects.get().stock_left == 10 and not RewardOrder.objects.exists()


@pytest.mark.django_db
def test_without_the_points_ledger_the_exchange_is_refused_cleanly(admin_api: Any,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(seams, "_loyalty", lambda *a, **k: None)
    member = member_make()
    reward = _reward(admin_api)
    r = _exchange(admin_api, reward, member)
    assert r.status_code == 409 and r.json()["code"] == "points_unavailable"
    assert Reward.objects.get().stock_left == 10


def _points_lots(member: Any) -> list[tuple[int, int]]:
    from memberhub.loyalty.models import PointsLot

    return list(PointsLot.objects.filter(account__member=member).order_by("pk").values_list("points", "remaining"))


@pytest.mark.django_db
def test_fulfilment_moves_and_cancel_returns_points_to_the_lots_and_stock(admin_api: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from memberhub.access.principal import system_principal
    from memberhub.loyalty.models import PointsEntry
    from memberhub.loyalty.points import adjustment_request
    from tests.loyalty.helpers import assert_sound

    member = member_make()
    system = system_principal("test")
    adjustment_request(actor=system, points=900, reason="goodwill", member_id=member.pk,
                       now=timezone.now() - timedelta(days=400))  # the older lot: drawn first
    adjustment_request(actor=system, points=900, reason="goodwill", member_id=member.pk)
    reward = _reward(admin_api)
    order = _exchange(admin_api, reward, member).json()
    assert _points_lots(member) == [(900, 0), (900, 300)]
    r = admin_api.post(f"/rewards/orders/{order['id']}/status", {"status": "shipped", "tracking_no": "SF123"})
    assert r.status_code == 200 and r.json()["tracking_no"] == "SF123"
    r = admin_api.post(f"/rewards/orders/{order['id']}/status", {"status": "cancelled", "reason": "缺货"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert _points_lots(member) == [(900, 900), (900, 900)]  # back to the very lots, dates kept
    back = PointsEntry.objects.filter(account__member=member, kind="reverse", rule="return").exclude(points=0)
    assert sorted(back.values_list("points", flat=True)) == [600, 900]
    assert_sound(member.pk)
    assert Reward.objects.get().stock_left == 10
    r = admin_api.post(f"/rewards/orders/{order['id']}/status", {"status": "shipped"})
    assert r.status_code == 422 and r.json()["code"] == "illegal_fulfilment_transition"
    orders = admin_api.get("/rewards/orders", params={"member_id": member.pk}).json()["items"]
    assert [o["status"] for o in orders] == ["cancelled"]


@pytest.mark.django_db
def test_an_exchange_without_enough_points_is_refused_on_the_real_ledger(admin_api: Any) -> None:
    member = member_make()
    reward = _reward(admin_api)
    r = _exchange(admin_api, reward, member)
    assert r.status_code == 422 and r.json()["code"] == "insufficient_points"
    assert Reward.objects.get().stock_left == 10 and not RewardOrder.objects.exists()


@pytest.mark.django_db
def test_a_picked_up_order_is_final(admin_api: Any, points: FakePoints, staff_api: Any) -> None:
    member = member_make()
    order = _exchange(admin_api, _reward(admin_api), member).json()
    admin_api.post(f"/rewards/orders/{order['id']}/status", {"status": "shipped"})
    cashier = staff_api("cashier", ["SH"])
    assert cashier.post(f"/rewards/orders/{order['id']}/status", {"status": "picked_up"}).status_code == 200
    assert admin_api.post(f"/rewards/orders/{order['id']}/status", {"status": "cancelled"}).status_code == 422
    assert cashier.post("/rewards", {"name": "x", "points_price": 1}).status_code == 403


@pytest.mark.django_db(transaction=True)
def test_stock_is_never_oversold_under_concurrency(make_key: Callable[..., str], points: FakePoints) -> None:
    token = make_key()
    members = [member_make(phone=f"1380013{8000 + i:04d}") for i in range(10)]
    reward = _reward(Api(Client(), token), stock_left=3)
    barrier = threading.Barrier(len(members))
    results: list[Any] = [None] * len(members)

    def run(i: int) -> None:
        try:
            api = Api(Client(), token)
            barrier.wait(10)
            results[i] = _exchange(api, reward, members[i])
        except Exception as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(members))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(r.status_code for r in results) == [201] * 3 + [409] * 7, results
    assert Reward.objects.get().stock_left == 0
    assert RewardOrder.objects.count() == 3


@pytest.mark.django_db
def test_the_real_points_ledger_refuses_a_member_without_points(admin_api: Any) -> None:
    """No fake: the seam reaches loyalty's points_redeem (or refuses if it is not there)."""
    member = member_make()
    reward = _reward(admin_api)
    r = _exchange(admin_api, reward, member)
    assert 400 <= r.status_code < 500, r.content
    assert Reward.objects.get().stock_left == 10 and not RewardOrder.objects.exists()
