"""Every write leaves an audit entry: who, what, before/after (masked) and why."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from memberhub.access.models import ApiKey
from memberhub.audit.models import AuditEntry
from memberhub.members.models import Member
from tests.conftest import Api
from tests.members.factories import member_make, upload

pytestmark = pytest.mark.django_db

PLAIN = ("13800138000", "13800138001", "13900139000", "wangxm@example.cn", "南京东路", "110105199005011234")


@pytest.fixture
def service(staff_api: Callable[..., Api]) -> Api:
    return staff_api("service")


@pytest.fixture
def member(stores: Any) -> Member:
    return member_make(phone="13800138000", name="王小明", email="wangxm@example.cn",
                       address="上海市南京东路1号", id_number="110105199005011234")


def _entries(action: str, target: Any = None) -> list[AuditEntry]:
    qs = AuditEntry.objects.filter(action=action)
    if target is not None:
        qs = qs.filter(target_id=str(target.pk))
    return list(qs.order_by("pk"))


def _no_plain_pii(entry: AuditEntry) -> None:
    dumped = json.dumps([entry.before, entry.after], ensure_ascii=False)
    for plain in PLAIN:
        assert plain not in dumped, (entry.action, dumped)


def test_it_audits_a_registration_with_the_actor(service: Api, stores: Any) -> None:
    r = service.post("/members", {"phone": "13900139000", "name": "李娜", "home_store": "SH"})
    [entry] = _entries("member.register")
    assert entry.target_type == "members.member" and entry.target_id == str(r.json()["id"])
    assert entry.actor_kind == "staff" and entry.actor_label == "service-all"
    assert entry.after["phone"] == "139****9000" and entry.after["name"] == "李娜"
    _no_plain_pii(entry)


def test_it_audits_an_api_key_caller_as_such(admin_api: Api, stores: Any) -> None:
    admin_api.post("/members", {"phone": "13900139000", "home_store": "SH"})
    [entry] = _entries("member.register")
    assert entry.actor_kind == "apikey" and entry.actor_label == "apikey:test" and entry.actor_id is not None


def test_it_audits_a_patch_with_before_after_and_reason(service: Api, member: Member) -> None:
    r = service.patch(f"/members/{member.pk}", {"phone": "13800138001", "name": "王晓明", "reason": "typo at till"})
    assert r.status_code == 200, r.content
    [entry] = _entries("member.update", member)
    assert entry.reason == "typo at till"
    assert entry.before == {"phone": "138****8000", "name": "王小明"}
    assert entry.after == {"phone": "138****8001", "name": "王晓明"}
    _no_plain_pii(entry)


def test_it_keeps_only_changed_fields_in_a_patch_entry(service: Api, member: Member) -> None:
    service.patch(f"/members/{member.pk}", {"birthday": "1990-05-01"})
    [entry] = _entries("member.update", member)
    assert entry.before == {"birthday": None} and entry.after == {"birthday": "1990-05-01"}


def test_it_requires_a_reason_to_change_the_phone(service: Api, member: Member) -> None:
    r = service.patch(f"/members/{member.pk}", {"phone": "13800138001"})
    assert r.status_code == 422
    assert r.json()["code"] == "reason_required" and r.json()["detail"]["fields"] == ["phone"]
    member.refresh_from_db()
    assert member.phone == "+8613800138000"
    assert _entries("member.update") == []


@pytest.mark.parametrize("field,value", [("email", "new@example.cn"), ("id_number", "110105199001011239")])
def test_it_requires_a_reason_to_change_email_or_id_number(service: Api, member: Member, field: str, value: str) -> None:
    r = service.patch(f"/members/{member.pk}", {field: value, "reason": "   "})
    assert r.status_code == 422 and r.json()["code"] == "reason_required"


def test_it_needs_no_reason_for_a_name_change(service: Api, member: Member) -> None:
    assert service.patch(f"/members/{member.pk}", {"name": "王小明2"}).status_code == 200


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}])
def test_it_requires_a_reason_to_freeze(service: Api, member: Member, body: dict[str, str]) -> None:
    r = service.post(f"/members/{member.pk}/freeze", body)
    assert r.status_code == 422
    assert r.json()["code"] in ("validation_error", "reason_required")
    member.refresh_from_db()
    assert member.status == "active" and _entries("member.freeze") == []


def test_it_audits_freeze_and_unfreeze(service: Api, member: Member) -> None:
    service.post(f"/members/{member.pk}/freeze", {"reason": "lost card"})
    service.post(f"/members/{member.pk}/unfreeze", {"reason": "card found"})
    [freeze] = _entries("member.freeze", member)
    [unfreeze] = _entries("member.unfreeze", member)
    assert (freeze.before, freeze.after, freeze.reason) == (
        {"status": "active", "frozen_at": None}, {"status": "frozen"}, "lost card")
    assert (unfreeze.before["status"], unfreeze.after["status"], unfreeze.reason) == ("frozen", "active", "card found")
    # the unfreeze also records how far the member's entitlements moved (docs/members.md)
    assert unfreeze.before["frozen_at"] is not None and unfreeze.after["extended_by_seconds"] >= 0
    assert unfreeze.after["points_lots_extended"] == unfreeze.after["coupons_extended"] == 0


def test_it_audits_a_merge_on_both_members(service: Api, member: Member) -> None:
    other = member_make(phone="13800138001", name="王晓明")
    service.post("/members/merge", {"survivor_id": member.pk, "absorbed_id": other.pk, "reason": "same person"})
    [merge] = _entries("member.merge", member)
    [merged] = _entries("member.merged_into", other)
    assert merge.reason == merged.reason == "same person"
    assert merge.after["absorbed"] == other.pk
    assert merged.after == {"status": "merged", "merged_into": member.pk}
    assert merged.before["phone"] == "138****8001"
    _no_plain_pii(merge)
    _no_plain_pii(merged)


def test_it_audits_an_erasure_without_keeping_the_data(service: Api, member: Member) -> None:
    service.post(f"/members/{member.pk}/erase", {"reason": "member asked (PIPL)"})
    [entry] = _entries("member.erase", member)
    assert entry.reason == "member asked (PIPL)" and entry.after == {"status": "erased"}
    assert entry.before["phone"] == "138****8000"
    _no_plain_pii(entry)


def test_it_audits_an_export(service: Api, member: Member) -> None:
    service.get(f"/members/{member.pk}/export")
    [entry] = _entries("member.export", member)
    assert entry.actor_label == "service-all"


def test_it_audits_every_imported_member(staff_api: Callable[..., Api], stores: Any) -> None:
    api = staff_api("marketing")
    upload(api, "/members/import", "手机号,姓名\n13700137000,甲\n13700137001,乙\n".encode())
    entries = _entries("member.import")
    assert len(entries) == 2
    assert {e.after["row"] for e in entries} == {2, 3}
    assert {e.actor_label for e in entries} == {"marketing-all"}
    assert {int(e.target_id) for e in entries} == set(Member.objects.values_list("pk", flat=True))


def test_it_audits_api_key_creation_and_revocation(admin_api: Api) -> None:
    r = admin_api.post("/auth/apikeys", {"name": "pos", "scopes": ["members:read"]})
    prefix = r.json()["prefix"]
    admin_api.post(f"/auth/apikeys/{prefix}/revoke")
    key_id = ApiKey.objects.get(prefix=prefix).pk
    [created] = [e for e in _entries("apikey.create") if e.target_id == str(key_id)]
    [revoked] = _entries("apikey.revoke")
    assert created.after == {"name": "pos", "scopes": ["members:read"], "stores": []}
    assert created.target_id == revoked.target_id
    assert r.json()["key"] not in json.dumps([created.before, created.after])
    assert revoked.actor_kind == "apikey"


def test_it_audits_staff_and_store_creation(admin_api: Api) -> None:
    admin_api.post("/stores", {"code": "GZ", "name": "广州天河店"})
    admin_api.post("/auth/staff", {"username": "cs1", "password": "pw-123456789", "role": "service"})
    assert _entries("store.create")[0].after["code"] == "GZ"
    staff = _entries("staff.create")[0]
    assert staff.after == {"username": "cs1", "role": "service", "stores": []}
    assert "pw-123456789" not in json.dumps(staff.after)


def test_it_writes_no_entry_when_the_write_fails(service: Api, member: Member) -> None:
    other = member_make(phone="13900139000")
    r = service.patch(f"/members/{other.pk}", {"phone": "13800138000", "reason": "x"})
    assert r.status_code == 409
    assert _entries("member.update") == []


def test_it_lists_and_filters_the_audit_log(staff_api: Callable[..., Api], member: Member) -> None:
    api = staff_api("analyst")
    other = member_make(phone="13900139000")
    items = api.get("/audit", params={"target_type": "members.member", "target_id": str(other.pk)}).json()["items"]
    assert [(e["action"], e["target_id"]) for e in items] == [("member.register", str(other.pk))]
    assert len(api.get("/audit", params={"action": "member.register"}).json()["items"]) == 2
    page = api.get("/audit", params={"limit": 1}).json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    rest = api.get("/audit", params={"limit": 1, "cursor": page["next_cursor"]}).json()["items"]
    assert rest[0]["id"] < page["items"][0]["id"]


def test_it_keeps_audit_entries_append_only_in_the_api(admin_api: Api, member: Member) -> None:
    entry_id = AuditEntry.objects.first().pk
    assert admin_api.patch(f"/audit/{entry_id}", {"reason": "x"}).status_code in (404, 405)
    assert AuditEntry.objects.filter(pk=entry_id).exists()
