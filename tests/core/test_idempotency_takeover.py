"""A claim on an Idempotency-Key whose process is gone is taken over at once (core/owner.py):
after a crash a till's retry succeeds within seconds instead of answering 409 for minutes."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import pytest
from django.db import OperationalError
from django.db.models import QuerySet
from django.test import Client

from memberhub.core import owner
from memberhub.core.models import IdempotencyRecord
from memberhub.members import services
from memberhub.members.models import Member
from tests.conftest import Api

BODY = {"phone": "13800138000", "name": "王小明", "home_store": "SH"}
IDENTITY = [sys.executable, "-c", "from memberhub.core import owner; print(owner.identity(), flush=True); "
                                  "import sys; sys.stdin.read()"]


def _process() -> tuple[subprocess.Popen[str], str]:
    """Another process on this machine, and its identity; it runs until its stdin closes."""
    proc = subprocess.Popen(IDENTITY, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def _stuck_claim(api: Api, key: str, holder: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A claim held by `holder` that nobody lets go: what a `kill -9` in mid-request leaves."""
    real_delete = QuerySet.delete

    def failing_register(**kw: Any) -> Any:
        raise OperationalError("server closed the connection unexpectedly")

    def failing_delete(self: QuerySet[Any]) -> Any:
        if self.model is IdempotencyRecord:
            raise OperationalError("server closed the connection unexpectedly")
        return real_delete(self)

    with monkeypatch.context() as m:
        m.setattr(services, "member_register", failing_register)
        m.setattr(QuerySet, "delete", failing_delete)
        m.setattr(owner, "identity", lambda: holder)
        assert api.post("/members", BODY, headers={"Idempotency-Key": key}).status_code == 503
    assert IdempotencyRecord.objects.get(key=key).owner == holder


@pytest.mark.django_db(transaction=True)
def test_a_claim_whose_process_died_is_taken_over_at_once(make_key: Any, stores: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    api = Api(Client(), make_key())
    proc, holder = _process()
    _stuck_claim(api, "k-crash", holder, monkeypatch)
    r = api.post("/members", BODY, headers={"Idempotency-Key": "k-crash"})
    assert r.status_code == 409 and r.json()["code"] == "idempotency_in_flight"  # its owner still runs
    proc.communicate("")  # the owner ends (as a killed worker does)
    started = time.monotonic()
    first = api.post("/members", BODY, headers={"Idempotency-Key": "k-crash"})
    assert first.status_code == 201, first.content
    assert time.monotonic() - started < 5
    again = api.post("/members", BODY, headers={"Idempotency-Key": "k-crash"})
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert Member.objects.count() == 1
    assert IdempotencyRecord.objects.get(key="k-crash").owner == owner.identity()


@pytest.mark.django_db(transaction=True)
def test_a_claim_from_another_host_waits_until_stale(make_key: Any, stores: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    api = Api(Client(), make_key())
    _stuck_claim(api, "k-far", "elsewhere|pid:[1]|boot|123|456", monkeypatch)
    r = api.post("/members", BODY, headers={"Idempotency-Key": "k-far"})
    assert r.status_code == 409 and r.json()["code"] == "idempotency_in_flight"
    assert not Member.objects.exists()


def test_owner_identity_and_liveness() -> None:
    me = owner.identity()
    host, namespace, boot, pid, start = me.split("|")
    assert not owner.gone(me)
    assert owner.gone("|".join((host, namespace, "another-boot", pid, start)))  # rebooted since
    assert owner.gone("|".join((host, namespace, boot, pid, str(int(start) + 1))))  # pid reused
    assert not owner.gone("|".join(("other-host", namespace, boot, pid, start)))  # cannot tell
    assert not owner.gone("")  # a claim from before owners were recorded
    proc, other = _process()
    assert not owner.gone(other)
    proc.communicate("")
    assert owner.gone(other)
