"""Finding likely duplicates, and merging two records of one person."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest
from django.db import connection

from memberhub.core.errors import Conflict
from memberhub.members import hooks
from memberhub.members.models import Member, MemberConsent
from tests.conftest import Api
from tests.members.factories import member_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def service(staff_api: Callable[..., Api]) -> Api:
    return staff_api("service")


def _pairs(api: Api) -> list[tuple[set[int], list[str]]]:
    r = api.get("/members/duplicates")
    assert r.status_code == 200, r.content
    return [({m["id"] for m in p["members"]}, p["reasons"]) for p in r.json()]


# --- duplicates ----------------------------------------------------------------------------------


def test_it_finds_phones_one_digit_apart_with_similar_names(service: Api, stores: Any) -> None:
    a = member_make(phone="13800138000", name="王小明")
    b = member_make(phone="13800138001", name="王晓明")
    assert _pairs(service) == [({a.pk, b.pk}, ["phone_one_typo_apart", "similar_name"])]


def test_it_finds_phones_with_two_digits_swapped(service: Api, stores: Any) -> None:
    a = member_make(phone="13800138012", name="李娜")
    b = member_make(phone="13800138021", name="李娜")
    assert [ids for ids, _ in _pairs(service)] == [{a.pk, b.pk}]


def test_it_finds_the_same_birthday_with_a_similar_name(service: Api, stores: Any) -> None:
    a = member_make(phone="13800138000", name="欧阳娜娜", birthday=date(1991, 2, 3))
    b = member_make(phone="15912345678", name="欧阳娜", birthday=date(1991, 2, 3))
    assert _pairs(service) == [({a.pk, b.pk}, ["same_birthday", "similar_name"])]


def test_it_ignores_near_phones_of_different_people(service: Api, stores: Any) -> None:
    member_make(phone="13800138000", name="王小明")
    member_make(phone="13800138001", name="陈大伟")
    assert _pairs(service) == []


def test_it_ignores_a_shared_birthday_alone(service: Api, stores: Any) -> None:
    member_make(phone="13800138000", name="王小明", birthday=date(1991, 2, 3))
    member_make(phone="15912345678", name="陈大伟", birthday=date(1991, 2, 3))
    assert _pairs(service) == []


def test_it_ignores_erased_and_merged_members(service: Api, stores: Any) -> None:
    a = member_make(phone="13800138000", name="王小明")
    b = member_make(phone="13800138001", name="王小明")
    member_make(phone="13800138002", name="王小明", birthday=date(1990, 1, 1))
    service.post("/members/merge", {"survivor_id": a.pk, "absorbed_id": b.pk, "reason": "same"})
    pairs = _pairs(service)
    assert all(b.pk not in ids for ids, _ in pairs)


def test_it_shows_duplicates_masked_without_pii_read(make_key: Callable[..., str], stores: Any) -> None:
    from django.test import Client

    member_make(phone="13800138000", name="王小明")
    member_make(phone="13800138001", name="王晓明")
    pairs = Api(Client(), make_key(["members:read", "members:merge"])).get("/members/duplicates").json()
    assert {m["phone"] for m in pairs[0]["members"]} == {"138****8000", "138****8001"}


# --- merge ---------------------------------------------------------------------------------------


@pytest.fixture
def pair(stores: Any) -> tuple[Member, Member]:
    survivor = member_make(phone="13800138000", name="王小明",
                           consents=[{"channel": "sms", "granted": True, "source": "store"},
                                     {"channel": "email", "granted": False, "source": "store"}])
    absorbed = member_make(phone="13800138001", name="王晓明", email="wxm@example.cn", birthday=date(1990, 5, 1),
                           address="上海市", consents=[{"channel": "sms", "granted": False, "source": "app"},
                                                      {"channel": "wechat", "granted": True, "source": "app"}])
    return survivor, absorbed


def _merge(api: Api, survivor: Member, absorbed: Member, reason: str = "same person") -> Any:
    return api.post("/members/merge", {"survivor_id": survivor.pk, "absorbed_id": absorbed.pk, "reason": reason})


def test_it_keeps_the_survivor_and_marks_the_absorbed_merged(service: Api, pair: tuple[Member, Member]) -> None:
    survivor, absorbed = pair
    r = _merge(service, survivor, absorbed)
    assert r.status_code == 200, r.content
    assert r.json()["id"] == survivor.pk and r.json()["status"] == "active"
    assert r.json()["name"] == "王小明"  # the survivor's own data wins
    absorbed.refresh_from_db()
    assert absorbed.status == "merged" and absorbed.merged_into_id == survivor.pk
    got = service.get(f"/members/{absorbed.pk}").json()  # its number still resolves
    assert (got["status"], got["merged_into"]) == ("merged", survivor.pk)


def test_it_fills_missing_data_from_the_absorbed(service: Api, pair: tuple[Member, Member]) -> None:
    survivor, absorbed = pair
    data = _merge(service, survivor, absorbed).json()
    assert (data["email"], data["birthday"], data["address"]) == ("wxm@example.cn", "1990-05-01", "上海市")
    survivor.refresh_from_db()
    assert survivor.birth_month == 5
    # The email moved with its index: the survivor is found by it, and it stays unique.
    r = service.post("/members", {"phone": "13700137000", "email": "WXM@example.cn", "home_store": "SH"})
    assert r.status_code == 409 and r.json()["detail"]["member_id"] == survivor.pk


def test_it_keeps_the_survivors_own_email(service: Api, stores: Any) -> None:
    survivor = member_make(phone="13800138000", email="mine@example.cn")
    absorbed = member_make(phone="13800138001", email="theirs@example.cn")
    assert _merge(service, survivor, absorbed).json()["email"] == "mine@example.cn"
    # The absorbed's email is the same person's: it belongs to the survivor now.
    r = service.post("/members", {"phone": "13700137000", "email": "theirs@example.cn", "home_store": "SH"})
    assert r.status_code == 409 and r.json()["detail"]["member_id"] == survivor.pk


def test_it_moves_consents_with_the_latest_decision_winning(service: Api, pair: tuple[Member, Member]) -> None:
    survivor, absorbed = pair
    # The survivor changed its mind on email after the absorbed record was made; sms is older.
    MemberConsent.objects.filter(member=survivor, channel="email").update(changed_at=datetime(2030, 1, 1, tzinfo=UTC))
    MemberConsent.objects.create(member=absorbed, channel="email", granted=True, source="app",
                                 changed_at=datetime(2020, 1, 1, tzinfo=UTC))
    MemberConsent.objects.filter(member=survivor, channel="sms").update(changed_at=datetime(2020, 1, 1, tzinfo=UTC))
    data = _merge(service, survivor, absorbed).json()
    consents = {c["channel"]: (c["granted"], c["source"]) for c in data["consents"]}
    assert consents == {"sms": (False, "app"), "email": (False, "store"), "wechat": (True, "app")}


def test_it_keeps_the_earliest_registration(service: Api, stores: Any) -> None:
    old = member_make(phone="13800138001", now=datetime(2020, 1, 1, tzinfo=UTC))
    new = member_make(phone="13800138000")
    data = _merge(service, new, old).json()
    assert data["registered_at"].startswith("2020-01-01")


def test_it_carries_a_freeze_over_to_the_survivor(service: Api, pair: tuple[Member, Member]) -> None:
    survivor, absorbed = pair
    service.post(f"/members/{absorbed.pk}/freeze", {"reason": "fraud"})
    assert _merge(service, survivor, absorbed).json()["status"] == "frozen"


def test_it_writes_audit_entries_on_both(service: Api, pair: tuple[Member, Member]) -> None:
    from memberhub.audit.models import AuditEntry

    survivor, absorbed = pair
    _merge(service, survivor, absorbed)
    assert AuditEntry.objects.filter(action="member.merge", target_id=str(survivor.pk)).count() == 1
    assert AuditEntry.objects.filter(action="member.merged_into", target_id=str(absorbed.pk)).count() == 1


def test_it_refuses_merging_a_member_into_itself(service: Api, pair: tuple[Member, Member]) -> None:
    r = _merge(service, pair[0], pair[0])
    assert r.status_code == 422 and r.json()["code"] == "merge_same_member"


def test_it_refuses_merging_into_an_erased_member(service: Api, pair: tuple[Member, Member]) -> None:
    survivor, absorbed = pair
    service.post(f"/members/{survivor.pk}/erase", {"reason": "asked"})
    r = _merge(service, survivor, absorbed)
    assert r.status_code == 409 and r.json()["code"] == "member_erased"
    absorbed.refresh_from_db()
    assert absorbed.status == "active"


def test_it_refuses_absorbing_an_already_merged_member(service: Api, pair: tuple[Member, Member]) -> None:
    survivor, absorbed = pair
    third = member_make(phone="13700137000")
    _merge(service, survivor, absorbed)
    r = _merge(service, third, absorbed)
    assert r.status_code == 409 and r.json()["code"] == "member_merged"


def test_it_answers_404_for_a_missing_member(service: Api, pair: tuple[Member, Member]) -> None:
    r = service.post("/members/merge", {"survivor_id": pair[0].pk, "absorbed_id": 424242, "reason": "x"})
    assert r.status_code == 404 and r.json()["code"] == "member_not_found"


def test_it_requires_a_reason_to_merge(service: Api, pair: tuple[Member, Member]) -> None:
    r = _merge(service, *pair, reason="")
    assert r.status_code == 422


def test_it_calls_merge_hooks_with_survivor_absorbed_and_actor(
    service: Api, pair: tuple[Member, Member], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[int, int, str, str]] = []

    def hook(survivor: Member, absorbed: Member, actor: Any) -> None:
        calls.append((survivor.pk, absorbed.pk, absorbed.status, actor.label))

    monkeypatch.setattr(hooks, "MERGE_HOOKS", [hook])
    monkeypatch.setattr("memberhub.members.merge.MERGE_HOOKS", hooks.MERGE_HOOKS)
    _merge(service, *pair)
    assert calls == [(pair[0].pk, pair[1].pk, "merged", "service-all")]


@pytest.mark.django_db(transaction=True)
def test_it_runs_merge_hooks_inside_the_merge_transaction(
    make_key: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.test import Client

    api = Api(Client(), make_key())
    survivor, absorbed = member_make(phone="13800138000"), member_make(phone="13800138001")
    seen: list[bool] = []

    def hook(survivor: Member, absorbed: Member, actor: Any) -> None:
        seen.append(connection.in_atomic_block)
        raise Conflict("points could not move", code="hook_refused")

    monkeypatch.setattr("memberhub.members.merge.MERGE_HOOKS", [hook])
    r = _merge(api, survivor, absorbed)
    assert seen == [True]
    assert r.status_code == 409 and r.json()["code"] == "hook_refused"
    absorbed.refresh_from_db()  # the hook's failure undid the whole merge
    assert absorbed.status == "active" and absorbed.merged_into_id is None and absorbed.phone is not None
    assert Member.objects.filter(status="merged").count() == 0


def test_a_merged_members_phone_resolves_to_the_survivor_everywhere(
        service: Api, admin_api: Api, pair: tuple[Member, Member]) -> None:
    survivor, absorbed = pair  # the absorbed member's phone: 13800138001
    assert _merge(service, survivor, absorbed).status_code == 200
    old = "138 0013 8001"
    assert [m["id"] for m in service.get("/members", params={"phone": old}).json()["items"]] == [survivor.pk]
    assert service.get("/members/lookup", params={"key": old}).json()["id"] == survivor.pk
    assert service.get("/members/lookup", params={"key": absorbed.card_code}).json()["id"] == survivor.pk
    earn = admin_api.post("/loyalty/purchases", {"member": old, "channel": "offline", "order_no": "M-1",
                                                 "store": "SH", "paid_fen": 10000})
    assert earn.status_code == 201 and earn.json()["member_id"] == survivor.pk, earn.content
    till = admin_api.post("/checkout", {"member": old, "channel": "offline", "order_no": "M-2", "store": "SH",
                                        "lines": [{"line_id": "L1", "sku": "A", "qty": 1, "unit_price_fen": 500}]})
    assert till.status_code == 201 and till.json()["member_id"] == survivor.pk, till.content
    # the phone is the survivor's now: registering it again answers the survivor
    r = service.post("/members", {"phone": old, "home_store": "SH"})
    assert r.status_code == 409 and r.json()["code"] == "member_phone_taken"
    assert r.json()["detail"]["member_id"] == survivor.pk


def test_erasing_the_survivor_forgets_the_merged_members_phone_too(
        service: Api, admin_api: Api, pair: tuple[Member, Member]) -> None:
    survivor, absorbed = pair
    _merge(service, survivor, absorbed)
    assert admin_api.post(f"/members/{survivor.pk}/erase", {"reason": "asked"}).status_code == 200
    absorbed.refresh_from_db()
    assert (absorbed.phone_enc, absorbed.phone_index, absorbed.email_index, absorbed.name) == (None, None, None, "")
    assert service.get("/members/lookup", params={"key": "13800138001"}).status_code == 404
    assert service.post("/members", {"phone": "13800138001", "home_store": "SH"}).status_code == 201


def test_members_merged_before_the_rule_get_their_phone_back_by_the_migration(
        service: Api, pair: tuple[Member, Member]) -> None:
    import importlib

    from django.apps import apps

    survivor, absorbed = pair
    _merge(service, survivor, absorbed)
    Member.objects.filter(pk=absorbed.pk).update(phone_index=None, email_index=None)  # as merges used to leave it
    frozen = member_make(phone="13900139000")
    Member.objects.filter(pk=frozen.pk).update(status="frozen")
    backfill = importlib.import_module("memberhub.members.migrations.0003_backfill_merged_index_frozen_at")
    backfill.forwards(apps, None)
    assert service.get("/members/lookup", params={"key": "13800138001"}).json()["id"] == survivor.pk
    assert Member.objects.get(pk=frozen.pk).frozen_at is not None
