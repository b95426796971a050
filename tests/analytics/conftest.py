"""Analytics test data: members and purchases through the real services, at chosen times."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from itertools import count
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from memberhub.access.principal import system_principal
from memberhub.loyalty.purchases import PurchaseInput, RefundInput, purchase_record, purchase_refund
from memberhub.members.services import MemberInput, member_register

SH = ZoneInfo("Asia/Shanghai")
SYSTEM = system_principal("test")
_orders = count(1)
_phones = count(0)


def at(day: str, hour: int = 12, minute: int = 0) -> dt.datetime:
    """A local (Shanghai) time on a day."""
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour, minute), tzinfo=SH)


def member(store: str | None = "SH", joined: str = "2024-01-01") -> Any:
    return member_register(actor=SYSTEM, data=MemberInput(phone=f"1370000{next(_phones):04d}", home_store=store),
                           now=at(joined, 9))


def buy(member_id: int | None, paid_fen: int, when: dt.datetime, *, store: str | None = "SH",
        channel: str = "offline") -> Any:
    order = f"A{next(_orders):06d}"
    purchase_record(actor=SYSTEM, data=PurchaseInput(channel=channel, order_no=order, paid_fen=paid_fen, at=when,
                                                     store=store, member_id=member_id))
    return order


def refund(order: str, fen: int | None, when: dt.datetime, channel: str = "offline") -> None:
    lines = {"1": fen} if fen is not None else None
    purchase_refund(actor=SYSTEM, data=RefundInput(channel=channel, order_no=order, refund_no=f"R-{order}",
                                                   lines=lines, at=when))


@dataclass
class Shop:
    members: dict[str, Any]
    # what the domain functions should see: (member key, local day, net fen)
    transactions: list[tuple[str, dt.date, int]] = field(default_factory=list)


@pytest.fixture
def shop(stores: Any) -> Shop:
    """Eight members' 2024 purchases: refunds (partial and whole), two orders on one day, times
    near local midnight, a merged member, an erased member, an anonymous order, a 2025 order."""
    from memberhub.members.merge import member_merge
    from memberhub.members.privacy import member_erase

    m = {k: member("BJ" if k == "m6" else "SH") for k in ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8")}
    s = Shop(m)

    def b(key: str | None, fen: int, when: dt.datetime, *, net: int | None = None, store: str = "SH") -> str:
        order = buy(m[key].pk if key else None, fen, when, store=store)
        if key is not None and (net is None or net > 0):
            s.transactions.append(("m1" if key == "m7" else key, when.date(), fen if net is None else net))
        return order

    for day, fen in (("2024-01-05", 10000), ("2024-02-10", 8000), ("2024-03-15", 12000), ("2024-06-01", 9000)):
        b("m1", fen, at(day))
    b("m1", 15000, at("2024-11-20", 0, 30))  # 16:30 UTC the day before: the local day counts
    b("m2", 5000, at("2024-03-01"))
    partial = b("m2", 7000, at("2024-09-01"), net=5000)
    refund(partial, 2000, at("2024-09-03"))
    b("m3", 20000, at("2024-05-05", 10))
    b("m3", 3000, at("2024-05-05", 18))
    b("m3", 4000, at("2024-12-01"))
    b("m4", 3000, at("2024-07-07"))
    whole = b("m5", 6000, at("2024-02-02"), net=0)
    refund(whole, None, at("2024-02-05"))
    b("m5", 6500, at("2024-10-10"))
    b("m6", 9900, at("2024-04-04"), store="BJ")
    b("m6", 4400, at("2024-08-08", 23, 30), store="BJ")
    b("m7", 7700, at("2024-04-20"))
    b("m8", 5000, at("2024-03-03"))
    b("m8", 5000, at("2024-06-06"))
    b(None, 9999, at("2024-05-05"))
    buy(m["m2"].pk, 1234, at("2025-01-15"))  # after the observation end: ignored
    member_merge(actor=SYSTEM, survivor_id=m["m1"].pk, absorbed_id=m["m7"].pk, reason="duplicate")
    member_erase(actor=SYSTEM, member_id=m["m8"].pk, reason="member asked")
    return s


@pytest.fixture
def run_jobs(django_capture_on_commit_callbacks: Any) -> Any:
    """Background jobs are enqueued on commit; run them (HUEY is immediate in tests)."""

    def call(fn: Any, *args: Any, **kw: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kw)

    return call


def simulated_histories(n: int, seed: int) -> list[tuple[int, int, int]]:
    """(customer, day of 2024, fen): BG/NBD-like buying (Poisson while alive, drop-out after a
    purchase), so the models have something real to fit."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for c in range(n):
        join, lam, p, scale = int(rng.integers(0, 300)), rng.gamma(1.5, 1 / 40), rng.beta(1.0, 3.0), rng.gamma(4, 1500)
        t, days = float(join), [float(join)]
        while not (len(days) > 1 and rng.random() < p):
            t += rng.exponential(1 / lam)
            if t >= 366:
                break
            days.append(t)
        out.extend((c, int(d), int(rng.gamma(3, scale / 3)) + 100) for d in days)
    return out


@pytest.fixture
def crowd(shop: Shop) -> Shop:
    """The shop plus 50 simulated members' purchases, bulk-created (volume, not behaviour)."""
    from memberhub.loyalty.models import Purchase
    from memberhub.members.models import Member

    rows = simulated_histories(50, seed=0)
    made = Member.objects.bulk_create([Member(card_code=f"99{i:014d}", registered_at=at("2024-01-01"))
                                       for i in range(50)])
    day0 = dt.date(2024, 1, 1)
    Purchase.objects.bulk_create([
        Purchase(member=made[c], channel="online", order_no=f"SIM{i:06d}", at=at((day0 + dt.timedelta(days=d)).isoformat()),
                 total_fen=fen, paid_fen=fen)
        for i, (c, d, fen) in enumerate(rows)
    ])
    for i, m in enumerate(made):
        shop.members[f"sim{i}"] = m
    shop.transactions.extend((f"sim{c}", day0 + dt.timedelta(days=d), fen) for c, d, fen in rows)
    return shop
