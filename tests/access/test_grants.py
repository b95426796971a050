"""Nobody grants what they do not hold: API keys, staff accounts and changes to them.

GRANTABLE is written out by hand so it reads as documentation; a separate test proves it agrees
with ROLE_CAPS, and the parametrised tests prove the API enforces it for every pair of roles
and every combination of store scopes.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from memberhub.access.models import ApiKey, StaffProfile
from memberhub.access.roles import ROLE_CAPS, Cap, Role
from memberhub.audit.models import AuditEntry
from tests.conftest import Api

pytestmark = pytest.mark.django_db

ROLES = ("admin", "marketing", "cashier", "service", "analyst")
PASSWORD = "pw-123456789"

# creator's role -> the roles whose capabilities it holds, so may hand out (no role but admin
# holds another role's capabilities whole: each has one its peers lack).
GRANTABLE: dict[str, set[str]] = {
    "admin": set(ROLES),
    "marketing": {"marketing"},
    "cashier": {"cashier"},
    "service": {"service"},
    "analyst": {"analyst"},
}

# creator's stores -> target stores -> allowed (None: every store)
STORE_CASES = [
    (None, None, True), (None, ["SH"], True), (None, ["SH", "BJ"], True),
    (["SH"], None, False), (["SH"], ["SH"], True), (["SH"], ["BJ"], False), (["SH"], ["SH", "BJ"], False),
    (["SH", "BJ"], ["BJ"], True), (["SH", "BJ"], ["SH", "BJ"], True), (["SH", "BJ"], None, False),
]


def test_the_written_grant_matrix_agrees_with_role_caps() -> None:
    for creator in ROLES:
        for target in ROLES:
            holds = ROLE_CAPS[Role(target)] <= ROLE_CAPS[Role(creator)]
            assert holds == (target in GRANTABLE[creator]), (creator, target)


def _creator(make_key: Callable[..., str], role: str, stores: list[str] | None, manage: str) -> Api:
    """An integration holding a role's capabilities plus the one that lets it grant."""
    return Api(Client(), make_key(sorted(ROLE_CAPS[Role(role)] | {manage}), stores))


def _refused(r: Any) -> None:
    assert r.status_code == 403, r.content
    assert r.json()["code"] == "grant_exceeds_own"


def _stores_for(role: str, stores: list[str] | None) -> list[str]:
    return stores if stores is not None else (["SH"] if role == "cashier" else [])


@pytest.mark.parametrize("target", ROLES)
@pytest.mark.parametrize("creator", ROLES)
def test_a_key_manager_grants_only_scopes_it_holds(
    make_key: Callable[..., str], creator: str, target: str
) -> None:
    api = _creator(make_key, creator, None, Cap.APIKEYS_MANAGE)
    r = api.post("/auth/apikeys", {"name": "new", "scopes": sorted(ROLE_CAPS[Role(target)])})
    if target in GRANTABLE[creator]:
        assert r.status_code == 201, r.content
    else:
        _refused(r)
        assert not ApiKey.objects.filter(name="new").exists()


@pytest.mark.parametrize("target", ROLES)
@pytest.mark.parametrize("creator", ROLES)
def test_a_staff_manager_creates_only_roles_it_holds(
    make_key: Callable[..., str], creator: str, target: str
) -> None:
    api = _creator(make_key, creator, None, Cap.STAFF_MANAGE)
    r = api.post("/auth/staff", {"username": "new-one", "password": PASSWORD, "role": target,
                                 "stores": _stores_for(target, None)})
    if target in GRANTABLE[creator]:
        assert r.status_code == 201, r.content
    else:
        _refused(r)
        assert not get_user_model().objects.filter(username="new-one").exists()


@pytest.mark.parametrize("creator_stores,target_stores,allowed", STORE_CASES)
def test_a_key_covers_only_the_creators_stores(
    make_key: Callable[..., str], creator_stores: list[str] | None, target_stores: list[str] | None, allowed: bool
) -> None:
    api = Api(Client(), make_key(["apikeys:manage", "members:read"], creator_stores))
    r = api.post("/auth/apikeys", {"name": "new", "scopes": ["members:read"], "stores": target_stores or []})
    if allowed:
        assert r.status_code == 201, r.content
        assert ApiKey.objects.get(name="new").all_stores is (target_stores is None)
    else:
        _refused(r)
        assert r.json()["detail"]["all_stores"] is (target_stores is None)


