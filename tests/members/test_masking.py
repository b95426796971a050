"""Personal data: masked for roles without pii:read, encrypted at rest, found by blind index."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from memberhub.members.models import Member
from tests.conftest import Api
from tests.members.factories import member_make

pytestmark = pytest.mark.django_db

PII = {"email": "wangxm@example.cn", "address": "上海市黄浦区南京东路100号", "id_number": "11010519900501123x"}


@pytest.fixture
def member(stores: Any) -> Member:
    return member_make(phone="13800138000", name="王小明", **PII)


@pytest.mark.parametrize("role", ["marketing", "cashier", "analyst"])
def test_it_masks_personal_data_for_roles_without_pii_read(
    staff_api: Callable[..., Api], member: Member, role: str
) -> None:
    data = staff_api(role, ["SH"] if role == "cashier" else None).get(f"/members/{member.pk}").json()
    assert data["pii_masked"] is True
    assert data["phone"] == "138****8000"
    assert data["email"] == "wa***@example.cn"
    assert data["address"] == "上海市" + "*" * (len(PII["address"]) - 3)
    assert data["id_number"] == "110" + "*" * 13 + "3X"
    assert data["name"] == "王小明"  # the name is not personal data the till must hide


@pytest.mark.parametrize("role", ["service", "admin"])
def test_it_shows_personal_data_whole_to_roles_with_pii_read(
    staff_api: Callable[..., Api], member: Member, role: str
) -> None:
    data = staff_api(role).get(f"/members/{member.pk}").json()
    assert data["pii_masked"] is False
    assert data["phone"] == "+8613800138000"
    assert data["email"] == PII["email"]
    assert data["address"] == PII["address"]
    assert data["id_number"] == PII["id_number"].upper()


def test_it_masks_in_lists_and_lookups_too(staff_api: Callable[..., Api], member: Member) -> None:
    api = staff_api("marketing")
    assert api.get("/members").json()["items"][0]["phone"] == "138****8000"
    assert api.get("/members/lookup", params={"key": "13800138000"}).json()["phone"] == "138****8000"


def test_it_masks_the_response_to_a_registration(staff_api: Callable[..., Api], stores: Any) -> None:
    r = staff_api("cashier", ["SH"]).post("/members", {"phone": "13912345678", "email": "li@example.cn"})
    assert r.status_code == 201
    assert r.json()["phone"] == "139****5678" and r.json()["email"] == "l***@example.cn"


def test_it_masks_for_an_api_key_without_pii_read(make_key: Callable[..., str], member: Member) -> None:
    from django.test import Client

    data = Api(Client(), make_key(["members:read"])).get(f"/members/{member.pk}").json()
    assert data["pii_masked"] is True and data["phone"] == "138****8000"


def test_it_never_stores_personal_data_in_the_clear(member: Member) -> None:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT phone_enc, phone_index, email_enc, email_index, address_enc, id_number_enc "
            "FROM members_member WHERE id = %s", [member.pk],
        )
        row = cur.fetchone()
    raw = " ".join(str(v) for v in row)
    for plain in ("13800138000", "8613800138000", "wangxm", "南京东路", "11010519900501123"):
        assert plain not in raw
    assert all(row)  # every column holds ciphertext or an index, not NULL


def test_it_encrypts_the_same_phone_differently_each_time(member: Member) -> None:
    from memberhub.core.crypto import decrypt, encrypt

    stored = Member.objects.get(pk=member.pk).phone_enc
    again = encrypt("+8613800138000")
    assert again != stored  # Fernet has a random IV: equal phones do not look equal at rest
    assert decrypt(again) == decrypt(stored) == "+8613800138000"


@pytest.mark.parametrize("variant", ["13800138000", "+86 138 0013 8000", "008613800138000", "138-0013-8000",
                                     "(+86)13800138000", "１３８００１３８０００", " 138 0013 8000 "])
def test_it_looks_up_a_phone_in_any_format(admin_api: Api, member: Member, variant: str) -> None:
    r = admin_api.get("/members/lookup", params={"key": variant})
    assert r.status_code == 200, r.content
    assert r.json()["id"] == member.pk


def test_it_finds_by_blind_index_not_by_scanning(member: Member) -> None:
    from memberhub.core.crypto import blind_index

    assert Member.objects.filter(phone_index=blind_index("+8613800138000", purpose="phone")).get() == member
    assert blind_index("+8613800138000", purpose="phone") != blind_index("+8613800138000", purpose="email")
