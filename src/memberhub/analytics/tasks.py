"""Background analytics on huey: a requested run, and the nightly RFM + CLV snapshots."""

from __future__ import annotations

from datetime import timedelta

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from memberhub.access.principal import system_principal
from memberhub.analytics.queries import ClvQuery, RfmQuery
from memberhub.analytics.services import run_execute, run_request


@db_task()
def analytics_run_task(run_id: int) -> None:
    run_execute(run_id=run_id)


def nightly_snapshots() -> list[int]:
    """RFM and CLV on yesterday's close: the snapshots segments and campaigns use in the morning."""
    from memberhub.analytics.reader import local_today  # Polars: only when the job runs

    actor = system_principal("analytics:nightly")
    yesterday = local_today() - timedelta(days=1)
    ids = []
    for query in (RfmQuery(observation_end=yesterday), ClvQuery(observation_end=yesterday)):
        run = run_request(actor=actor, query=query, enqueue=False)
        ids.append(run_execute(run_id=run.pk).pk)
    return ids


@db_periodic_task(crontab(minute="40", hour="3"))
def analytics_nightly_task() -> list[int]:
    return nightly_snapshots()
