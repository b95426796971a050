"""Who may call which /api/v1 endpoint: every role against every endpoint.

ALLOWED is the matrix written out by hand, so it reads as documentation; a separate test
proves it agrees with ROLE_CAPS, and the parametrised test proves the API enforces it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from memberhub.access.roles import ROLE_CAPS, Cap, Role
from memberhub.access.services import apikey_create, staff_create
from memberhub.members.services import member_set_frozen
from tests.conftest import Api
from tests.members.factories import member_make, upload

pytestmark = pytest.mark.django_db

ROLES = ("admin", "marketing", "cashier", "service", "analyst")
EVERYONE = set(ROLES)

# endpoint -> the roles that may call it (the cashier works in store SH only).
ALLOWED: dict[str, set[str]] = {
    "members.register": {"admin", "marketing", "cashier", "service"},
    "members.list": EVERYONE,
    "members.lookup": EVERYONE,
    "members.get": EVERYONE,
    "members.patch": {"admin", "marketing", "cashier", "service"},
    "members.freeze": {"admin", "service"},
    "members.unfreeze": {"admin", "service"},
    "members.erase": {"admin", "service"},
    "members.export": {"admin", "service"},
    "members.duplicates": {"admin", "service"},
    "members.merge": {"admin", "service"},
    "members.import": {"admin", "marketing"},
    "stores.list": EVERYONE,
    "stores.create": {"admin"},
    "audit.list": {"admin", "service", "analyst"},
    "auth.apikeys.list": {"admin"},
    "auth.apikeys.create": {"admin"},
    "auth.apikeys.revoke": {"admin"},
    "auth.staff.create": {"admin"},
    "auth.staff.update": {"admin"},
    "auth.me": EVERYONE,
}

# endpoint -> the capabilities its handler demands.
REQUIRES: dict[str, set[str]] = {
    "members.register": {Cap.MEMBERS_WRITE},
    "members.list": {Cap.MEMBERS_READ},
    "members.lookup": {Cap.MEMBERS_READ},
    "members.get": {Cap.MEMBERS_READ},
    "members.patch": {Cap.MEMBERS_WRITE},
    "members.freeze": {Cap.MEMBERS_FREEZE},
    "members.unfreeze": {Cap.MEMBERS_FREEZE},
    "members.erase": {Cap.MEMBERS_ERASE},
    "members.export": {Cap.MEMBERS_EXPORT, Cap.PII_READ},
    "members.duplicates": {Cap.MEMBERS_MERGE, Cap.MEMBERS_READ},
    "members.merge": {Cap.MEMBERS_MERGE},
    "members.import": {Cap.MEMBERS_IMPORT, Cap.MEMBERS_WRITE},
    "stores.list": {Cap.STORES_READ},
    "stores.create": {Cap.STORES_MANAGE},
    "audit.list": {Cap.AUDIT_READ},
    "auth.apikeys.list": {Cap.APIKEYS_MANAGE},
    "auth.apikeys.create": {Cap.APIKEYS_MANAGE},
    "auth.apikeys.revoke": {Cap.APIKEYS_MANAGE},
    "auth.staff.create": {Cap.STAFF_MANAGE},
    "auth.staff.update": {Cap.STAFF_MANAGE},
    "auth.me": set(),
}

CSV = "手机号,姓名\n13700137000,导入会员\n".encode()


def _call(endpoint: str, api: Api, ctx: dict[str, Any]) -> Any:
    """A request that is valid in every respect except, perhaps, the caller's permission."""
    m, m2 = ctx["member"], ctx["member2"]
    calls: dict[str, Callable[[], Any]] = {
        "members.register": lambda: api.post("/members", {"phone": "13900139000", "home_store": "SH"}),
        "members.list": lambda: api.get("/members"),
        "members.lookup": lambda: api.get("/members/lookup", params={"key": "13800138000"}),
        "members.get": lambda: api.get(f"/members/{m.pk}"),
        "members.patch": lambda: api.patch(f"/members/{m.pk}", {"name": "新名字"}),
        "members.freeze": lambda: api.post(f"/members/{m.pk}/freeze", {"reason": "suspected fraud"}),
        "members.unfreeze": lambda: api.post(f"/members/{ctx['frozen'].pk}/unfreeze", {"reason": "cleared"}),
        "members.erase": lambda: api.post(f"/members/{m.pk}/erase", {"reason": "member asked"}),
        "members.export": lambda: api.get(f"/members/{m.pk}/export"),
        "members.duplicates": lambda: api.get("/members/duplicates"),
        "members.merge": lambda: api.post("/members/merge", {"survivor_id": m.pk, "absorbed_id": m2.pk,
                                                             "reason": "same person"}),
        "members.import": lambda: upload(api, "/members/import", CSV),
        "stores.list": lambda: api.get("/stores"),
        "stores.create": lambda: api.post("/stores", {"code": "GZ", "name": "广州天河店"}),
        "audit.list": lambda: api.get("/audit"),
        "auth.apikeys.list": lambda: api.get("/auth/apikeys"),
        "auth.apikeys.create": lambda: api.post("/auth/apikeys", {"name": "pos", "scopes": ["members:read"]}),
        "auth.apikeys.revoke": lambda: api.post(f"/auth/apikeys/{ctx['key_prefix']}/revoke"),
        "auth.staff.create": lambda: api.post("/auth/staff", {"username": "new-analyst", "password": "pw-123456789",
                                                              "role": "analyst"}),
        "auth.staff.update": lambda: api.patch("/auth/staff/old-analyst", {"role": "analyst", "stores": ["SH"],
                                                                          "reason": "works in Shanghai now"}),
        "auth.me": lambda: api.get("/auth/me"),
    }
    return calls[endpoint]()


