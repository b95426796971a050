"""Periodic housekeeping jobs."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import HUEY, db_periodic_task

from memberhub.core.models import IdempotencyRecord


def idempotency_purge() -> int:
    """Forget idempotency keys older than MEMBERHUB_IDEMPOTENCY_TTL_HOURS."""
    cutoff = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_TTL_HOURS)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted


@db_periodic_task(crontab(minute="17"))
def idempotency_purge_task() -> int:
    return idempotency_purge()


@db_periodic_task(crontab())  # every minute: `/readyz` and the metrics read its age
def heartbeat_task() -> None:
    from memberhub.core.health import heartbeat

    heartbeat()


@HUEY.on_startup()
def consumer_started() -> None:
    """A consumer that just started says so at once, not at the next minute."""
    from django.db import DatabaseError, connection

    from memberhub.core.health import heartbeat

    try:
        heartbeat()
    except DatabaseError:  # not migrated yet, or the database is down: the minute job catches up
        pass
    finally:
        connection.close()
