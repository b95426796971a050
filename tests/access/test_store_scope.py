"""A store-scoped caller sees and changes only the members of its own stores."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from django.test import Client

from tests.conftest import Api
from tests.members.factories import member_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def members(stores: Any) -> dict[str, Any]:
    return {
        "sh": member_make(phone="13800138000", store="SH", name="上海会员"),
        "bj": member_make(phone="13900139000", store="BJ", name="北京会员"),
    }


@pytest.fixture(params=["cashier", "apikey"])
def scoped(request: Any, staff_api: Callable[..., Api], make_key: Callable[..., str]) -> Api:
    """A caller limited to store SH: a cashier, or an API key with every scope but one store."""
    if request.param == "cashier":
        return staff_api("cashier", ["SH"])
    return Api(Client(), make_key(None, ["SH"]))


def _not_found(r: Any) -> None:
    assert r.status_code == 404, r.content
    assert r.json()["code"] == "member_not_found"


def test_it_hides_another_stores_member_on_read(scoped: Api, members: dict[str, Any]) -> None:
    assert scoped.get(f"/members/{members['sh'].pk}").status_code == 200
    _not_found(scoped.get(f"/members/{members['bj'].pk}"))


def test_it_finds_another_stores_member_masked_only_by_what_they_present(
    scoped: Api, members: dict[str, Any]
) -> None:
    """A member may shop in any store: found by phone or card, to be served, and shown masked;
    not by the sequential member number, which would list every store's members."""
    for key in ("13900139000", members["bj"].card_code):
        r = scoped.get("/members/lookup", params={"key": key})
        assert r.status_code == 200 and r.json()["pii_masked"] and r.json()["phone"] == "139****9000", r.content
    _not_found(scoped.get("/members/lookup", params={"key": members["bj"].member_no}))


def test_it_hides_another_stores_member_on_patch(scoped: Api, members: dict[str, Any]) -> None:
    _not_found(scoped.patch(f"/members/{members['bj'].pk}", {"name": "改名"}))
    members["bj"].refresh_from_db()
    assert members["bj"].name == "北京会员"


def test_it_answers_the_same_for_a_missing_member_and_a_hidden_one(scoped: Api, members: dict[str, Any]) -> None:
    hidden = scoped.get(f"/members/{members['bj'].pk}")
    missing = scoped.get("/members/999999")
    assert hidden.status_code == missing.status_code == 404
    # the same answer but for the request's own id
    assert {**hidden.json(), "request_id": None} == {**missing.json(), "request_id": None}


def test_it_refuses_registering_into_another_store(scoped: Api, members: dict[str, Any]) -> None:
    r = scoped.post("/members", {"phone": "13700137000", "home_store": "BJ"})
    assert r.status_code == 403
    assert r.json()["code"] == "store_out_of_scope"


def test_it_registers_into_the_only_store_by_default(scoped: Api, members: dict[str, Any]) -> None:
    r = scoped.post("/members", {"phone": "13700137000"})
    assert r.status_code == 201 and r.json()["home_store"] == "SH"


def test_it_lists_only_the_own_stores_members(scoped: Api, members: dict[str, Any]) -> None:
    items = scoped.get("/members").json()["items"]
    assert [m["id"] for m in items] == [members["sh"].pk]
    assert scoped.get("/members", params={"store": "BJ"}).json()["items"] == []


def test_it_lists_only_the_own_stores(scoped: Api, members: dict[str, Any]) -> None:
    assert [s["code"] for s in scoped.get("/stores").json()] == ["SH"]


def test_it_refuses_moving_a_member_into_another_store(scoped: Api, members: dict[str, Any]) -> None:
    r = scoped.patch(f"/members/{members['sh'].pk}", {"home_store": "BJ"})
    assert r.status_code == 403 and r.json()["code"] == "store_out_of_scope"


@pytest.fixture
def scoped_service(staff_api: Callable[..., Api]) -> Api:
    return staff_api("service", ["SH"])


def test_it_hides_another_stores_member_on_freeze(scoped_service: Api, members: dict[str, Any]) -> None:
    _not_found(scoped_service.post(f"/members/{members['bj'].pk}/freeze", {"reason": "fraud"}))
    members["bj"].refresh_from_db()
    assert members["bj"].status == "active"
    assert scoped_service.post(f"/members/{members['sh'].pk}/freeze", {"reason": "fraud"}).status_code == 200


def test_it_hides_another_stores_member_on_erase_export_and_merge(
    scoped_service: Api, members: dict[str, Any]
) -> None:
    bj, sh = members["bj"].pk, members["sh"].pk
    _not_found(scoped_service.post(f"/members/{bj}/erase", {"reason": "asked"}))
    _not_found(scoped_service.get(f"/members/{bj}/export"))
    _not_found(scoped_service.post("/members/merge", {"survivor_id": sh, "absorbed_id": bj, "reason": "same"}))
    _not_found(scoped_service.post("/members/merge", {"survivor_id": bj, "absorbed_id": sh, "reason": "same"}))


def test_it_refuses_the_audit_log_to_a_store_scoped_caller(make_key: Callable[..., str]) -> None:
    r = Api(Client(), make_key(None, ["SH"])).get("/audit")
    assert r.status_code == 403 and r.json()["code"] == "store_scope_too_narrow"


def test_it_does_not_list_another_stores_members_as_duplicates(scoped_service: Api, stores: Any) -> None:
    member_make(phone="13800138000", store="SH", name="王小明", birthday=date(1990, 5, 1))
    member_make(phone="13800138001", store="BJ", name="王小明", birthday=date(1990, 5, 1))
    assert scoped_service.get("/members/duplicates").json() == []
