"""The member's rights: erasure (注销) and export of everything held."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from django.test import Client

from memberhub.audit.models import AuditEntry
from memberhub.members.models import Member, MemberConsent
from tests.conftest import Api
from tests.members.factories import member_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def service(staff_api: Callable[..., Api]) -> Api:
    return staff_api("service")


@pytest.fixture
def member(stores: Any) -> Member:
    return member_make(phone="13800138000", name="王小明", email="wxm@example.cn", birthday=date(1990, 5, 1),
                       gender="male", address="上海市南京东路1号", id_number="110105199005011234",
                       consents=[{"channel": "sms", "granted": True, "source": "store"}])


def _erase(api: Api, member: Member) -> Any:
    return api.post(f"/members/{member.pk}/erase", {"reason": "member asked (PIPL)"})


# --- erasure -------------------------------------------------------------------------------------


def test_it_clears_every_personal_field(service: Api, member: Member) -> None:
    r = _erase(service, member)
    assert r.status_code == 200 and r.json()["status"] == "erased"
    member.refresh_from_db()
    assert member.status == "erased" and member.erased_at is not None
    for name in ("phone_enc", "phone_index", "email_enc", "email_index", "address_enc", "id_number_enc",
                 "birthday", "birth_month", "import_key"):
        assert getattr(member, name) is None, name
    assert (member.name, member.gender) == ("", "unknown")
    assert not MemberConsent.objects.filter(member=member).exists()


def test_it_keeps_the_number_and_card_of_an_erased_member(service: Api, member: Member) -> None:
    _erase(service, member)
    data = service.get(f"/members/{member.pk}").json()
    assert data["member_no"] == member.member_no and data["card_code"] == member.card_code
    assert (data["phone"], data["email"], data["name"]) == (None, None, "")


def test_it_no_longer_finds_an_erased_member_by_phone(service: Api, member: Member) -> None:
    _erase(service, member)
    r = service.get("/members/lookup", params={"key": "13800138000"})
    assert r.status_code == 404 and r.json()["code"] == "member_not_found"
    assert service.get("/members", params={"phone": "13800138000"}).json()["items"] == []


def test_it_lets_the_phone_and_email_register_again_as_a_new_member(service: Api, member: Member) -> None:
    _erase(service, member)
    r = service.post("/members", {"phone": "+86 138 0013 8000", "email": "wxm@example.cn", "home_store": "SH"})
    assert r.status_code == 201, r.content
    assert r.json()["id"] != member.pk and r.json()["status"] == "active"


def test_it_keeps_the_audit_entries_of_an_erased_member(service: Api, member: Member) -> None:
    before = AuditEntry.objects.filter(target_id=str(member.pk)).count()
    _erase(service, member)
    actions = list(AuditEntry.objects.filter(target_id=str(member.pk)).order_by("pk").values_list("action", flat=True))
    assert len(actions) == before + 1 and actions[0] == "member.register" and actions[-1] == "member.erase"


def test_it_refuses_erasing_twice(service: Api, member: Member) -> None:
    _erase(service, member)
    r = _erase(service, member)
    assert r.status_code == 409 and r.json()["code"] == "member_erased"


def test_it_requires_a_reason_to_erase(service: Api, member: Member) -> None:
    r = service.post(f"/members/{member.pk}/erase", {"reason": " "})
    assert r.status_code == 422 and r.json()["code"] == "reason_required"
    member.refresh_from_db()
    assert member.status == "active"


def test_it_calls_erase_hooks_inside_the_erasure(
    service: Api, member: Member, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[int, str, str]] = []
    monkeypatch.setattr("memberhub.members.privacy.ERASE_HOOKS",
                        [lambda m, actor: calls.append((m.pk, m.status, actor.label))])
    _erase(service, member)
    assert calls == [(member.pk, "erased", "service-all")]


# --- export --------------------------------------------------------------------------------------


def test_it_exports_the_whole_profile_consents_and_history(service: Api, member: Member) -> None:
    service.patch(f"/members/{member.pk}", {"name": "王晓明"})
    r = service.get(f"/members/{member.pk}/export")
    assert r.status_code == 200, r.content
    data = r.json()
    profile = data["member"]
    assert (profile["phone"], profile["email"], profile["address"], profile["id_number"]) == (
        "+8613800138000", "wxm@example.cn", "上海市南京东路1号", "110105199005011234")
    assert (profile["name"], profile["birthday"], profile["home_store"]) == ("王晓明", "1990-05-01", "SH")
    assert [(c["channel"], c["granted"]) for c in data["consents"]] == [("sms", True)]
    assert [h["action"] for h in data["history"]] == ["member.register", "member.update"]
    assert data["history"][1]["after"] == {"name": "王晓明"}


def test_it_lists_absorbed_members_in_the_export(service: Api, member: Member) -> None:
    other = member_make(phone="13900139000")
    service.post("/members/merge", {"survivor_id": member.pk, "absorbed_id": other.pk, "reason": "same"})
    assert service.get(f"/members/{member.pk}/export").json()["member"]["absorbed_members"] == [other.pk]


def test_it_adds_export_hook_sections(service: Api, member: Member, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("memberhub.members.privacy.EXPORT_HOOKS", [lambda m: {"points": {"balance": 42}}])
    assert service.get(f"/members/{member.pk}/export").json()["points"] == {"balance": 42}


@pytest.mark.parametrize("role", ["marketing", "cashier", "analyst"])
def test_it_refuses_export_to_roles_without_export_and_pii(
    staff_api: Callable[..., Api], member: Member, role: str
) -> None:
    r = staff_api(role, ["SH"] if role == "cashier" else None).get(f"/members/{member.pk}/export")
    assert r.status_code == 403 and r.json()["code"] == "permission_denied"


@pytest.mark.parametrize("scopes,missing", [(["members:read", "members:export"], ["pii:read"]),
                                            (["members:read", "pii:read"], ["members:export"])])
def test_it_refuses_export_without_both_scopes(
    make_key: Callable[..., str], member: Member, scopes: list[str], missing: list[str]
) -> None:
    r = Api(Client(), make_key(scopes)).get(f"/members/{member.pk}/export")
    assert r.status_code == 403
    assert r.json()["detail"]["required"] == missing
    assert not AuditEntry.objects.filter(action="member.export").exists()


def test_it_answers_404_when_exporting_a_missing_member(service: Api, stores: Any) -> None:
    r = service.get("/members/424242/export")
    assert r.status_code == 404 and r.json()["code"] == "member_not_found"