@pytest.mark.parametrize("creator_stores,target_stores,allowed", STORE_CASES)
@pytest.mark.parametrize("via", ["key", "session"])
def test_a_staff_account_covers_only_the_creators_stores(
    make_key: Callable[..., str], staff_api: Callable[..., Api], via: str,
    creator_stores: list[str] | None, target_stores: list[str] | None, allowed: bool,
) -> None:
    # a staff admin limited to stores, or a key with the service role's capabilities
    api = (staff_api("admin", creator_stores) if via == "session"
           else _creator(make_key, "service", creator_stores, Cap.STAFF_MANAGE))
    r = api.post("/auth/staff", {"username": "new-one", "password": PASSWORD, "role": "service",
                                 "stores": target_stores or []})
    if allowed:
        assert r.status_code == 201, r.content
    else:
        _refused(r)
        assert not get_user_model().objects.filter(username="new-one").exists()


def test_a_one_store_key_manager_cannot_mint_an_all_store_key_with_pii(make_key: Callable[..., str]) -> None:
    """The issue's case: `apikeys:manage` in one store minted an all-store key with
    `pii:read` and `staff:manage`."""
    api = Api(Client(), make_key(["apikeys:manage"], ["SH"]))
    r = api.post("/auth/apikeys", {"name": "evil", "scopes": ["pii:read", "staff:manage"]})
    _refused(r)
    assert r.json()["detail"] == {"capabilities": ["pii:read", "staff:manage"], "stores": [], "all_stores": True}
    assert not ApiKey.objects.filter(name="evil").exists()


def test_a_staff_manager_key_cannot_create_an_administrator(make_key: Callable[..., str]) -> None:
    api = Api(Client(), make_key(["staff:manage"]))
    r = api.post("/auth/staff", {"username": "evil", "password": PASSWORD, "role": "admin"})
    _refused(r)
    assert not get_user_model().objects.filter(username="evil").exists()


def test_a_store_scoped_key_manager_cannot_revoke_a_chain_wide_key(make_key: Callable[..., str]) -> None:
    chain = make_key(["members:read"])
    api = Api(Client(), make_key(["apikeys:manage", "members:read"], ["SH"]))
    _refused(api.post(f"/auth/apikeys/{chain.split('_')[1]}/revoke"))
    assert ApiKey.objects.get(prefix=chain.split("_")[1]).revoked_at is None
    own = make_key(["members:read"], ["SH"])
    assert api.post(f"/auth/apikeys/{own.split('_')[1]}/revoke").status_code == 200


# --- changing a staff account ------------------------------------------------------------------


def test_an_admin_changes_a_role_and_stores_and_it_is_audited(admin_api: Api, make_staff: Callable[..., Any]) -> None:
    user = make_staff("analyst")
    r = admin_api.patch("/auth/staff/analyst-all", {"role": "cashier", "stores": ["SH"], "reason": "moved to the till"})
    assert r.status_code == 200, r.content
    assert r.json()["label"] == "analyst-all" and "purchases:write" in r.json()["capabilities"]
    assert len(r.json()["stores"]) == 1
    entry = AuditEntry.objects.filter(action="staff.update").get()
    assert entry.reason == "moved to the till" and str(entry.target_id) == str(user.pk)


@pytest.mark.parametrize("target", ROLES)
@pytest.mark.parametrize("creator", ROLES)
def test_a_staff_manager_promotes_only_to_roles_it_holds(
    make_key: Callable[..., str], make_staff: Callable[..., Any], creator: str, target: str
) -> None:
    make_staff(creator, ["SH"] if creator == "cashier" else None, username="someone")  # its own role: editable
    if creator == "admin":
        make_staff("admin", username="another-admin")  # so that demoting "someone" leaves one
    api = _creator(make_key, creator, None, Cap.STAFF_MANAGE)
    r = api.patch("/auth/staff/someone", {"role": target, "stores": _stores_for(target, ["SH"] if creator == "cashier"
                                                                              else None), "reason": "r"})
    profile = StaffProfile.objects.get(user__username="someone")
    if target in GRANTABLE[creator]:
        assert r.status_code == 200, r.content
        assert profile.role == target
    else:
        _refused(r)
        assert profile.role == creator


