from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema

from memberhub.access.roles import Cap
from memberhub.audit.selectors import audit_list
from memberhub.core.errors import PermissionDenied
from memberhub.core.pagination import paginate
from memberhub.core.schemas import ERRORS, Moment

router = Router(tags=["audit"])


class AuditFilters(Schema):
    target_type: str | None = None
    target_id: str | None = None
    action: str | None = None
    since: Moment | None = None
    cursor: str | None = None
    limit: int = 50


class AuditOut(Schema):
    id: int
    at: datetime
    actor_kind: str
    actor_label: str
    action: str
    target_type: str
    target_id: str
    before: dict
    after: dict
    reason: str


class AuditPage(Schema):
    items: list[AuditOut]
    next_cursor: str | None


@router.get("", response={200: AuditPage, **ERRORS}, summary="The audit log")
def audit_entries(request: HttpRequest, filters: Query[AuditFilters]) -> dict[str, Any]:
    p = request.auth  # type: ignore[attr-defined]
    p.require(Cap.AUDIT_READ)
    if p.store_ids is not None:  # the log spans every store; a store-bound caller would see others'
        raise PermissionDenied(code="store_scope_too_narrow")
    qs = audit_list(**filters.model_dump(exclude={"cursor", "limit"}))
    items, next_cursor = paginate(qs, cursor=filters.cursor, limit=filters.limit)
    return {"items": items, "next_cursor": next_cursor}
