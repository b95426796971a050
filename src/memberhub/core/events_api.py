"""/api/v1/events: the outbox's dead letters, and a retry for one after its cause is fixed."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from ninja import Query, Router, Schema
from pydantic import Field

from memberhub.core import outbox, selectors
from memberhub.core.errors import Conflict, NotFound, PermissionDenied
from memberhub.core.models import EventDelivery
from memberhub.core.pagination import MAX_LIMIT, paginate
from memberhub.core.schemas import ErrorOut

router = Router(tags=["events"])
EVENTS_MANAGE = "events:manage"  # access.roles.Cap.EVENTS_MANAGE (core imports no app)
ERRORS: dict[int, Any] = {401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut}


class DeliveryOut(Schema):
    id: int
    event: str
    handler: str
    payload: dict[str, Any]
    state: str
    attempts: int
    due_at: datetime
    created_at: datetime
    done_at: datetime | None
    last_error: str


class DeliveryPage(Schema):
    items: list[DeliveryOut]
    next_cursor: str | None


class DeliveryFilters(Schema):
    state: Literal["pending", "running", "done", "dead"] = "dead"
    event: str | None = Field(default=None, max_length=80)
    cursor: str | None = None
    limit: int = Field(default=50, ge=1, le=MAX_LIMIT)


def _manager(request: HttpRequest) -> Any:
    p = request.auth  # type: ignore[attr-defined]
    p.require(EVENTS_MANAGE)
    if p.store_ids is not None:  # the outbox spans every store
        raise PermissionDenied(code="store_scope_too_narrow")
    return p


@router.get("/deliveries", response={200: DeliveryPage, **ERRORS}, summary="Event deliveries (dead by default)")
def deliveries(request: HttpRequest, filters: Query[DeliveryFilters]) -> dict[str, Any]:
    _manager(request)
    qs = selectors.deliveries_list(state=filters.state, event=filters.event)
    items, next_cursor = paginate(qs, cursor=filters.cursor, limit=filters.limit)
    return {"items": items, "next_cursor": next_cursor}


@router.get("/dead", response={200: DeliveryPage, **ERRORS}, summary="Dead letters: deliveries that gave up")
def dead(request: HttpRequest, cursor: str | None = None, limit: int = Query(50, ge=1, le=MAX_LIMIT)) -> dict[str, Any]:
    _manager(request)
    items, next_cursor = paginate(selectors.deliveries_list(state=EventDelivery.State.DEAD), cursor=cursor, limit=limit)
    return {"items": items, "next_cursor": next_cursor}


@router.post("/dead/{delivery_id}/retry", response={200: DeliveryOut, **ERRORS}, summary="Retry a dead delivery")
def retry(request: HttpRequest, delivery_id: int) -> EventDelivery:
    from memberhub.audit.services import audit_record  # the API edge may record; core's logic does not

    actor = _manager(request)
    with transaction.atomic():
        row = EventDelivery.objects.filter(pk=delivery_id).first()
        if row is None:
            raise NotFound(_("No such event delivery."), code="event_delivery_not_found")
        if not outbox.retry(delivery_id):
            raise Conflict(_("Only a dead delivery can be retried."), code="event_delivery_not_dead",
                           detail={"state": row.state})
        audit_record(actor=actor, action="events.retry", target=row, before={"state": row.state,
                     "attempts": row.attempts}, after={"state": EventDelivery.State.PENDING, "attempts": 0})
    row.refresh_from_db()  # with an immediate queue (tests, single process) it has already run
    return row
