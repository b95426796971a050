"""What the Idempotency-Key store keeps: sealed answers, no one-time secrets, replays only to
the authenticated principal that made them, and nothing left of an erased member."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from memberhub.access.services import apikey_revoke
from memberhub.core.idempotency import WITHHELD_HEADER
from memberhub.core.models import IdempotencyRecord
from memberhub.members.models import Member
from tests.conftest import Api

pytestmark = pytest.mark.django_db

PHONE, EMAIL, ID_NUMBER = "13912345678", "wang.xiaoming@example.cn", "110101199003074514"
BODY = {"phone": PHONE, "email": EMAIL, "id_number": ID_NUMBER, "name": "王小明", "home_store": "SH"}


def _register(api: Api, key: str = "reg-1") -> Any:
    return api.post("/members", BODY, headers={"Idempotency-Key": key})


def _stored(record: IdempotencyRecord) -> bytes:
    return b"|".join(str(v).encode() if not isinstance(v, bytes | memoryview) else bytes(v)
                     for v in IdempotencyRecord.objects.filter(pk=record.pk).values_list().get())


def test_a_kept_answer_holds_no_personal_data_in_the_clear(admin_api: Api) -> None:
    first = _register(admin_api)
    assert first.status_code == 201 and first.json()["phone"] == "+86" + PHONE  # admin sees it whole
    record = IdempotencyRecord.objects.get()
    stored = _stored(record)
    for secret in (PHONE, EMAIL, ID_NUMBER):
        assert secret.encode() not in stored
    # the fingerprint is keyed: not the plain hash of what was sent
    assert record.fingerprint != hashlib.sha256(json.dumps(BODY).encode()).hexdigest()
    assert record.member_id == first.json()["id"]
    assert record.scope.startswith("k:")  # the principal, not a hash of its credentials
    replay = _register(admin_api)
    assert replay["Idempotent-Replayed"] == "true" and replay.json() == first.json()


def test_a_revoked_key_gets_no_replay(make_key: Callable[..., str], system: Any) -> None:
    token = make_key()
    api = Api(Client(), token)
    assert _register(api).status_code == 201
    apikey_revoke(actor=system, prefix=token.split("_")[1])
    r = _register(api)
    assert r.status_code == 401 and r.json()["code"] == "not_authenticated"
    assert PHONE not in r.content.decode()
    assert not r.has_header("Idempotent-Replayed")


def test_an_unknown_key_gets_no_replay_and_claims_nothing(admin_api: Api) -> None:
    _register(admin_api)
    forged = Api(Client(), "mh_nope_nope")
    r = _register(forged)
    assert r.status_code == 401 and not r.has_header("Idempotent-Replayed")
    assert IdempotencyRecord.objects.count() == 1


def test_gift_card_pins_are_never_kept_and_a_replay_says_so(admin_api: Api) -> None:
    body = {"count": 2, "amount_fen": 10000, "batch_ref": "B-1"}
    first = admin_api.post("/wallet/gift-cards", body, headers={"Idempotency-Key": "gc-1"})
    assert first.status_code == 201
    pins = [c["pin"] for c in first.json()]
    assert all(pins)
    record = IdempotencyRecord.objects.get()
    assert record.withheld == "pin"
    stored = _stored(record)
    assert all(p.encode() not in stored for p in pins)
    replay = admin_api.post("/wallet/gift-cards", body, headers={"Idempotency-Key": "gc-1"})
    assert replay["Idempotent-Replayed"] == "true" and replay[WITHHELD_HEADER] == "pin"
    assert [c["pin"] for c in replay.json()] == [None, None]
    assert [c["code"] for c in replay.json()] == [c["code"] for c in first.json()]


def test_a_minted_api_key_is_never_kept_and_a_replay_says_so(admin_api: Api) -> None:
    body = {"name": "till-7", "scopes": ["members:read"], "stores": ["SH"]}
    first = admin_api.post("/auth/apikeys", body, headers={"Idempotency-Key": "key-1"})
    assert first.status_code == 201, first.content
    plain = first.json()["key"]
    assert plain
    stored = _stored(IdempotencyRecord.objects.get())
    assert plain.encode() not in stored and plain.split("_")[-1].encode() not in stored
    replay = admin_api.post("/auth/apikeys", body, headers={"Idempotency-Key": "key-1"})
    assert replay["Idempotent-Replayed"] == "true" and replay[WITHHELD_HEADER] == "key"
    assert replay.json()["key"] is None and replay.json()["prefix"] == first.json()["prefix"]


def test_erasure_deletes_the_answers_that_show_the_member(admin_api: Api, make_key: Callable[..., str]) -> None:
    other = Api(Client(), make_key())
    member_id = _register(admin_api).json()["id"]
    assert other.patch(f"/members/{member_id}", {"name": "王晓明"}).status_code == 200
    # another caller's kept answer about the same member, and one about someone else
    assert other.post(f"/members/{member_id}/freeze", {"reason": "lost card"},
                      headers={"Idempotency-Key": "fr-1"}).status_code == 200
    someone = admin_api.post("/members", {"phone": "13700001111"}, headers={"Idempotency-Key": "reg-2"})
    assert someone.status_code == 201
    r = admin_api.post(f"/members/{member_id}/erase", {"reason": "asked"})
    assert r.status_code == 200, r.content
    assert not IdempotencyRecord.objects.filter(member_id=member_id, response_body__isnull=False).exists()
    assert IdempotencyRecord.objects.get(key="reg-2").response_body is not None
    # the key stays spent: a retry neither replays the erased data nor registers the person again
    retry = _register(admin_api)
    assert retry.status_code == 409 and retry.json()["code"] == "idempotency_replay_erased"
    assert PHONE not in retry.content.decode()
    assert Member.objects.count() == 2


def test_an_unmasked_answer_is_not_replayed_to_a_caller_who_lost_pii_read(make_staff: Callable[..., Any]) -> None:
    from memberhub.access.models import StaffProfile

    user = make_staff("service")
    client = Client()
    client.force_login(user)
    api = Api(client)
    first = _register(api)
    assert first.status_code == 201 and first.json()["pii_masked"] is False
    assert IdempotencyRecord.objects.get().pii_unmasked
    StaffProfile.objects.filter(user=user).update(role="marketing")  # no pii:read any more
    r = _register(api)
    assert (r.status_code, r.json()["code"]) == (403, "permission_denied")
    assert PHONE not in r.content.decode()
    StaffProfile.objects.filter(user=user).update(role="service")
    assert _register(api)["Idempotent-Replayed"] == "true"
