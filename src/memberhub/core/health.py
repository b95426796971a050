"""`/healthz` (the process answers) and `/readyz` (it can do its work: the database answers,
its migrations are applied, a job consumer is alive), for a load balancer and `memberhub check`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone

CONSUMER = "job-consumer"
# The heartbeat job runs every minute; two missed runs and a margin mean the consumer is gone.
CONSUMER_STALE_AFTER = timedelta(seconds=150)

_migrations_applied = False  # once applied they stay applied for this process's code


def heartbeat(name: str = CONSUMER) -> None:
    from memberhub.core.models import Heartbeat

    Heartbeat.objects.update_or_create(name=name, defaults={"seen_at": timezone.now()})


def consumer_heartbeat_age() -> float | None:
    """Seconds since the job consumer's last heartbeat (None: never seen, or no database)."""
    from memberhub.core.models import Heartbeat

    try:
        seen = Heartbeat.objects.filter(name=CONSUMER).values_list("seen_at", flat=True).first()
    except DatabaseError:
        return None
    return None if seen is None else max(0.0, (timezone.now() - seen).total_seconds())


def jobs_pending() -> int | None:
    from huey.contrib.djhuey import HUEY

    try:
        return int(HUEY.pending_count())
    except Exception:  # the queue's store is out of reach: reported as missing, not as an error page
        return None


def _check_database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True}
    except DatabaseError as exc:
        return {"ok": False, "error": str(exc).strip()[:200]}


def _check_migrations() -> dict[str, Any]:
    global _migrations_applied
    if _migrations_applied:
        return {"ok": True}
    from memberhub.core.bootstrap import migrations_pending

    try:
        pending = migrations_pending()
    except DatabaseError as exc:
        return {"ok": False, "error": str(exc).strip()[:200]}
    _migrations_applied = not pending
    return {"ok": not pending} if not pending else {"ok": False, "error": "migrations are pending"}


def _check_consumer() -> dict[str, Any]:
    if settings.HUEY.get("immediate"):
        return {"ok": True, "mode": "inline"}  # jobs run inside the request: nothing to wait for
    age = consumer_heartbeat_age()
    if age is None:
        return {"ok": False, "error": "no job consumer has reported yet"}
    ok = age <= CONSUMER_STALE_AFTER.total_seconds()
    result: dict[str, Any] = {"ok": ok, "heartbeat_age_seconds": round(age, 1)}
    if not ok:
        result["error"] = "the job consumer has not reported for too long"
    return result


def readiness() -> dict[str, Any]:
    checks = {"database": _check_database()}
    if checks["database"]["ok"]:
        checks["migrations"] = _check_migrations()
        checks["job_consumer"] = _check_consumer()
    return {"ready": all(c["ok"] for c in checks.values()), "checks": checks}


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    report = readiness()
    return JsonResponse(report, status=200 if report["ready"] else 503)
