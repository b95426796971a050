"""The import job on huey (inline when MEMBERHUB_TASKS_IMMEDIATE, as in the tests)."""

from __future__ import annotations

from huey.contrib.djhuey import db_task

from memberhub.imports.services import job_run


@db_task()
def import_job_task(job_id: int) -> None:
    job_run(job_id=job_id)
