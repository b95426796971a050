"""The event outbox: written with its cause, delivered once in effect, retried, dead-lettered."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from memberhub.core import events, outbox
from memberhub.core.models import EventDelivery, IdempotencyRecord
from memberhub.core.selectors import dead_letters, outbox_lag_seconds

EVENT = "test.outbox"


def _effect(n: int) -> None:
    """A write standing for a handler's effect (points, a coupon): one row per event."""
    IdempotencyRecord.objects.create(scope="outbox-test", key=str(n), fingerprint="x")


def _effects() -> list[str]:
    return sorted(IdempotencyRecord.objects.filter(scope="outbox-test").values_list("key", flat=True))


@pytest.fixture
def handler() -> Iterator[dict[str, Any]]:
    """A durable subscriber that writes its effect, then fails while `state["fail"]` > 0."""
    state: dict[str, Any] = {"fail": 0, "calls": 0}

    def on_test(*, n: int, **_: Any) -> None:
        state["calls"] += 1
        _effect(n)
        if state["fail"]:
            state["fail"] -= 1
            raise ValueError(f"handler broke on {n}")

    events.subscribe(EVENT)(on_test)
    yield state
    events.unsubscribe(EVENT, on_test)


def _later(minutes: int) -> Any:
    return timezone.now() + timedelta(minutes=minutes)


@pytest.mark.django_db(transaction=True)
def test_it_writes_nothing_for_a_rolled_back_change(handler: dict[str, Any]) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        events.emit(EVENT, n=1)
        assert EventDelivery.objects.count() == 1  # in the cause's transaction
        raise RuntimeError("the cause failed")
    assert EventDelivery.objects.count() == 0
    assert handler["calls"] == 0 and _effects() == []


@pytest.mark.django_db(transaction=True)
def test_it_delivers_on_commit_and_marks_done(handler: dict[str, Any]) -> None:
    with transaction.atomic():
        events.emit(EVENT, n=1)
        assert handler["calls"] == 0
    row = EventDelivery.objects.get()
    assert (row.state, row.attempts, row.payload, row.done_at is not None) == ("done", 1, {"n": 1}, True)
    assert _effects() == ["1"]


@pytest.mark.django_db
def test_an_event_nobody_durable_listens_to_writes_nothing(django_assert_num_queries: Any,
                                                           django_capture_on_commit_callbacks: Any) -> None:
    seen: list[dict[str, Any]] = []

    def count(**payload: Any) -> None:
        seen.append(payload)

    events.observe("test.observed")(count)
    try:
        with django_capture_on_commit_callbacks(execute=True), django_assert_num_queries(0):
            events.emit("test.observed", n=1)
            events.emit("test.unheard", n=2)
    finally:
        events.unsubscribe("test.observed", count)
    assert seen == [{"n": 1}] and not EventDelivery.objects.exists()


