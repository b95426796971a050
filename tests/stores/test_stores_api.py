"""Stores: listed by anyone who may read them, created by administrators only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from memberhub.stores.models import Store
from tests.conftest import Api

pytestmark = pytest.mark.django_db


def test_it_lists_stores_by_code(admin_api: Api, stores: Any) -> None:
    data = admin_api.get("/stores").json()
    assert [s["code"] for s in data] == ["BJ", "ONLINE", "SH"]
    assert data[2] == {"id": stores["SH"].pk, "code": "SH", "name": "上海南京路店", "city": "", "kind": "offline",
                       "is_active": True}


def test_it_creates_a_store(admin_api: Api, stores: Any) -> None:
    r = admin_api.post("/stores", {"code": "GZ-TH", "name": "广州天河店", "city": "广州"})
    assert r.status_code == 201
    assert (r.json()["code"], r.json()["kind"]) == ("GZ-TH", "offline")
    assert Store.objects.get(code="GZ-TH").city == "广州"


def test_it_refuses_a_store_code_that_exists(admin_api: Api, stores: Any) -> None:
    r = admin_api.post("/stores", {"code": "SH", "name": "又一个上海店"})
    assert r.status_code == 409 and r.json()["code"] == "store_code_taken"
    assert Store.objects.filter(code="SH").count() == 1


@pytest.mark.parametrize("body", [{"code": "上海", "name": "x"}, {"code": "", "name": "x"},
                                  {"code": "GZ", "name": ""}, {"code": "GZ", "name": "x", "kind": "popup"},
                                  {"code": "GZ", "name": "x", "manager": "y"}])
def test_it_refuses_an_invalid_store(admin_api: Api, stores: Any, body: dict[str, str]) -> None:
    r = admin_api.post("/stores", body)
    assert r.status_code == 422 and r.json()["code"] == "validation_error"
    assert not Store.objects.filter(code="GZ").exists()


def test_it_lets_new_stores_be_used_at_once(admin_api: Api, stores: Any) -> None:
    admin_api.post("/stores", {"code": "ONLINE-TM", "name": "天猫旗舰店", "kind": "online"})
    r = admin_api.post("/members", {"phone": "13800138000", "home_store": "ONLINE-TM"})
    assert r.status_code == 201 and r.json()["home_store"] == "ONLINE-TM"


def test_it_refuses_store_creation_to_a_key_that_only_reads(make_key: Callable[..., str]) -> None:
    from django.test import Client

    r = Api(Client(), make_key(["stores:read"])).post("/stores", {"code": "GZ", "name": "x"})
    assert r.status_code == 403 and r.json()["detail"]["required"] == ["stores:manage"]
