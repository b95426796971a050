"""Idempotency-Key on effectful POSTs: replays, reuse, failures and twins in flight."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import OperationalError, connection
from django.db.models import QuerySet
from django.test import Client
from django.utils import timezone

from memberhub.core.idempotency import STALE_CLAIM
from memberhub.core.models import IdempotencyRecord
from memberhub.members import services
from memberhub.members.models import Member
from tests.conftest import Api, database_held
from tests.members.factories import member_make

BODY = {"phone": "13800138000", "name": "王小明", "home_store": "SH"}


def _post(api: Api, key: str, body: dict[str, Any] = BODY) -> Any:
    return api.post("/members", body, headers={"Idempotency-Key": key})


@pytest.mark.django_db
def test_it_replays_the_first_response(admin_api: Api) -> None:
    first = _post(admin_api, "k-1")
    second = _post(admin_api, "k-1")
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert not first.has_header("Idempotent-Replayed")
    assert Member.objects.count() == 1


@pytest.mark.django_db
def test_it_refuses_the_same_key_with_another_body(admin_api: Api) -> None:
    _post(admin_api, "k-1")
    r = _post(admin_api, "k-1", {**BODY, "phone": "13900139000"})
    assert r.status_code == 422
    assert r.json()["code"] == "idempotency_key_reused"
    assert Member.objects.count() == 1


@pytest.mark.django_db
def test_it_refuses_the_same_key_on_another_path(admin_api: Api) -> None:
    member = member_make()
    admin_api.post(f"/members/{member.pk}/freeze", {"reason": "x"}, headers={"Idempotency-Key": "k-1"})
    r = admin_api.post(f"/members/{member.pk}/unfreeze", {"reason": "x"}, headers={"Idempotency-Key": "k-1"})
    assert r.status_code == 422 and r.json()["code"] == "idempotency_key_reused"
    member.refresh_from_db()
    assert member.status == "frozen"


@pytest.mark.django_db
def test_it_does_not_store_a_failed_request_so_a_retry_runs_again(admin_api: Api) -> None:
    blocker = member_make(phone="13800138000")
    r = _post(admin_api, "k-1")
    assert r.status_code == 409 and r.json()["code"] == "member_phone_taken"
    assert not IdempotencyRecord.objects.exists()
    # The conflict goes away (the other record is erased); the same request now succeeds.
    admin_api.post(f"/members/{blocker.pk}/erase", {"reason": "asked"})
    retry = _post(admin_api, "k-1")
    assert retry.status_code == 201, retry.content
    assert not retry.has_header("Idempotent-Replayed")
    assert _post(admin_api, "k-1")["Idempotent-Replayed"] == "true"


@pytest.mark.django_db
def test_it_keeps_keys_per_caller(make_key: Callable[..., str]) -> None:
    a, b = Api(Client(), make_key()), Api(Client(), make_key())
    ra = _post(a, "shared-key")
    rb = _post(b, "shared-key", {**BODY, "phone": "13900139000"})
    assert ra.status_code == rb.status_code == 201
    assert ra.json()["id"] != rb.json()["id"]
    assert not rb.has_header("Idempotent-Replayed")


@pytest.mark.django_db
def test_it_keeps_keys_per_session_user(staff_api: Callable[..., Api]) -> None:
    a, b = staff_api("marketing"), staff_api("service")
    assert _post(a, "k").status_code == 201
    assert _post(b, "k", {**BODY, "phone": "13900139000"}).status_code == 201


@pytest.mark.django_db
def test_it_ignores_requests_without_a_key(admin_api: Api) -> None:
    admin_api.post("/members", BODY)
    assert admin_api.post("/members", BODY).status_code == 409
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["", "x" * 201])
def test_it_refuses_an_empty_or_overlong_key(admin_api: Api, key: str) -> None:
    r = _post(admin_api, key)
    assert r.status_code == 422 and r.json()["code"] == "invalid_idempotency_key"
    assert not Member.objects.exists()


@pytest.mark.django_db
def test_it_purges_old_keys(admin_api: Api, settings: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from memberhub.core.tasks import idempotency_purge

    _post(admin_api, "old")
    _post(admin_api, "new", {**BODY, "phone": "13900139000"})
    IdempotencyRecord.objects.filter(key="old").update(
        created_at=timezone.now() - timedelta(hours=settings.IDEMPOTENCY_TTL_HOURS + 1))
    assert idempotency_purge() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]


@pytest.mark.django_db(transaction=True)
def test_it_answers_409_to_a_twin_while_the_first_is_in_flight(
    make_key: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    token = make_key()
    started, release = threading.Event(), threading.Event()
    original = services.member_register

    def slow_register(**kw: Any) -> Any:
        started.set()  # the key is claimed and the transaction is open
        assert release.wait(10)
        return original(**kw)

    monkeypatch.setattr(services, "member_register", slow_register)
    results: dict[str, Any] = {}

    def first() -> None:
        try:
            results["first"] = _post(Api(Client(), token), "twin")
        finally:
            connection.close()

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert started.wait(10)
        twin = _post(Api(Client(), token), "twin")
    finally:
        release.set()
        thread.join(20)
    assert twin.status_code == 409, twin.content
    assert twin.json()["code"] == "idempotency_in_flight"
    assert results["first"].status_code == 201
    assert Member.objects.count() == 1
    # Once the first is done, the twin's retry is a replay of it.
    replay = _post(Api(Client(), token), "twin")
    assert replay["Idempotent-Replayed"] == "true" and replay.json()["id"] == results["first"].json()["id"]


@pytest.mark.django_db(transaction=True)
def test_a_claim_the_database_could_not_take_answers_503_not_500(make_key: Callable[..., str]) -> None:
    """The claim is written by the middleware, before any view: a database that is busy past
    its wait there is still the envelope, 503, and nothing is claimed or done."""
    api = Api(Client(raise_request_exception=False), make_key())
    with database_held(f"LOCK TABLE {IdempotencyRecord._meta.db_table} IN EXCLUSIVE MODE"):
        r = _post(api, "held")
    assert r.status_code == 503 and r["Retry-After"] == "1"
    assert r.json()["code"] == "database_unavailable"
    assert not IdempotencyRecord.objects.exists() and not Member.objects.exists()
    assert _post(api, "held").status_code == 201


@pytest.mark.django_db(transaction=True)
def test_a_claim_never_let_go_is_taken_over_once_stale(make_key: Callable[..., str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The database fails in the view and again as the claim is let go: the client still gets
    the view's answer (503), the claim stays (409 to a retry meanwhile), and once stale the next
    retry runs, once."""
    api = Api(Client(), make_key())
    real_register, real_delete = services.member_register, QuerySet.delete

    def failing_register(**kw: Any) -> Any:
        raise OperationalError("server closed the connection unexpectedly")

    def failing_delete(self: QuerySet[Any]) -> Any:
        if self.model is IdempotencyRecord:
            raise OperationalError("server closed the connection unexpectedly")
        return real_delete(self)

    monkeypatch.setattr(services, "member_register", failing_register)
    monkeypatch.setattr(QuerySet, "delete", failing_delete)
    r = _post(api, "stuck")
    assert r.status_code == 503 and r.json()["code"] == "database_unavailable"
    monkeypatch.setattr(services, "member_register", real_register)
    monkeypatch.setattr(QuerySet, "delete", real_delete)
    assert IdempotencyRecord.objects.get(key="stuck").state == IdempotencyRecord.State.IN_FLIGHT
    assert _post(api, "stuck").json()["code"] == "idempotency_in_flight"  # not stale yet
    IdempotencyRecord.objects.filter(key="stuck").update(
        created_at=timezone.now() - STALE_CLAIM - timedelta(seconds=1))
    first, again = _post(api, "stuck"), _post(api, "stuck")
    assert first.status_code == 201 and again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert Member.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_request_whose_claim_was_taken_over_meanwhile_takes_no_effect(
        make_key: Callable[..., str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A request that ran past `STALE_CLAIM` finds its claim gone (another took the key over)
    when it comes to store its answer: its effect is rolled back and it answers 409."""
    api = Api(Client(), make_key())
    original = services.member_register

    def overtaken_register(**kw: Any) -> Any:
        member = original(**kw)
        IdempotencyRecord.objects.filter(key="overtaken").delete()  # what the takeover does
        return member

    monkeypatch.setattr(services, "member_register", overtaken_register)
    r = _post(api, "overtaken")
    assert r.status_code == 409 and r.json()["code"] == "idempotency_in_flight"
    assert not Member.objects.exists() and not IdempotencyRecord.objects.exists()
