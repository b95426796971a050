from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from ninja import Router, Schema, Status
from pydantic import Field

from memberhub.access.roles import Cap
from memberhub.audit.services import audit_record
from memberhub.core.errors import Conflict
from memberhub.core.schemas import ERRORS as API_ERRORS
from memberhub.core.schemas import StrictSchema
from memberhub.stores.models import Store

router = Router(tags=["stores"])
ERRORS: dict[int, Any] = API_ERRORS


class StoreIn(StrictSchema):
    code: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_\-]+$")
    name: str = Field(min_length=1, max_length=100)
    city: str = Field("", max_length=50)
    kind: str = Field("offline", pattern="^(offline|online)$")


class StoreOut(Schema):
    id: int
    code: str
    name: str
    city: str
    kind: str
    is_active: bool


@router.get("", response={200: list[StoreOut], **ERRORS}, summary="List stores")
def store_list(request: HttpRequest) -> list[Store]:
    p = request.auth  # type: ignore[attr-defined]
    p.require(Cap.STORES_READ)
    qs = Store.objects.all()
    if p.store_ids is not None:
        qs = qs.filter(pk__in=p.store_ids)
    return list(qs)


@router.post("", response={201: StoreOut, **ERRORS}, summary="Create a store")
def store_create(request: HttpRequest, body: StoreIn) -> Status[Store]:
    p = request.auth  # type: ignore[attr-defined]
    p.require(Cap.STORES_MANAGE)
    try:
        with transaction.atomic():
            store = Store.objects.create(**body.model_dump())
            audit_record(actor=p, action="store.create", target=store, after=body.model_dump())
    except IntegrityError:
        raise Conflict(_("A store with this code exists."), code="store_code_taken") from None
    return Status(201, store)
