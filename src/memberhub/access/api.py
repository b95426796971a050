from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth import authenticate, login, logout
from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.utils.translation import gettext_lazy as _
from ninja import Router, Schema, Status
from pydantic import Field

from memberhub.access import services
from memberhub.access.models import ApiKey
from memberhub.access.principal import Principal, staff_principal
from memberhub.access.roles import Cap
from memberhub.access.signals import client_ip
from memberhub.core.errors import ApplicationError, NotAuthenticated, ValidationFailed
from memberhub.core.idempotency import withhold
from memberhub.core.schemas import ERRORS as API_ERRORS
from memberhub.core.schemas import ErrorOut, StrictSchema

router = Router(tags=["auth"])
ERRORS: dict[int, Any] = {**API_ERRORS, 415: ErrorOut}  # login takes JSON only


class LoginIn(StrictSchema):
    username: str = Field(max_length=150)
    password: str = Field(max_length=200)


class MeOut(Schema):
    kind: str
    label: str
    capabilities: list[str]
    stores: list[int] | None


class ApiKeyIn(StrictSchema):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[str]
    stores: list[str] = Field(default_factory=list, description="Store codes; empty for all stores")


class ApiKeyOut(Schema):
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreatedOut(ApiKeyOut):
    key: str = Field(description="Shown once; store it now")


class StaffIn(StrictSchema):
    username: str = Field(min_length=1, max_length=150)
    password: str = Field(min_length=8, max_length=200)
    role: str
    stores: list[str] = Field(default_factory=list)
    email: str = Field("", max_length=254)


class StaffPatchIn(StrictSchema):
    role: str | None = None
    stores: list[str] | None = Field(None, description="Store codes; empty for all stores")
    active: bool | None = Field(None, description="false: the account can no longer log in")
    reason: str = Field(min_length=1, max_length=500)


def _me(p: Principal) -> dict[str, Any]:
    return {"kind": p.kind, "label": p.label, "capabilities": sorted(p.caps),
            "stores": sorted(p.store_ids) if p.store_ids is not None else None}


@router.post("/login", auth=None, response={200: MeOut, **ERRORS}, summary="Staff login (session cookie)")
def staff_login(request: HttpRequest, body: LoginIn) -> dict[str, Any]:
    # Only JSON: a page elsewhere can post a form or `text/plain` here without the browser
    # asking first, and log the victim in as the attacker (login CSRF); JSON needs a preflight.
    if request.content_type != "application/json":
        raise ApplicationError(_("Log in with a JSON body (Content-Type: application/json)."),
                               code="unsupported_media_type", status=415)
    services.login_check_allowed(username=body.username, ip=client_ip(request))
    user = authenticate(request, username=body.username, password=body.password)
    if user is None:
        # The user_login_failed signal has recorded this failure.
        raise NotAuthenticated(_("Wrong username or password."), code="login_failed")
    login(request, user)
    get_token(request)  # sets the CSRF cookie for the browser's next unsafe request
    return _me(staff_principal(user))


@router.post("/logout", response={204: None, **ERRORS}, summary="Log out")
def staff_logout(request: HttpRequest) -> Status[None]:
    if not hasattr(request, "session"):  # signed with an API key: its middleware stepped aside
        raise ValidationFailed(_("A request signed with an API key has no session to end; revoke the key instead."),
                               code="no_session", status=400)
    logout(request)
    return Status(204, None)


@router.get("/me", response={200: MeOut, **ERRORS}, summary="Who am I and what may I do")
def me(request: HttpRequest) -> dict[str, Any]:
    return _me(request.auth)  # type: ignore[attr-defined]


@router.get("/apikeys", response={200: list[ApiKeyOut], **ERRORS}, summary="List API keys")
def apikey_list(request: HttpRequest) -> list[ApiKey]:
    request.auth.require(Cap.APIKEYS_MANAGE)  # type: ignore[attr-defined]
    return list(ApiKey.objects.order_by("-pk"))


@router.post("/apikeys", response={201: ApiKeyCreatedOut, **ERRORS}, summary="Create an API key")
def apikey_create(request: HttpRequest, body: ApiKeyIn) -> Status[dict[str, Any]]:
    request.auth.require(Cap.APIKEYS_MANAGE)  # type: ignore[attr-defined]
    withhold("key")  # never kept for an Idempotency-Key replay, which answers "key": null
    key, plain = services.apikey_create(
        actor=request.auth, name=body.name, scopes=body.scopes, store_codes=body.stores  # type: ignore[attr-defined]
    )
    return Status(201, {**ApiKeyOut.from_orm(key).model_dump(), "key": plain})


@router.post("/apikeys/{prefix}/revoke", response={200: ApiKeyOut, **ERRORS}, summary="Revoke an API key")
def apikey_revoke(request: HttpRequest, prefix: str) -> ApiKey:
    request.auth.require(Cap.APIKEYS_MANAGE)  # type: ignore[attr-defined]
    return services.apikey_revoke(actor=request.auth, prefix=prefix)  # type: ignore[attr-defined]


@router.post("/staff", response={201: MeOut, **ERRORS}, summary="Create a staff account")
def staff_create(request: HttpRequest, body: StaffIn) -> Status[dict[str, Any]]:
    request.auth.require(Cap.STAFF_MANAGE)  # type: ignore[attr-defined]
    user = services.staff_create(
        actor=request.auth, username=body.username, password=body.password, role=body.role,  # type: ignore[attr-defined]
        store_codes=body.stores, email=body.email,
    )
    return Status(201, _me(staff_principal(user)))


@router.patch("/staff/{username}", response={200: MeOut, **ERRORS}, summary="Change a staff account's role, stores or access")
def staff_update(request: HttpRequest, username: str, body: StaffPatchIn) -> dict[str, Any]:
    request.auth.require(Cap.STAFF_MANAGE)  # type: ignore[attr-defined]
    user = services.staff_update(
        actor=request.auth, username=username, reason=body.reason, role=body.role,  # type: ignore[attr-defined]
        store_codes=body.stores, active=body.active,
    )
    return _me(staff_principal(user))
