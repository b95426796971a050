"""The import job on huey (inline when MEMBERHUB_TASKS_IMMEDIATE, as in the tests)."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from memberhub.imports.services import job_run, jobs_abandoned_fail


@db_task()
def import_job_task(job_id: int) -> None:
    job_run(job_id=job_id)


@db_periodic_task(crontab(minute="23"))
def import_jobs_abandoned_task() -> int:
    return jobs_abandoned_fail()