@pytest.mark.django_db
def test_it_refuses_a_payload_that_is_not_plain_json(handler: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        events.emit(EVENT, n=1, at=timezone.now())
    assert not EventDelivery.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_handler_failing_twice_takes_effect_exactly_once(handler: dict[str, Any]) -> None:
    handler["fail"] = 2
    events.emit(EVENT, n=7)  # outside a transaction: delivered at once, and fails
    row = EventDelivery.objects.get()
    assert (row.state, row.attempts) == ("pending", 1)
    assert "ValueError: handler broke on 7" in row.last_error and "Traceback" in row.last_error
    assert row.due_at > timezone.now()  # backs off
    assert outbox.sweep() == 0  # not due yet
    assert outbox.sweep(now=_later(60)) == 0  # second attempt fails too
    assert outbox.sweep(now=_later(120)) == 1
    assert outbox.sweep(now=_later(240)) == 0
    row.refresh_from_db()
    assert (row.state, row.attempts, handler["calls"]) == ("done", 3, 3)
    assert _effects() == ["7"]  # the two failed attempts' writes were rolled back with them


@pytest.mark.django_db(transaction=True)
def test_the_registration_award_survives_a_locked_database(stores: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The failure we saw: the registration award hit "database is locked" and vanished. Now it
    is retried and the member gets the points once."""
    from memberhub.loyalty import points
    from memberhub.loyalty.models import PointsEntry
    from tests.loyalty.helpers import account, assert_sound, member

    real, calls = points.action_award, []

    def locked_twice(**kw: Any) -> Any:
        answer = real(**kw)  # writes the entry, then the commit "fails": all of it must go
        calls.append(kw["member_id"])
        if len(calls) <= 2:
            raise OperationalError("database is locked")
        return answer

    monkeypatch.setattr(points, "action_award", locked_twice)
    m = member()
    assert not PointsEntry.objects.filter(account__member=m).exists()
    award = EventDelivery.objects.get(handler="memberhub.loyalty.hooks.on_member_registered")
    assert (award.state, award.payload) == ("pending", {"member_id": m.pk})
    assert "database is locked" in award.last_error
    outbox.sweep(now=_later(60))
    outbox.sweep(now=_later(120))
    award.refresh_from_db()
    assert (award.state, award.attempts) == ("done", 3)
    assert list(PointsEntry.objects.filter(account__member=m).values_list("rule", "points")) == \
        [("action:registration", 100)]
    assert account(m.pk).balance == 100
    assert_sound(m.pk)


@pytest.mark.django_db(transaction=True)
def test_a_handler_that_always_fails_goes_dead_and_can_be_retried(
        handler: dict[str, Any], settings: Any, admin_api: Any) -> None:
    settings.OUTBOX_MAX_ATTEMPTS = 3
    handler["fail"] = 99
    events.emit(EVENT, n=5)
    for minutes in (60, 120, 240):
        outbox.sweep(now=_later(minutes))
    row = EventDelivery.objects.get()
    assert (row.state, row.attempts, handler["calls"]) == ("dead", 3, 3)
    assert "ValueError: handler broke on 5" in row.last_error
    assert dead_letters() == 1 and _effects() == []
    assert outbox.sweep(now=_later(600)) == 0  # dead stays dead
    listed = admin_api.get("/events/dead").json()["items"]
    assert [(d["id"], d["event"], d["attempts"], d["payload"]) for d in listed] == [(row.pk, EVENT, 3, {"n": 5})]
    handler["fail"] = 0  # the cause is fixed
    r = admin_api.post(f"/events/dead/{row.pk}/retry")
    assert r.status_code == 200 and r.json()["state"] == "done", r.content
    assert dead_letters() == 0 and _effects() == ["5"]
    again = admin_api.post(f"/events/dead/{row.pk}/retry")
    assert (again.status_code, again.json()["code"]) == (409, "event_delivery_not_dead")
    assert admin_api.post("/events/dead/999999/retry").status_code == 404
    from memberhub.audit.models import AuditEntry

    assert AuditEntry.objects.filter(action="events.retry", target_id=str(row.pk)).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_deliver_each_event_once(handler: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Two sweepers race over the same due rows: every claim is won by one of them."""
    monkeypatch.setattr(events, "_enqueue", lambda ids: None)  # the queue lost them: only sweeps deliver
    for n in range(30):
        events.emit(EVENT, n=n)
    barrier, done, errors = threading.Barrier(2), [], []

    def work() -> None:
        try:
            barrier.wait(10)
            done.append(outbox.sweep())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    slow = events.handler_for(EVENT, "tests.core.test_outbox.handler.<locals>.on_test")
    assert slow is not None

    def on_test_slowly(**kw: Any) -> None:
        time.sleep(0.005)  # let the other worker reach the same rows
        slow(**kw)

    monkeypatch.setattr(events, "handler_for", lambda name, key: on_test_slowly)
    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sum(done) == 30 and handler["calls"] == 30
    assert _effects() == sorted(str(n) for n in range(30))
    assert set(EventDelivery.objects.values_list("state", "attempts")) == {("done", 1)}


@pytest.mark.django_db(transaction=True)
def test_a_stale_claim_is_taken_back_and_the_late_worker_rolls_back(
        handler: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "_enqueue", lambda ids: None)
    events.emit(EVENT, n=3)
    row = EventDelivery.objects.get()
    real = events.handler_for(EVENT, row.handler)
    assert real is not None

    def overtaken(name: str, key: str) -> Any:
        # after this worker's claim and before its handler commits, the claim timed out and
        # another worker took the row (committed on its own)
        EventDelivery.objects.filter(pk=row.pk).update(claimed_by="other-worker")
        return real

    monkeypatch.setattr(events, "handler_for", overtaken)
    assert outbox.deliver(row.pk) is False
    assert _effects() == []  # the late worker's effect is rolled back, not committed twice
    row.refresh_from_db()
    assert (row.state, row.claimed_by) == ("running", "other-worker")
    monkeypatch.setattr(events, "handler_for", lambda name, key: real)
    assert outbox.sweep(now=_later(1)) == 0  # claimed less than the timeout ago: left alone
    assert outbox.sweep(now=_later(10)) == 1  # the stale claim is taken back and delivered
    row.refresh_from_db()
    assert (row.state, row.attempts) == ("done", 2) and _effects() == ["3"]


@pytest.mark.django_db
def test_the_lag_is_the_age_of_the_oldest_due_delivery(handler: dict[str, Any]) -> None:
    now = timezone.now()
    assert outbox_lag_seconds(now=now) == 0.0 and dead_letters() == 0
    EventDelivery.objects.create(event=EVENT, handler="x", payload={}, created_at=now - timedelta(seconds=90),
                                 due_at=now - timedelta(seconds=30))
    EventDelivery.objects.create(event=EVENT, handler="x", payload={}, created_at=now - timedelta(seconds=500),
                                 due_at=now + timedelta(seconds=60))  # backing off: not lag yet
    EventDelivery.objects.create(event=EVENT, handler="x", payload={}, state="dead", created_at=now, due_at=now)
    assert outbox_lag_seconds(now=now) == 90.0
    assert dead_letters() == 1


@pytest.mark.django_db
def test_done_deliveries_are_forgotten_after_two_weeks_and_the_others_kept() -> None:
    now = timezone.now()
    for state, done_days_ago in (("done", 15), ("done", 13), ("dead", None), ("pending", None)):
        EventDelivery.objects.create(event=EVENT, handler="x", payload={}, state=state, created_at=now - timedelta(days=30),
                                     due_at=now, done_at=now - timedelta(days=done_days_ago) if done_days_ago else None)
    assert outbox.purge_done(now=now) == 1
    assert sorted(EventDelivery.objects.values_list("state", flat=True)) == ["dead", "done", "pending"]


@pytest.mark.django_db(transaction=True)
def test_the_command_lists_and_retries_dead_deliveries(handler: dict[str, Any], settings: Any) -> None:
    from io import StringIO

    from django.core.management import call_command

    settings.OUTBOX_MAX_ATTEMPTS = 1
    handler["fail"] = 1
    events.emit(EVENT, n=9)
    out = StringIO()
    call_command("events", "list", stdout=out)
    assert "dead" in out.getvalue() and "ValueError: handler broke on 9" in out.getvalue()
    call_command("events", "retry-dead", stdout=out)
    assert "1 of 1 requeued." in out.getvalue()
    assert EventDelivery.objects.get().state == "done" and _effects() == ["9"]
