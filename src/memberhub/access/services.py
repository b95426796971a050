"""Staff accounts, API keys and the failed-login limit."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from memberhub.access.models import ApiKey, LoginFailure, StaffProfile
from memberhub.access.principal import Principal
from memberhub.access.roles import ALL_CAPS, STORE_BOUND_ROLES, Role
from memberhub.audit.services import audit_record
from memberhub.core import rows
from memberhub.core.errors import NotFound, RateLimited, ValidationFailed
from memberhub.stores.models import Store

KEY_PREFIX = "mh"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def apikey_create(
    *, actor: Principal, name: str, scopes: list[str], store_codes: list[str] | None = None
) -> tuple[ApiKey, str]:
    """Create a key; the plain key is returned once and never stored."""
    unknown = sorted(set(scopes) - ALL_CAPS)
    if not name.strip():
        raise ValidationFailed(_("An API key needs a name."), code="apikey_name_required")
    if not scopes or unknown:
        raise ValidationFailed(
            _("Unknown or missing scopes."), code="apikey_invalid_scopes",
            detail={"unknown": unknown, "allowed": sorted(ALL_CAPS)},
        )
    stores = _stores_by_code(store_codes or [])
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    plain = f"{KEY_PREFIX}_{prefix}_{secret}"
    with transaction.atomic():
        key = ApiKey.objects.create(
            name=name.strip(), prefix=prefix, hashed=_hash(plain), scopes=sorted(set(scopes)),
            all_stores=not stores, created_by_id=actor.user_id,
        )
        if stores:
            key.stores.set(stores)
        audit_record(actor=actor, action="apikey.create", target=key, after={"name": key.name, "scopes": key.scopes})
    return key, plain


def apikey_revoke(*, actor: Principal, prefix: str, reason: str = "") -> ApiKey:
    with transaction.atomic():
        key = ApiKey.objects.select_for_update().filter(prefix=prefix).first()
        if key is None:
            raise NotFound(_("No such API key."), code="apikey_not_found")
        if key.revoked_at is None:
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at"])
            audit_record(actor=actor, action="apikey.revoke", target=key, reason=reason)
    return key


# A key's store list is read at most every STORES_TTL seconds per process (it is set when the
# key is created); the row itself (revocation, scopes, hash) is read on every request, so a
# revoked key is refused at once.
STORES_TTL = 10.0
_key_stores: dict[tuple[int, str], tuple[float, frozenset[int]]] = {}
_KEY_SQL = (f'SELECT "id", "name", "hashed", "scopes", "all_stores", "last_used_at" FROM "{ApiKey._meta.db_table}" '
            'WHERE "prefix" = %s AND "revoked_at" IS NULL')


def _apikey_stores(key_id: int, hashed: str) -> frozenset[int]:
    now = time.monotonic()
    cached = _key_stores.get((key_id, hashed))  # the hash too: a rolled-back test may reuse an id
    if cached is not None and now - cached[0] < STORES_TTL:
        return cached[1]
    stores = frozenset(ApiKey.stores.through.objects.filter(apikey_id=key_id).values_list("store_id", flat=True))
    _key_stores[(key_id, hashed)] = (now, stores)
    return stores


def apikey_authenticate(plain: str) -> Principal | None:
    """Every API call: one small read by prefix (plain SQL: the ORM's compiler would cost
    more than the read), the hash compared in constant time."""
    parts = plain.split("_")
    if len(parts) < 3 or parts[0] != KEY_PREFIX:
        return None
    row = rows.one(_KEY_SQL, [parts[1]])
    if row is None or not hmac.compare_digest(row[2], _hash(plain)):
        return None
    key_id, name, hashed, scopes, all_stores, last_used = row
    scopes = json.loads(scopes) if isinstance(scopes, str | bytes) else scopes
    if isinstance(last_used, str):
        last_used = datetime.fromisoformat(last_used)
    if last_used is not None and last_used.tzinfo is None:  # SQLite hands back naive UTC
        last_used = last_used.replace(tzinfo=UTC)
    now = timezone.now()
    # Write last_used_at at most once a minute: a write per request would serialise SQLite.
    if last_used is None or now - last_used > timedelta(minutes=1):
        ApiKey.objects.filter(pk=key_id).update(last_used_at=now)
    stores = None if all_stores else _apikey_stores(key_id, hashed)
    return Principal(kind="apikey", id=key_id, label=f"apikey:{name}", caps=frozenset(scopes), store_ids=stores)


def _stores_by_code(codes: list[str]) -> list[Store]:
    if not codes:
        return []
    stores = list(Store.objects.filter(code__in=codes))
    missing = sorted(set(codes) - {s.code for s in stores})
    if missing:
        raise ValidationFailed(_("Unknown store codes."), code="store_not_found", detail={"codes": missing})
    return stores


def staff_create(
    *, actor: Principal | None, username: str, password: str, role: str,
    store_codes: list[str] | None = None, email: str = "", superuser: bool = False,
) -> AbstractBaseUser:
    try:
        role_value = Role(role)
    except ValueError:
        raise ValidationFailed(
            _("Unknown role."), code="invalid_role", detail={"allowed": [r.value for r in Role]}
        ) from None
    stores = _stores_by_code(store_codes or [])
    if role_value in STORE_BOUND_ROLES and not stores:
        raise ValidationFailed(_("This role works in particular stores: name at least one."), code="stores_required")
    User = get_user_model()
    with transaction.atomic():
        if User.objects.filter(username=username).exists():
            raise ValidationFailed(_("This username is taken."), code="username_taken")
        user = User.objects.create_user(
            username=username, password=password, email=email,
            is_staff=superuser or role_value == Role.ADMIN, is_superuser=superuser,
        )
        profile = StaffProfile.objects.create(user=user, role=role_value.value, all_stores=not stores)
        if stores:
            profile.stores.set(stores)
        if actor is not None:
            audit_record(actor=actor, action="staff.create", target=user,
                         after={"username": username, "role": role_value.value, "stores": store_codes or []})
    return user


def login_check_allowed(*, username: str, ip: str) -> None:
    since = timezone.now() - timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)
    recent = LoginFailure.objects.filter(at__gte=since)
    if (
        recent.filter(username=username).count() >= settings.LOGIN_FAILURE_LIMIT
        or (ip and recent.filter(ip=ip).count() >= settings.LOGIN_FAILURE_LIMIT * 4)
    ):
        raise RateLimited(
            _("Too many failed logins; try again in a few minutes."), code="login_rate_limited",
            detail={"retry_after_seconds": settings.LOGIN_FAILURE_WINDOW_SECONDS},
        )


def login_failure_record(*, username: str, ip: str) -> None:
    LoginFailure.objects.create(username=username[:150], ip=ip[:64])
