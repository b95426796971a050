from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction

from memberhub.core import events


@pytest.fixture
def received() -> Any:
    got: list[dict[str, Any]] = []

    def handler(**payload: Any) -> None:
        got.append(payload)

    events.subscribe("test.happened")(handler)
    yield got
    events.unsubscribe("test.happened", handler)


@pytest.mark.django_db(transaction=True)
def test_it_delivers_after_commit_only(received: list[dict[str, Any]]) -> None:
    with transaction.atomic():
        events.emit("test.happened", n=1)
        assert received == []
    assert received == [{"n": 1}]


@pytest.mark.django_db(transaction=True)
def test_it_drops_events_of_a_rolled_back_change(received: list[dict[str, Any]]) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        events.emit("test.happened", n=2)
        raise RuntimeError("boom")
    assert received == []


@pytest.mark.django_db(transaction=True)
def test_it_keeps_delivering_when_one_handler_fails(received: list[dict[str, Any]]) -> None:
    def broken(**_: Any) -> None:
        raise ValueError("bad subscriber")

    events.subscribe("test.happened")(broken)
    try:
        events.emit("test.happened", n=3)
    finally:
        events.unsubscribe("test.happened", broken)
    assert received == [{"n": 3}]
    from memberhub.core.models import EventDelivery

    failed = EventDelivery.objects.get(handler__endswith="broken")  # kept for a retry, not dropped
    assert (failed.state, failed.attempts) == ("pending", 1) and "bad subscriber" in failed.last_error


@pytest.mark.django_db(transaction=True)
def test_it_announces_a_registered_member(stores: Any, system: Any) -> None:
    from memberhub.members.services import MemberInput, member_register

    got: list[int] = []

    def on_registered(*, member_id: int, **_: Any) -> None:
        got.append(member_id)

    events.subscribe(events.MEMBER_REGISTERED)(on_registered)
    try:
        member = member_register(actor=system, data=MemberInput(phone="13700137000", home_store="SH"))
    finally:
        events.unsubscribe(events.MEMBER_REGISTERED, on_registered)
    assert got == [member.pk]
