"""Registrations racing for one phone: exactly one member, everyone else a clean 409."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from memberhub.members.models import Member
from tests.conftest import Api

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 12


def _race(token: str, phones: list[str]) -> list[Any]:
    """Fire one registration per phone from its own thread (and DB connection) at once."""
    barrier = threading.Barrier(len(phones))
    results: list[Any] = [None] * len(phones)

    def run(i: int) -> None:
        try:
            api = Api(Client(), token)
            barrier.wait(10)
            results[i] = api.post("/members", {"phone": phones[i], "home_store": "SH", "name": f"抢注{i}"})
        except Exception as exc:  # a crash must fail the test, not vanish with the thread
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(phones))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def _one_winner(results: list[Any]) -> None:
    assert not [r for r in results if isinstance(r, Exception)], results
    statuses = sorted(r.status_code for r in results)
    assert statuses == [201] + [409] * (len(results) - 1), [(r.status_code, r.content[:200]) for r in results]
    [winner] = [r.json() for r in results if r.status_code == 201]
    for r in results:
        if r.status_code == 409:
            assert r.json()["code"] == "member_phone_taken"
            assert r.json()["detail"]["member_id"] == winner["id"]
    assert Member.objects.count() == 1
    assert Member.objects.get().pk == winner["id"]


def test_it_registers_one_phone_once_under_concurrency(make_key: Callable[..., str]) -> None:
    _one_winner(_race(make_key(), ["13800138000"] * THREADS))


def test_it_registers_one_phone_once_in_any_format_under_concurrency(make_key: Callable[..., str]) -> None:
    formats = ["13800138000", "+86 138 0013 8000", "008613800138000", "138-0013-8000", "(+86)13800138000",
               "１３８００１３８０００", "+8613800138000", " 138 0013 8000 "]
    _one_winner(_race(make_key(), formats + formats[:4]))


def test_it_registers_different_phones_concurrently(make_key: Callable[..., str]) -> None:
    results = _race(make_key(), [f"1380013{8000 + i:04d}" for i in range(THREADS)])
    assert [r.status_code for r in results] == [201] * THREADS, [r.content[:200] for r in results]
    assert Member.objects.count() == THREADS
    assert len(set(Member.objects.values_list("card_code", flat=True))) == THREADS
