"""Staff accounts, API keys and the failed-login limit."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import secrets
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from memberhub.access.models import ApiKey, LoginFailure, StaffProfile
from memberhub.access.principal import Principal
from memberhub.access.roles import ALL_CAPS, ROLE_CAPS, STORE_BOUND_ROLES, Role
from memberhub.audit.services import audit_record
from memberhub.core import rows
from memberhub.core.errors import Conflict, NotFound, PermissionDenied, RateLimited, ValidationFailed
from memberhub.domain.access_rules import grant_excess, login_delay
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
    grant_check(actor, scopes, stores)
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
        audit_record(actor=actor, action="apikey.create", target=key,
                     after={"name": key.name, "scopes": key.scopes, "stores": sorted(s.code for s in stores)})
    return key, plain


def apikey_revoke(*, actor: Principal, prefix: str, reason: str = "") -> ApiKey:
    with transaction.atomic():
        key = ApiKey.objects.select_for_update().filter(prefix=prefix).first()
        if key is None:
            raise NotFound(_("No such API key."), code="apikey_not_found")
        # a key manager limited to one store must not switch off the chain's integrations
        grant_check(actor, key.scopes, [] if key.all_stores else list(key.stores.all()))
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


def grant_check(actor: Principal | None, caps: Iterable[str], stores: list[Store]) -> None:
    """Refuse (403 grant_exceeds_own) a grant of capabilities or stores the actor does not hold
    itself; `stores` empty means every store. `None` is trusted code (tests, demo data); the
    CLI passes the system principal, which holds everything."""
    if actor is None:
        return
    asked = None if not stores else frozenset(s.pk for s in stores)
    excess = grant_excess(actor.caps, actor.store_ids, caps, asked)
    if excess.empty:
        return
    codes = sorted(s.code for s in stores if s.pk in excess.stores)
    raise PermissionDenied(
        _("You cannot grant capabilities or stores that you do not hold yourself."), code="grant_exceeds_own",
        detail={"capabilities": list(excess.caps), "stores": codes, "all_stores": excess.all_stores},
    )


def _role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise ValidationFailed(
            _("Unknown role."), code="invalid_role", detail={"allowed": [r.value for r in Role]}
        ) from None


def password_check(password: str, *, username: str, email: str = "", user: Any = None) -> None:
    """Django's password validators (length, common, numeric, like the username), for every
    way a staff password is set: the API, `createadmin`, the first administrator."""
    if user is None:
        user = get_user_model()(username=username, email=email)
    try:
        validate_password(password, user=user)
    except DjangoValidationError as exc:
        raise ValidationFailed(
            _("The password is too weak."), code="password_too_weak", detail={"reasons": [str(m) for m in exc.messages]}
        ) from None


def staff_create(
    *, actor: Principal | None, username: str, password: str, role: str,
    store_codes: list[str] | None = None, email: str = "", superuser: bool = False,
) -> AbstractBaseUser:
    role_value = _role(role)
    stores = _stores_by_code(store_codes or [])
    if role_value in STORE_BOUND_ROLES and not stores:
        raise ValidationFailed(_("This role works in particular stores: name at least one."), code="stores_required")
    grant_check(actor, ROLE_CAPS[role_value], stores)
    if superuser and actor is not None and actor.kind != "system":
        raise PermissionDenied(_("Only the command line creates superusers."), code="grant_exceeds_own",
                               detail={"capabilities": [], "stores": [], "all_stores": False, "superuser": True})
    password_check(password, username=username, email=email)
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


def _admins_q() -> Q:
    """Accounts that hold every capability in every store: superusers and all-store admins."""
    return Q(is_superuser=True) | Q(staff__role=Role.ADMIN.value, staff__all_stores=True)


def _admins_lock() -> None:
    """Lock every administrator row, in id order, before any change to one of them: two admins
    demoting each other at once must not both see the other still standing."""
    User = get_user_model()
    list(User.objects.select_for_update().filter(pk__in=User.objects.filter(_admins_q()).values("pk"))
         .order_by("pk").values_list("pk", flat=True))


def _admins_active(exclude_user_id: int | None = None) -> int:
    qs = get_user_model().objects.filter(is_active=True).filter(_admins_q())
    if exclude_user_id is not None:
        qs = qs.exclude(pk=exclude_user_id)
    return qs.distinct().count()


def staff_update(
    *, actor: Principal, username: str, reason: str, role: str | None = None,
    store_codes: list[str] | None = None, active: bool | None = None,
) -> AbstractBaseUser:
    """Change a staff member's role, stores or whether the account may log in. The actor must
    hold both what the account has now (nobody edits someone above them) and what it gets."""
    User = get_user_model()
    with transaction.atomic():
        _admins_lock()
        user = User.objects.select_for_update().filter(username=username).first()
        profile = StaffProfile.objects.filter(user=user).prefetch_related("stores").first() if user else None
        if user is None or profile is None or user.is_superuser:
            # a superuser is managed from the command line only
            if user is not None and user.is_superuser:
                raise PermissionDenied(_("A superuser is managed from the command line only."),
                                       code="grant_exceeds_own",
                                       detail={"capabilities": [], "stores": [], "all_stores": False, "superuser": True})
            raise NotFound(_("No such staff account."), code="staff_not_found")
        old_role, old_stores = Role(profile.role), list(profile.stores.all()) if not profile.all_stores else []
        grant_check(actor, ROLE_CAPS[old_role], old_stores)
        new_role = _role(role) if role is not None else old_role
        new_stores = _stores_by_code(store_codes) if store_codes is not None else old_stores
        if new_role in STORE_BOUND_ROLES and not new_stores:
            raise ValidationFailed(_("This role works in particular stores: name at least one."),
                                   code="stores_required")
        grant_check(actor, ROLE_CAPS[new_role], new_stores)
        new_active = user.is_active if active is None else active
        was_admin = user.is_active and old_role == Role.ADMIN and not old_stores
        stays_admin = new_active and new_role == Role.ADMIN and not new_stores
        if was_admin and not stays_admin and _admins_active(exclude_user_id=user.pk) == 0:
            raise Conflict(_("This is the last administrator; appoint another one first."), code="last_admin")
        before = {"role": old_role.value, "stores": sorted(s.code for s in old_stores), "active": user.is_active}
        profile.role, profile.all_stores = new_role.value, not new_stores
        profile.save(update_fields=["role", "all_stores"])
        profile.stores.set(new_stores)
        user.is_active, user.is_staff = new_active, new_role == Role.ADMIN
        user.save(update_fields=["is_active", "is_staff"])
        after = {"role": new_role.value, "stores": sorted(s.code for s in new_stores), "active": new_active}
        audit_record(actor=actor, action="staff.update", target=user, before=before, after=after, reason=reason)
    # an inactive account's sessions stop working at once: Django's backend refuses inactive users
    return user


def _retry_after(until: datetime, now: datetime) -> int:
    return max(1, math.ceil((until - now).total_seconds()))


def login_check_allowed(*, username: str, ip: str) -> None:
    """Before the password is even looked at: is this (username, address) inside its delay, or
    has this address failed too often across all usernames (password spraying)? Either answers
    429 with the seconds to wait; nothing here depends on other addresses, so an attacker
    elsewhere never locks the real user (or the last administrator) out."""
    now = timezone.now()
    since = now - timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)
    recent = LoginFailure.objects.filter(at__gte=since)
    pair = list(recent.filter(username=username, ip=ip).order_by("-at").values_list("at", flat=True)[:64])
    delay = login_delay(len(pair), free=settings.LOGIN_FAILURE_LIMIT, max_delay=settings.LOGIN_MAX_DELAY_SECONDS)
    if delay and now < pair[0] + timedelta(seconds=delay):
        _login_refused(_retry_after(pair[0] + timedelta(seconds=delay), now), "username_address")
    ceiling = settings.LOGIN_ADDRESS_FAILURE_LIMIT
    if ip:
        # the ceiling-th newest failure is the one that must leave the window before there is room
        edge = list(recent.filter(ip=ip).order_by("-at").values_list("at", flat=True)[ceiling - 1:ceiling])
        if edge:
            _login_refused(_retry_after(edge[0] + timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS), now),
                           "address")


def _login_refused(seconds: int, limit: str) -> None:
    raise RateLimited(
        _("Too many failed logins; wait before trying again."), code="login_rate_limited",
        detail={"retry_after_seconds": seconds, "limit": limit},
    )


def login_failure_record(*, username: str, ip: str) -> None:
    now = timezone.now()
    with transaction.atomic():
        # forget what no limit counts any more, so the table stays small
        LoginFailure.objects.filter(at__lt=now - timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)).delete()
        LoginFailure.objects.create(username=username[:150], ip=ip[:64])


def login_success_record(*, username: str, ip: str) -> None:
    """The right password from this address: its earlier mistakes are forgiven."""
    LoginFailure.objects.filter(username=username[:150], ip=ip[:64]).delete()