def test_a_staff_manager_cannot_touch_an_account_above_it(
    make_key: Callable[..., str], make_staff: Callable[..., Any]
) -> None:
    make_staff("admin", username="boss")
    api = _creator(make_key, "service", None, Cap.STAFF_MANAGE)
    _refused(api.patch("/auth/staff/boss", {"role": "service", "reason": "take over"}))
    _refused(api.patch("/auth/staff/boss", {"active": False, "reason": "lock the boss out"}))
    assert get_user_model().objects.get(username="boss").is_active


def test_a_store_scoped_admin_cannot_widen_an_account_to_every_store(
    staff_api: Callable[..., Api], make_staff: Callable[..., Any]
) -> None:
    make_staff("service", ["SH"], username="helper")
    api = staff_api("admin", ["SH"])
    _refused(api.patch("/auth/staff/helper", {"stores": [], "reason": "all"}))
    _refused(api.patch("/auth/staff/helper", {"stores": ["BJ"], "reason": "other store"}))
    assert api.patch("/auth/staff/helper", {"role": "analyst", "reason": "desk job"}).status_code == 200


def test_the_last_administrator_cannot_be_demoted_or_deactivated(admin_api: Api, make_staff: Callable[..., Any]) -> None:
    make_staff("admin", username="only-admin")
    for change in ({"role": "service"}, {"active": False}, {"stores": ["SH"]}):
        r = admin_api.patch("/auth/staff/only-admin", {**change, "reason": "oops"})
        assert r.status_code == 409 and r.json()["code"] == "last_admin", r.content
    make_staff("admin", username="second-admin")
    assert admin_api.patch("/auth/staff/only-admin", {"role": "service", "reason": "handed over"}).status_code == 200


def test_a_deactivated_account_cannot_log_in_and_its_session_ends(
    admin_api: Api, make_staff: Callable[..., Any]
) -> None:
    make_staff("analyst")
    client = Client()
    assert client.post("/api/v1/auth/login", {"username": "analyst-all", "password": PASSWORD},
                       content_type="application/json").status_code == 200
    assert admin_api.patch("/auth/staff/analyst-all", {"active": False, "reason": "left"}).status_code == 200
    assert client.get("/api/v1/auth/me").status_code == 401
    assert Client().post("/api/v1/auth/login", {"username": "analyst-all", "password": PASSWORD},
                         content_type="application/json").status_code == 401


def test_a_superuser_is_managed_from_the_command_line_only(admin_api: Api, stores: Any) -> None:
    import os

    os.environ["MEMBERHUB_ADMIN_PASSWORD"] = "a-Long-unusual-passphrase-42"
    try:
        call_command("createadmin", "--username", "root", stdout=io.StringIO())
    finally:
        del os.environ["MEMBERHUB_ADMIN_PASSWORD"]
    _refused(admin_api.patch("/auth/staff/root", {"role": "analyst", "reason": "x"}))
    assert admin_api.patch("/auth/staff/nobody", {"role": "analyst", "reason": "x"}).json()["code"] == "staff_not_found"


def test_the_command_line_grants_anything(stores: Any) -> None:
    out = io.StringIO()
    call_command("apikey", "create", "--name", "all", "--scopes", ",".join(sorted(ROLE_CAPS[Role.ADMIN])), stdout=out)
    assert ApiKey.objects.get(name="all").all_stores
    assert AuditEntry.objects.filter(action="apikey.create").exists()


@pytest.mark.django_db(transaction=True)
def test_two_administrators_demoted_at_once_leave_one(make_key: Callable[..., str], make_staff: Callable[..., Any]) -> None:
    """Each change alone leaves an administrator; both at once would leave none."""
    import threading

    from django.db import connection

    make_staff("admin", username="admin-a")
    make_staff("admin", username="admin-b")
    token = make_key()
    barrier, results = threading.Barrier(2), {}

    def demote(name: str) -> None:
        try:
            api = Api(Client(), token)
            barrier.wait(10)
            results[name] = api.patch(f"/auth/staff/{name}", {"role": "service", "reason": "reorganisation"})
        finally:
            connection.close()

    threads = [threading.Thread(target=demote, args=(n,)) for n in ("admin-a", "admin-b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(r.status_code for r in results.values()) == [200, 409], [r.content for r in results.values()]
    assert StaffProfile.objects.filter(role="admin").count() == 1