@pytest.fixture
def ctx(stores: dict[str, Any], system: Any) -> dict[str, Any]:
    frozen = member_make(phone="13600136000", name="冻结会员")
    member_set_frozen(actor=system, member_id=frozen.pk, frozen=True, reason="test")
    key, _plain = apikey_create(actor=system, name="old", scopes=["members:read"])
    staff_create(actor=None, username="old-analyst", password="pw-123456789", role="analyst")
    return {
        "member": member_make(phone="13800138000", name="王小明"),
        "member2": member_make(phone="13800138001", name="王晓明"),
        "frozen": frozen,
        "key_prefix": key.prefix,
    }


def test_it_documents_a_matrix_that_agrees_with_role_caps() -> None:
    assert set(ALLOWED) == set(REQUIRES)
    for endpoint, required in REQUIRES.items():
        for role in ROLES:
            holds = set(required) <= ROLE_CAPS[Role(role)]
            assert holds == (role in ALLOWED[endpoint]), (endpoint, role)


@pytest.mark.parametrize("endpoint", sorted(ALLOWED))
@pytest.mark.parametrize("role", ROLES)
def test_it_enforces_the_role_matrix(
    staff_api: Callable[..., Any], ctx: dict[str, Any], role: str, endpoint: str
) -> None:
    api = staff_api(role, ["SH"] if role == "cashier" else None)
    r = _call(endpoint, api, ctx)
    if role in ALLOWED[endpoint]:
        assert 200 <= r.status_code < 300, (r.status_code, r.content[:300])
    else:
        assert r.status_code == 403, (r.status_code, r.content[:300])
        assert r.json()["code"] == "permission_denied"


@pytest.mark.parametrize("endpoint", sorted(ALLOWED))
def test_it_refuses_an_api_key_outside_its_scopes(
    make_key: Callable[..., str], client: Any, ctx: dict[str, Any], endpoint: str
) -> None:
    # An analyst-like integration: may read members and stores, nothing else.
    api = Api(client, make_key(["members:read", "stores:read"]))
    r = _call(endpoint, api, ctx)
    if REQUIRES[endpoint] <= {"members:read", "stores:read"}:
        assert 200 <= r.status_code < 300, (r.status_code, r.content[:300])
    else:
        assert r.status_code == 403 and r.json()["code"] == "permission_denied", r.content[:300]
