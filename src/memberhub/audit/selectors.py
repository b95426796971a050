from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from memberhub.audit.models import AuditEntry


def audit_list(
    *, target_type: str | None = None, target_id: str | None = None, action: str | None = None,
    since: datetime | None = None,
) -> QuerySet[AuditEntry]:
    qs = AuditEntry.objects.all()
    if target_type:
        qs = qs.filter(target_type=target_type)
    if target_id:
        qs = qs.filter(target_id=target_id)
    if action:
        qs = qs.filter(action=action)
    if since:
        qs = qs.filter(at__gte=since)
    return qs
