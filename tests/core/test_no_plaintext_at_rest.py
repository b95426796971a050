"""No phone, email, ID number, gift-card PIN or API key in the clear anywhere at rest.

A day at the till in small: members registered with their personal data (with and without
Idempotency-Key, replayed), changed, looked up by phone in the query string, purchases and a
checkout naming the member by phone and paying by gift card with its PIN, a wrong PIN, gift
cards issued, API keys minted, a background job queued, a member erased. Then every file in
MEMBERHUB_DATA_DIR (the SQLite database and its WAL, the job queue, anything else), every
row of every table read through SQL (PostgreSQL keeps its files elsewhere) and every log line
are searched for the plain values.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.test import Client

from memberhub.core.server import ACCESS_LOG_FORMAT
from tests.conftest import Api

PEOPLE = [
    {"phone": "13659871234", "email": "li.na.rest@example.cn", "id_number": "31010419850612203X"},
    {"phone": "15821436587", "email": "zhao.lei.rest@example.cn", "id_number": "440305199211305217"},
    {"phone": "18698765432", "email": "chen.jing.rest@example.cn", "id_number": "510104197712094420"},
]


def _pattern(secret: str) -> re.Pattern[bytes]:
    """The value on its own: not inside a longer run of token or hash characters, where a
    short PIN turns up by chance (a Fernet token or a hex digest is full of digits)."""
    return re.compile(rb"(?<![A-Za-z0-9+/=_-])" + re.escape(secret.encode()) + rb"(?![A-Za-z0-9+/=_-])"
                      if len(secret) < 10 else re.escape(secret.encode()), re.IGNORECASE)


def _rows() -> bytes:
    out = []
    for model in apps.get_models():
        for row in model._default_manager.all().values_list():
            out.append(b"\x1f".join(bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode()
                                    for v in row))
    return b"\n".join(out)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.django_db(transaction=True)
def test_no_personal_data_or_secret_sits_in_the_clear(make_key: Any, staff_api: Any,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    from huey.contrib.djhuey import HUEY

    caplog.set_level(logging.DEBUG)
    data_dir = Path(os.environ["MEMBERHUB_DATA_DIR"])
    admin = Api(Client(), make_key())
    cashier = staff_api("cashier", ["SH"])
    secrets: list[str] = [v for p in PEOPLE for v in p.values()]
    HUEY.immediate = False  # jobs go to the queue file in the data dir, as in production
    try:
        ids = []
        for i, person in enumerate(PEOPLE):
            body = {**person, "name": f"测试{i}", "home_store": "SH", "address": "上海市黄浦区南京东路1号"}
            headers = {"Idempotency-Key": f"reg-{i}"} if i < 2 else {}
            r = admin.post("/members", body, headers=headers)
            assert r.status_code == 201, r.content
            ids.append(r.json()["id"])
        assert admin.post("/members", {**PEOPLE[0], "name": "测试0", "home_store": "SH",
                                       "address": "上海市黄浦区南京东路1号"},
                          headers={"Idempotency-Key": "reg-0"})["Idempotent-Replayed"] == "true"
        new_email = "li.na.changed@example.cn"
        secrets.append(new_email)
        assert admin.patch(f"/members/{ids[0]}", {"email": new_email, "reason": "moved"},
                           headers={"Idempotency-Key": "upd-0"}).status_code == 200
        # lookups by phone in the query string (the access log and Django's own logging)
        assert admin.get("/members", params={"phone": PEOPLE[1]["phone"]}).status_code == 200
        assert cashier.get("/members/lookup", params={"key": PEOPLE[1]["phone"]}).status_code == 200
        # purchases naming the member by phone
        for n, person in enumerate(PEOPLE[:2]):
            r = admin.post("/loyalty/purchases", {"member": person["phone"], "channel": "offline",
                                                  "order_no": f"REST-{n}", "store": "SH", "paid_fen": 12800},
                           headers={"Idempotency-Key": f"buy-{n}"})
            assert r.status_code == 201, r.content
        # gift cards: issued with their PINs, a wrong PIN, a checkout paying by card and PIN
        cards = admin.post("/wallet/gift-cards", {"count": 2, "amount_fen": 50000, "batch_ref": "REST-GC"},
                           headers={"Idempotency-Key": "gc-1"}).json()
        secrets += [c["pin"] for c in cards]
        admin.post("/wallet/gift-cards", {"count": 2, "amount_fen": 50000, "batch_ref": "REST-GC"},
                   headers={"Idempotency-Key": "gc-1"})
        wrong = next(p for p in ("000000", "111111", "222222") if p not in {c["pin"] for c in cards})
        r = cashier.post(f"/wallet/gift-cards/{cards[0]['code']}/spend",
                         {"amount_fen": 100, "order_no": "REST-W", "store": "SH", "pin": wrong})
        assert r.status_code in (403, 423), r.content
        r = cashier.post(f"/wallet/gift-cards/{cards[1]['code']}/spend",
                         {"amount_fen": 1000, "order_no": "REST-S", "store": "SH", "pin": cards[1]["pin"]},
                         headers={"Idempotency-Key": "gs-1"})
        assert r.status_code == 200, r.content
        r = admin.post("/checkout", {
            "member": PEOPLE[2]["phone"], "channel": "offline", "store": "SH", "order_no": "REST-C",
            "lines": [{"line_id": "1", "sku": "TEA", "qty": 1, "unit_price_fen": 3000}],
            "gift_cards": [{"code": cards[0]["code"], "amount_fen": 3000, "pin": cards[0]["pin"]}],
        }, headers={"Idempotency-Key": "co-1"})
        assert r.status_code == 201, r.content
        # API keys minted (kept for replay) and used
        for n in range(2):
            r = admin.post("/auth/apikeys", {"name": f"till-{n}", "scopes": ["members:read"], "stores": ["SH"]},
                           headers={"Idempotency-Key": f"key-{n}"})
            assert r.status_code == 201, r.content
            secrets.append(r.json()["key"])
            assert Api(Client(), r.json()["key"]).get(f"/members/{ids[0]}").status_code == 200
        # a job queued, and a member erased
        assert admin.post("/analytics/runs", {"kind": "rfm"}).status_code == 202
        assert HUEY.pending_count() >= 1
        assert admin.post(f"/members/{ids[1]}/erase", {"reason": "asked"}).status_code == 200
    finally:
        HUEY.immediate = True

    places = {"database rows": _rows(), **_files(data_dir),
              "log": "\n".join(r.getMessage() for r in caplog.records).encode()}
    assert any(b"tasks" in k.encode() for k in places), list(places)  # the queue file was searched
    found = [(secret, where) for secret in secrets for where, content in places.items()
             if _pattern(secret).search(content)]
    assert not found, found


def test_the_access_log_names_the_path_without_the_query_string() -> None:
    line = ACCESS_LOG_FORMAT % {"time": "t", "addr": "10.0.0.1", "method": "GET", "path": "/api/v1/members",
                                "query_string": "phone=13659871234", "protocol": "HTTP/1.1", "status": 200,
                                "dt_ms": 1.0, "scheme": "http"}
    assert "/api/v1/members" in line and "13659871234" not in line
