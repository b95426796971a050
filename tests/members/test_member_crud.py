"""Reading, changing, listing, looking up, freezing members."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest

from memberhub.access.principal import system_principal
from memberhub.members.models import Member
from memberhub.members.privacy import member_erase
from tests.conftest import Api
from tests.members.factories import member_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(stores: Any) -> Member:
    return member_make(phone="13800138000", name="王小明", email="wxm@example.cn", birthday=date(1990, 5, 1),
                       gender="male", consents=[{"channel": "sms", "granted": True, "source": "store"}])


# --- get -----------------------------------------------------------------------------------------


def test_it_reads_a_member(admin_api: Api, member: Member) -> None:
    data = admin_api.get(f"/members/{member.pk}").json()
    assert data["id"] == member.pk and data["member_no"] == member.member_no
    assert (data["name"], data["gender"], data["birthday"], data["home_store"]) == ("王小明", "male", "1990-05-01", "SH")
    assert data["status"] == "active" and data["merged_into"] is None
    assert [(c["channel"], c["granted"]) for c in data["consents"]] == [("sms", True)]


def test_it_answers_404_for_a_missing_member(admin_api: Api, stores: Any) -> None:
    r = admin_api.get("/members/424242")
    assert r.status_code == 404 and r.json()["code"] == "member_not_found"


# --- patch ---------------------------------------------------------------------------------------


def test_it_patches_only_the_fields_sent(admin_api: Api, member: Member) -> None:
    r = admin_api.patch(f"/members/{member.pk}", {"name": "王晓明"})
    assert r.status_code == 200
    data = r.json()
    assert data["name"] == "王晓明"
    assert (data["phone"], data["email"], data["birthday"], data["gender"]) == (
        "+8613800138000", "wxm@example.cn", "1990-05-01", "male")


def test_it_patches_email_with_a_reason_and_normalises_it(admin_api: Api, member: Member) -> None:
    r = admin_api.patch(f"/members/{member.pk}", {"email": " New@Example.CN ", "reason": "member asked"})
    assert r.status_code == 200 and r.json()["email"] == "new@example.cn"


def test_it_patches_the_birthday_and_its_month(admin_api: Api, member: Member) -> None:
    admin_api.patch(f"/members/{member.pk}", {"birthday": "1988-12-24"})
    member.refresh_from_db()
    assert (member.birthday, member.birth_month) == (date(1988, 12, 24), 12)


def test_it_refuses_a_birthday_in_the_future(admin_api: Api, member: Member) -> None:
    r = admin_api.patch(f"/members/{member.pk}", {"birthday": "2999-01-01"})
    assert r.status_code == 422 and r.json()["code"] == "birthday_in_future"


def test_it_patches_consents_channel_by_channel(admin_api: Api, member: Member) -> None:
    r = admin_api.patch(f"/members/{member.pk}", {"consents": [
        {"channel": "sms", "granted": False, "source": "hotline"}, {"channel": "wechat", "granted": True}]})
    consents = {c["channel"]: (c["granted"], c["source"]) for c in r.json()["consents"]}
    assert consents == {"sms": (False, "hotline"), "wechat": (True, "api")}


def test_it_refuses_an_unknown_consent_channel(admin_api: Api, member: Member) -> None:
    r = admin_api.patch(f"/members/{member.pk}", {"consents": [{"channel": "fax", "granted": True}]})
    assert r.status_code == 422 and r.json()["code"] == "validation_error"


def test_it_refuses_taking_another_members_phone(admin_api: Api, member: Member) -> None:
    other = member_make(phone="13900139000")
    r = admin_api.patch(f"/members/{other.pk}", {"phone": "+86 138 0013 8000", "reason": "typo"})
    assert r.status_code == 409
    assert r.json()["code"] == "member_phone_taken" and r.json()["detail"]["member_id"] == member.pk


def test_it_refuses_taking_another_members_email(admin_api: Api, member: Member) -> None:
    other = member_make(phone="13900139000")
    r = admin_api.patch(f"/members/{other.pk}", {"email": "WXM@example.cn", "reason": "typo"})
    assert r.status_code == 409 and r.json()["code"] == "member_email_taken"


def test_it_moves_a_member_to_another_store(admin_api: Api, member: Member) -> None:
    assert admin_api.patch(f"/members/{member.pk}", {"home_store": "BJ"}).json()["home_store"] == "BJ"
    r = admin_api.patch(f"/members/{member.pk}", {"home_store": "NOPE"})
    assert r.status_code == 422 and r.json()["code"] == "store_not_found"


def test_it_refuses_patching_an_erased_member(admin_api: Api, member: Member) -> None:
    member_erase(actor=system_principal("t"), member_id=member.pk, reason="asked")
    r = admin_api.patch(f"/members/{member.pk}", {"name": "复活"})
    assert r.status_code == 409 and r.json()["code"] == "member_erased"


def test_it_refuses_patching_a_merged_member(admin_api: Api, member: Member) -> None:
    other = member_make(phone="13900139000")
    admin_api.post("/members/merge", {"survivor_id": member.pk, "absorbed_id": other.pk, "reason": "same"})
    r = admin_api.patch(f"/members/{other.pk}", {"name": "x"})
    assert r.status_code == 409
    assert r.json()["code"] == "member_merged" and r.json()["detail"]["merged_into"] == member.pk


def test_it_answers_404_when_patching_a_missing_member(admin_api: Api, stores: Any) -> None:
    r = admin_api.patch("/members/424242", {"name": "x"})
    assert r.status_code == 404 and r.json()["code"] == "member_not_found"


# --- list ----------------------------------------------------------------------------------------


@pytest.fixture
def crowd(stores: Any) -> dict[str, Member]:
    return {
        "a": member_make(phone="13800000001", name="张伟", store="SH", birthday=date(1990, 3, 8),
                         now=datetime(2025, 1, 10, tzinfo=UTC)),
        "b": member_make(phone="13800000002", name="张伟华", store="BJ", birthday=date(1985, 7, 1),
                         now=datetime(2025, 6, 10, tzinfo=UTC)),
        "c": member_make(phone="13800000003", name="李娜", store="ONLINE", birthday=date(1992, 3, 30),
                         now=datetime(2025, 12, 10, tzinfo=UTC)),
    }


def _ids(api: Api, **params: Any) -> set[int]:
    r = api.get("/members", params=params)
    assert r.status_code == 200, r.content
    return {m["id"] for m in r.json()["items"]}


def test_it_lists_live_members_newest_first(admin_api: Api, crowd: dict[str, Member]) -> None:
    items = admin_api.get("/members").json()["items"]
    assert [m["id"] for m in items] == [crowd["c"].pk, crowd["b"].pk, crowd["a"].pk]


@pytest.mark.parametrize("phone", ["13800000002", "+86 138 0000 0002", "0086-138-0000-0002"])
def test_it_filters_by_phone_in_any_format(admin_api: Api, crowd: dict[str, Member], phone: str) -> None:
    assert _ids(admin_api, phone=phone) == {crowd["b"].pk}


def test_it_refuses_an_invalid_phone_filter(admin_api: Api, crowd: dict[str, Member]) -> None:
    r = admin_api.get("/members", params={"phone": "12345"})
    assert r.status_code == 422 and r.json()["code"] == "phone_invalid"


def test_it_filters_by_name(admin_api: Api, crowd: dict[str, Member]) -> None:
    assert _ids(admin_api, name="张伟") == {crowd["a"].pk, crowd["b"].pk}
    assert _ids(admin_api, name="李") == {crowd["c"].pk}


def test_it_filters_by_store(admin_api: Api, crowd: dict[str, Member]) -> None:
    assert _ids(admin_api, store="BJ") == {crowd["b"].pk}


def test_it_filters_by_status(admin_api: Api, crowd: dict[str, Member]) -> None:
    admin_api.post(f"/members/{crowd['a'].pk}/freeze", {"reason": "x"})
    admin_api.post(f"/members/{crowd['b'].pk}/erase", {"reason": "x"})
    assert _ids(admin_api, status="frozen") == {crowd["a"].pk}
    assert _ids(admin_api, status="erased") == {crowd["b"].pk}
    assert _ids(admin_api) == {crowd["a"].pk, crowd["c"].pk}  # live: active and frozen


def test_it_filters_by_registration_date(admin_api: Api, crowd: dict[str, Member]) -> None:
    assert _ids(admin_api, registered_from="2025-06-01T00:00:00Z") == {crowd["b"].pk, crowd["c"].pk}
    assert _ids(admin_api, registered_to="2025-06-10T00:00:00Z") == {crowd["a"].pk}
    assert _ids(admin_api, registered_from="2025-02-01T00:00:00Z", registered_to="2025-07-01T00:00:00Z") == {
        crowd["b"].pk}


def test_it_filters_by_birth_month(admin_api: Api, crowd: dict[str, Member]) -> None:
    assert _ids(admin_api, birth_month=3) == {crowd["a"].pk, crowd["c"].pk}
    assert _ids(admin_api, birth_month=7, store="BJ") == {crowd["b"].pk}


def test_it_walks_every_page_without_duplicates_or_gaps(admin_api: Api, stores: Any) -> None:
    made = {member_make(phone=f"1390000{i:04d}").pk for i in range(23)}
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        page = admin_api.get("/members", params=params).json()
        seen += [m["id"] for m in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert pages == 5
    assert len(seen) == len(set(seen)) == 23 and set(seen) == made
    assert seen == sorted(seen, reverse=True)


def test_it_has_no_next_cursor_on_an_exact_last_page(admin_api: Api, stores: Any) -> None:
    for i in range(4):
        member_make(phone=f"1390000{i:04d}")
    first = admin_api.get("/members", params={"limit": 2}).json()
    second = admin_api.get("/members", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert len(second["items"]) == 2 and second["next_cursor"] is None


@pytest.mark.parametrize("cursor", ["garbage", "e30", "eyJpZCI6ICJ4In0", "!!!"])
def test_it_refuses_a_bad_cursor(admin_api: Api, stores: Any, cursor: str) -> None:
    r = admin_api.get("/members", params={"cursor": cursor})
    assert r.status_code == 422 and r.json()["code"] == "invalid_cursor"


@pytest.mark.parametrize("limit", [0, -1, 201, 10_000])
def test_it_refuses_a_limit_outside_1_to_200(admin_api: Api, stores: Any, limit: int) -> None:
    r = admin_api.get("/members", params={"limit": limit})
    assert r.status_code == 422 and r.json()["code"] == "invalid_limit"


def test_it_accepts_a_limit_of_200(admin_api: Api, stores: Any) -> None:
    assert admin_api.get("/members", params={"limit": 200}).status_code == 200


# --- lookup --------------------------------------------------------------------------------------


def test_it_looks_up_by_card_code(admin_api: Api, member: Member) -> None:
    assert admin_api.get("/members/lookup", params={"key": member.card_code}).json()["id"] == member.pk


@pytest.mark.parametrize("fmt", ["{no}", "{lower}", "M{pk}"])
def test_it_looks_up_by_member_number(admin_api: Api, member: Member, fmt: str) -> None:
    key = fmt.format(no=member.member_no, lower=member.member_no.lower(), pk=member.pk)
    assert admin_api.get("/members/lookup", params={"key": key}).json()["id"] == member.pk


def test_it_looks_up_by_phone(admin_api: Api, member: Member) -> None:
    assert admin_api.get("/members/lookup", params={"key": "+86 13800138000"}).json()["id"] == member.pk


def test_it_refuses_a_mistyped_card_code(admin_api: Api, member: Member) -> None:
    code = member.card_code
    wrong = code[:-1] + str((int(code[-1]) + 1) % 10)  # the check digit no longer matches
    r = admin_api.get("/members/lookup", params={"key": wrong})
    assert r.status_code == 404 and r.json()["code"] == "member_not_found"


@pytest.mark.parametrize("key", ["nobody", "13900139000", "M99999999", ""])
def test_it_answers_404_when_nothing_matches(admin_api: Api, member: Member, key: str) -> None:
    r = admin_api.get("/members/lookup", params={"key": key})
    assert r.status_code == 404 and r.json()["code"] == "member_not_found"


def test_it_looks_up_a_frozen_member_but_not_an_erased_one(admin_api: Api, member: Member) -> None:
    admin_api.post(f"/members/{member.pk}/freeze", {"reason": "x"})
    assert admin_api.get("/members/lookup", params={"key": member.card_code}).json()["status"] == "frozen"
    admin_api.post(f"/members/{member.pk}/erase", {"reason": "x"})
    assert admin_api.get("/members/lookup", params={"key": member.card_code}).status_code == 404


# --- freeze --------------------------------------------------------------------------------------


def test_it_freezes_and_unfreezes(admin_api: Api, member: Member) -> None:
    r = admin_api.post(f"/members/{member.pk}/freeze", {"reason": "card stolen"})
    assert r.status_code == 200 and r.json()["status"] == "frozen"
    member.refresh_from_db()
    assert member.status == "frozen"
    r = admin_api.post(f"/members/{member.pk}/unfreeze", {"reason": "card found"})
    assert r.status_code == 200 and r.json()["status"] == "active"


def test_it_treats_a_second_freeze_as_a_no_op(admin_api: Api, member: Member) -> None:
    from memberhub.audit.models import AuditEntry

    admin_api.post(f"/members/{member.pk}/freeze", {"reason": "x"})
    r = admin_api.post(f"/members/{member.pk}/freeze", {"reason": "x"})
    assert r.status_code == 200 and r.json()["status"] == "frozen"
    assert AuditEntry.objects.filter(action="member.freeze").count() == 1


def test_it_keeps_a_frozen_members_phone_taken(admin_api: Api, member: Member) -> None:
    admin_api.post(f"/members/{member.pk}/freeze", {"reason": "x"})
    r = admin_api.post("/members", {"phone": "13800138000", "home_store": "SH"})
    assert r.status_code == 409 and r.json()["code"] == "member_phone_taken"


def test_it_refuses_freezing_an_erased_member(admin_api: Api, member: Member) -> None:
    admin_api.post(f"/members/{member.pk}/erase", {"reason": "x"})
    r = admin_api.post(f"/members/{member.pk}/freeze", {"reason": "x"})
    assert r.status_code == 409 and r.json()["code"] == "member_erased"


def test_it_answers_404_when_freezing_a_missing_member(admin_api: Api, stores: Any) -> None:
    r = admin_api.post("/members/424242/freeze", {"reason": "x"})
    assert r.status_code == 404 and r.json()["code"] == "member_not_found"


def test_it_lets_a_cashier_register_and_find_at_the_till(staff_api: Callable[..., Api], stores: Any) -> None:
    till = staff_api("cashier", ["SH"])
    made = till.post("/members", {"phone": "13700137000", "name": "顾客"}).json()
    assert till.get("/members/lookup", params={"key": made["card_code"]}).json()["id"] == made["id"]
