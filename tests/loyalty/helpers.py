"""Helpers for loyalty tests: members, purchases and the ledger invariants."""

from __future__ import annotations

from datetime import datetime
from itertools import count
from typing import Any

from memberhub.access.principal import system_principal
from memberhub.loyalty.models import PointsAccount, PointsEntry, PointsLot, Purchase
from memberhub.loyalty.purchases import LineInput, PurchaseInput, PurchaseResult, purchase_record
from memberhub.loyalty.selectors import account_check
from tests.members.factories import member_make

SYSTEM = system_principal("test")
_orders = count(1)
_phones = count(0)


def member(**kw: Any) -> Any:
    return member_make(phone=kw.pop("phone", f"1390000{next(_phones):04d}"), **kw)


def buy(member_id: int | None, paid_fen: int, *, at: datetime | None = None, order_no: str | None = None,
        lines: tuple[LineInput, ...] = (), now: datetime | None = None, channel: str = "offline",
        store: str | None = "SH") -> PurchaseResult:
    data = PurchaseInput(channel=channel, order_no=order_no or f"T{next(_orders):06d}", paid_fen=paid_fen, at=at,
                         lines=lines, store=store, member_id=member_id)
    return purchase_record(actor=SYSTEM, data=data, now=now)


def account(member_id: int) -> PointsAccount:
    return PointsAccount.objects.get(member_id=member_id)


def assert_sound(member_id: int, now: datetime | None = None) -> None:
    """balance = sum of entries = lots (pending included); no negative lot; pending matches."""
    violations = account_check(member_id=member_id, now=now)
    assert violations == [], violations
    acc = account(member_id)
    assert acc.balance == sum(PointsEntry.objects.filter(account=acc).values_list("points", flat=True))
    lots = PointsLot.objects.filter(account=acc)
    assert all(lot.remaining >= 0 for lot in lots)
    assert sum(lot.remaining for lot in lots) == max(acc.balance, 0)
    assert sum(lot.remaining for lot in lots if lot.pending) == acc.pending


def purchases_of(member_id: int) -> list[Purchase]:
    return list(Purchase.objects.filter(member_id=member_id))
