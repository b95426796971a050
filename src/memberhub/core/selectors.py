"""Reads about the event outbox, for health checks and metrics."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Min, QuerySet
from django.utils import timezone

from memberhub.core.models import EventDelivery


def outbox_lag_seconds(*, now: datetime | None = None) -> float:
    """How long the oldest due, unfinished delivery has waited (0 when none waits): the
    figure to alert on when the consumer is down or a handler keeps failing."""
    now = now or timezone.now()
    oldest = EventDelivery.objects.filter(
        state__in=[EventDelivery.State.PENDING, EventDelivery.State.RUNNING], due_at__lte=now,
    ).aggregate(at=Min("created_at"))["at"]
    return max((now - oldest).total_seconds(), 0.0) if oldest else 0.0


def dead_letters() -> int:
    """Deliveries that gave up and wait for a person (GET /api/v1/events/dead)."""
    return EventDelivery.objects.filter(state=EventDelivery.State.DEAD).count()


def deliveries_list(*, state: str | None = None, event: str | None = None) -> QuerySet[EventDelivery]:
    qs = EventDelivery.objects.all()
    if state:
        qs = qs.filter(state=state)
    if event:
        qs = qs.filter(event=event)
    return qs
