from __future__ import annotations

from typing import Any

from django.db import models

from memberhub.audit.models import AuditEntry


def _changed_only(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


def audit_record(
    *,
    actor: Any,
    action: str,
    target: models.Model | None = None,
    target_type: str | None = None,
    target_id: str | int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str = "",
    diff: bool = False,
) -> AuditEntry:
    """Write one audit entry inside the caller's transaction, so the change and its record
    commit or roll back together. With diff=True only fields that changed are kept."""
    before, after = before or {}, after or {}
    if diff:
        before, after = _changed_only(before, after)
    if target is not None:
        target_type = target_type or target._meta.label_lower
        target_id = target.pk
    return AuditEntry.objects.create(
        actor_kind=actor.kind,
        actor_id=actor.id,
        actor_label=actor.label,
        action=action,
        target_type=target_type or "",
        target_id=str(target_id or ""),
        before=before,
        after=after,
        reason=reason,
    )
