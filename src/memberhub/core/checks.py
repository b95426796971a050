"""`memberhub check`: the database answers, migrations are applied, the keys read the data."""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, Warning, register
from django.db import DatabaseError


@register()
def memberhub_checks(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    problems: list[Any] = []
    try:
        from memberhub.core.bootstrap import migrations_pending

        if migrations_pending():
            problems.append(Warning("Database migrations are pending", hint="run `memberhub migrate`", id="memberhub.W001"))
    except DatabaseError as exc:
        return [Error(f"The database cannot be reached: {exc}", id="memberhub.E001")]
    try:
        from memberhub.members.models import Member

        sample = Member.objects.exclude(phone_enc=None).only("phone_enc").first()
        if sample is not None and sample.phone is None:
            problems.append(Error(
                "Personal data cannot be decrypted with MEMBERHUB_ENCRYPTION_KEYS",
                hint="an old key was removed; put it back after the new one", id="memberhub.E002",
            ))
    except DatabaseError:
        pass  # tables not created yet: reported as pending migrations above
    problems.extend(_consumer_problems())
    return problems


def _consumer_problems() -> list[Any]:
    """Jobs waiting with no consumer to run them (`memberhub serve` runs one, or `memberhub
    worker`): the same test of the consumer as `/readyz`, said only when jobs are waiting."""
    from memberhub.core.health import jobs_pending, readiness

    consumer = readiness()["checks"].get("job_consumer")
    if consumer is None or consumer["ok"] or not jobs_pending():
        return []
    return [Warning(f"Jobs are waiting and not being run: {consumer['error']}",
                    hint="`memberhub serve` runs the job consumer; with --no-worker run `memberhub worker`",
                    id="memberhub.W002")]
