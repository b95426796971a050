from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.django_db


def register(api: Any, **body: Any) -> Any:
    body.setdefault("phone", "13800138000")
    body.setdefault("home_store", "SH")
    return api.post("/members", body)


def test_it_registers_a_member_with_a_number_and_card_code(admin_api: Any) -> None:
    r = register(admin_api, name="王小明", email="Wang@Example.CN", birthday="1990-05-01",
                 consents=[{"channel": "sms", "granted": True, "source": "store"}])
    assert r.status_code == 201, r.content
    data = r.json()
    assert data["member_no"] == f"M{data['id']:08d}"
    assert len(data["card_code"]) == 16
    assert data["phone"] == "+8613800138000"  # admin key holds pii:read
    assert data["email"] == "wang@example.cn"
    assert data["consents"][0]["channel"] == "sms" and data["consents"][0]["granted"] is True


@pytest.mark.parametrize("variant", ["+86 138 0013 8000", "008613800138000", "138-0013-8000", "(+86)13800138000",
                                     "１３８００１３８０００"])
def test_it_refuses_the_same_phone_in_another_format(admin_api: Any, variant: str) -> None:
    first = register(admin_api).json()
    r = register(admin_api, phone=variant)
    assert r.status_code == 409
    body = r.json()
    assert body["code"] == "member_phone_taken"
    assert body["detail"]["member_id"] == first["id"]


@pytest.mark.parametrize("phone,code", [("12345", "phone_invalid"), ("", "phone_required"),
                                        ("abcdefghijk", "phone_invalid"), ("01065529988", "phone_not_mobile")])
def test_it_refuses_invalid_phones(admin_api: Any, phone: str, code: str) -> None:
    r = register(admin_api, phone=phone)
    assert r.status_code == 422
    assert r.json()["code"] == code


def test_it_accepts_foreign_numbers_in_e164(admin_api: Any) -> None:
    r = register(admin_api, phone="+447911123456")
    assert r.status_code == 201
    assert r.json()["phone"] == "+447911123456"


def test_it_keeps_emoji_names_and_refuses_very_long_ones(admin_api: Any) -> None:
    assert register(admin_api, name="小美🌸").json()["name"] == "小美🌸"
    r = register(admin_api, phone="13900139000", name="长" * 65)
    assert r.status_code == 422 and r.json()["code"] == "name_too_long"


def test_it_answers_unknown_fields_and_bad_json_with_the_envelope(admin_api: Any) -> None:
    r = register(admin_api, nickname="x")
    assert r.status_code == 422 and r.json()["code"] == "validation_error"
    r = admin_api.post("/members", "{not json")
    assert r.status_code == 400 and r.json()["code"] == "malformed_json"
    r = admin_api.post("/members", {"phone": 13800138000, "home_store": "SH"})
    assert r.status_code == 422


def test_it_speaks_chinese_by_default_and_english_on_request(admin_api: Any) -> None:
    register(admin_api)
    zh = register(admin_api).json()["message"]
    en = admin_api.post("/members", {"phone": "13800138000", "home_store": "SH"},
                        headers={"Accept-Language": "en"}).json()["message"]
    assert en == "A member with this phone number already exists."
    assert zh != en and any("\u4e00" <= ch <= "\u9fff" for ch in zh)


def test_it_refuses_an_oversized_body(admin_api: Any, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    r = register(admin_api, address="x" * 500, name="y" * 1000)
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
