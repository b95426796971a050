"""Concurrent payments never take a wallet or a gift card below zero, and lose nothing."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from memberhub.access.principal import system_principal
from memberhub.wallet.models import GiftCard, Wallet, WalletMovement
from memberhub.wallet.selectors import wallet_check
from memberhub.wallet.services import wallet_topup
from tests.conftest import Api
from tests.members.factories import member_make

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 12


def _race(token: str, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            api = Api(Client(), token)
            barrier.wait(10)
            results[i] = api.post(*calls[i])
        except Exception as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not [r for r in results if isinstance(r, Exception)], results
    return results


def test_concurrent_payments_never_overdraw_the_wallet(make_key: Callable[..., str]) -> None:
    member = member_make()
    wallet_topup(actor=system_principal("t"), member_id=member.pk, amount_fen=10000, payment_ref="P")
    calls = [(f"/wallet/{member.pk}/spend", {"amount_fen": 3000, "order_no": f"O{i}"}) for i in range(THREADS)]
    results = _race(make_key(), calls)
    ok = [r for r in results if r.status_code == 200]
    assert len(ok) == 3, [(r.status_code, r.content[:120]) for r in results]
    assert {r.json()["code"] for r in results if r.status_code != 200} == {"insufficient_balance"}
    wallet = Wallet.objects.get(member=member)
    assert (wallet.principal_fen, wallet.bonus_fen) == (1000, 0)
    assert wallet_check(wallet=wallet) == []
    assert WalletMovement.objects.filter(kind="spend").count() == 3


def test_concurrent_topups_and_payments_add_up(make_key: Callable[..., str]) -> None:
    member = member_make()
    calls = [(f"/wallet/{member.pk}/topup", {"amount_fen": 1000, "payment_ref": f"P{i}"}) for i in range(THREADS)]
    results = _race(make_key(), calls)
    assert [r.status_code for r in results] == [201] * THREADS, [r.content[:200] for r in results]
    wallet = Wallet.objects.get(member=member)
    assert wallet.principal_fen == 1000 * THREADS
    assert wallet_check(wallet=wallet) == []


def test_concurrent_gift_card_payments_never_overdraw(make_key: Callable[..., str], stores: Any) -> None:
    from memberhub.wallet.giftcards import gift_cards_issue

    [card] = gift_cards_issue(actor=system_principal("t"), count=1, amount_fen=5000, batch_ref="B")
    calls = [(f"/wallet/gift-cards/{card.code}/spend", {"amount_fen": 2000, "order_no": f"O{i}"}) for i in range(THREADS)]
    results = _race(make_key(), calls)
    assert sum(r.status_code == 200 for r in results) == 2
    card.refresh_from_db()
    assert card.balance_fen == 1000
    assert GiftCard.objects.get(pk=card.pk).movements.filter(kind="spend").count() == 2


def test_top_ups_racing_a_merge_never_land_on_the_absorbed_member(make_key: Callable[..., str]) -> None:
    """Top-ups for B while B is merged into A: each is booked before the merge (and moved to
    A with the rest) or refused after it (409 `member_not_live`: the till picks the member
    anew); none lands on B's wallet after the merge, which ends empty, and no money is missing."""
    token = make_key()
    survivor, absorbed = member_make(phone="13812340001"), member_make(phone="13812340002")
    system = system_principal("test")
    wallet_topup(actor=system, member_id=absorbed.pk, amount_fen=10_000, payment_ref="before")
    calls: list[tuple[str, dict[str, Any]]] = [
        ("/members/merge", {"survivor_id": survivor.pk, "absorbed_id": absorbed.pk, "reason": "duplicate"})]
    calls += [(f"/wallet/{absorbed.pk}/topup", {"amount_fen": 1_000, "payment_ref": f"race-{i}"})
              for i in range(THREADS - 1)]
    results = _race(token, calls)
    assert results[0].status_code == 200, results[0].content
    statuses = sorted(r.status_code for r in results[1:])
    assert set(statuses) <= {201, 200, 409}
    booked = statuses.count(201)
    assert all(r.json()["code"] == "member_not_live" for r in results[1:] if r.status_code == 409)
    source = Wallet.objects.get(member=absorbed)
    target = Wallet.objects.get(member=survivor)
    assert (source.principal_fen, source.bonus_fen) == (0, 0)
    assert target.principal_fen == 10_000 + 1_000 * booked
    assert wallet_check(wallet=source) == [] and wallet_check(wallet=target) == []
