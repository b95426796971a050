"""Uploaded imports as background jobs.

    job = job_create(actor=..., kind="members", fh=upload, filename="会员.xlsx")  # 202 at once
    job_run(job_id=job.pk)                                                     # the worker
    job_get(actor=..., kind="members", job_id=...)                             # progress, report

The request only checks what is cheap and bounded (size, format, an .xlsx's unpacked size,
the header's columns, the first 64 KB of a text file) and answers 4xx for a file that fails
them; it stores the file encrypted (imports/sealed.py) and queues the job. Parsing and writing
run in the worker, which records progress, then the report or the error that stopped it (a
NUL character or a broken sheet further in: the job fails with that error's code), and deletes
the file. The job runs as the principal who uploaded it, re-read when it starts, so a key
revoked or a staff member deactivated meanwhile imports nothing.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import IO, Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

from memberhub.access.principal import Principal, staff_principal, system_principal
from memberhub.access.roles import Cap
from memberhub.core.errors import ApplicationError, NotFound, PayloadTooLarge, ValidationFailed
from memberhub.core.tabular import is_xlsx, rows_from_file, xlsx_check
from memberhub.imports.models import ImportChunk, ImportJob
from memberhub.imports.sealed import seal, unsealed

log = logging.getLogger("memberhub.imports")

KINDS: dict[str, dict[str, Any]] = {
    ImportJob.Kind.MEMBERS: {"run": "memberhub.members.imports.members_import",
                             "columns": "memberhub.members.imports.columns_missing",
                             "caps": (Cap.MEMBERS_IMPORT, Cap.MEMBERS_WRITE)},
    ImportJob.Kind.ORDERS: {"run": "memberhub.loyalty.imports.orders_import",
                            "columns": "memberhub.loyalty.imports.columns_missing",
                            "caps": (Cap.PURCHASES_WRITE,)},
}
HEAD = 65536


def _caps(kind: str, options: dict[str, Any]) -> tuple[str, ...]:
    caps = KINDS[kind]["caps"]
    return (*caps, Cap.MEMBERS_IMPORT) if options.get("create_members") else caps


def columns_check(kind: str) -> Callable[[list[str]], None]:
    missing_of = import_string(KINDS[kind]["columns"])

    def check(keys: list[str]) -> None:
        missing = missing_of(keys)
        if missing:
            raise ValidationFailed(_("The file lacks columns an import needs."), code="import_columns_missing",
                                   detail={"missing": missing, "columns": keys[:50]})

    return check


def preflight(kind: str, fh: IO[bytes], filename: str) -> None:
    """What can be told in the request, in bounded time: 422 for a file that cannot import."""
    head = fh.read(HEAD)
    fh.seek(0)
    if is_xlsx(head, filename):
        xlsx_check(fh)  # the sheet itself is parsed by the job
        return
    cut = len(head) == HEAD
    try:
        for _row in rows_from_file(io.BytesIO(head), filename=filename, on_header=columns_check(kind)):
            pass
    except ValidationFailed as exc:
        # the 64 KB may end inside a character; the job reads the whole file and will tell
        if not (cut and exc.code == "bad_encoding"):
            raise


def job_create(*, actor: Principal, kind: str, fh: IO[bytes], filename: str, size: int | None = None,
               options: dict[str, Any] | None = None) -> ImportJob:
    options = options or {}
    actor.require(*_caps(kind, options))
    if size is not None and size > settings.MAX_IMPORT_BYTES:
        raise PayloadTooLarge(_("The file is too large."))
    preflight(kind, fh, filename)
    with transaction.atomic():
        job = ImportJob.objects.create(kind=kind, filename=filename[:255], size=0, options=options,
                                       actor_kind=actor.kind, actor_id=actor.id, actor_label=actor.label[:200],
                                       created_at=timezone.now())
        job.size = seal(job, fh)
        job.save(update_fields=["size"])
        from memberhub.imports.tasks import import_job_task

        transaction.on_commit(lambda: import_job_task(job.pk))
    return job


def job_get(*, actor: Principal, kind: str, job_id: int) -> ImportJob:
    """Its starter sees a job; so does anyone who may run such imports across every store."""
    actor.require(*KINDS[kind]["caps"])
    job = ImportJob.objects.filter(pk=job_id, kind=kind).first()
    mine = job is not None and (job.actor_kind, job.actor_id, job.actor_label) == (actor.kind, actor.id, actor.label)
    if job is None or not (mine or actor.store_ids is None):
        raise NotFound(_("No such import."), code="import_not_found")
    return job


def import_run(*, actor: Principal, kind: str, fh: IO[bytes], filename: str, options: dict[str, Any] | None = None,
               progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Import a whole file now and return its report: the job's work, and `memberhub import`'s
    (the command runs in the foreground: it holds no web worker)."""
    actor.require(*_caps(kind, options or {}))
    rows = rows_from_file(fh, filename=filename, on_header=columns_check(kind))
    report = import_string(KINDS[kind]["run"])(actor=actor, rows=rows, progress=progress, **(options or {}))
    data: dict[str, Any] = report.as_dict()
    return data


def _principal(job: ImportJob) -> Principal | None:
    """The uploader as they are now: None when their key was revoked or account deactivated."""
    if job.actor_kind == "system":
        return system_principal(job.actor_label)
    if job.actor_id is None:
        return None
    if job.actor_kind == "staff":
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.filter(pk=job.actor_id, is_active=True).first()
        return staff_principal(user) if user is not None else None
    from memberhub.access.models import ApiKey

    key = ApiKey.objects.filter(pk=job.actor_id, revoked_at__isnull=True).first()
    if key is None:
        return None
    stores = None if key.all_stores else frozenset(key.stores.values_list("pk", flat=True))
    return Principal(kind="apikey", id=key.pk, label=job.actor_label, caps=frozenset(key.scopes), store_ids=stores)


def _fail(job_id: int, exc: ApplicationError) -> None:
    ImportJob.objects.filter(pk=job_id).update(
        status=ImportJob.Status.FAILED, finished_at=timezone.now(),
        error={"code": exc.code, "message": str(exc.message), "detail": exc.detail})


def job_run(*, job_id: int) -> ImportJob:
    """Claim a queued job (a second worker finds nothing to do), import, record, forget the file."""
    if ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.QUEUED).update(
            status=ImportJob.Status.RUNNING, started_at=timezone.now()) != 1:
        return ImportJob.objects.get(pk=job_id)
    job = ImportJob.objects.get(pk=job_id)
    try:
        actor = _principal(job)
        if actor is None:
            raise ApplicationError(_("Whoever uploaded the file can no longer import (key revoked or account "
                                     "deactivated)."), code="import_actor_revoked", status=403)

        def progress(rows: int) -> None:
            ImportJob.objects.filter(pk=job_id).update(rows_done=rows)

        with unsealed(job) as fh:
            data = import_run(actor=actor, kind=job.kind, fh=fh, filename=job.filename, options=job.options,
                              progress=progress)
        ImportJob.objects.filter(pk=job_id).update(status=ImportJob.Status.DONE, finished_at=timezone.now(),
                                                   report=data, rows_done=data["total"])
    except ApplicationError as exc:
        log.warning("import %s failed: %s %s", job_id, exc.code, exc.detail)
        _fail(job_id, exc)
    except Exception as exc:  # a bug: recorded on the job for the operator, and logged
        log.exception("import %s failed", job_id)
        _fail(job_id, ApplicationError(_("The import failed; the error has been logged."), code="import_failed",
                                       status=500, detail={"error": type(exc).__name__}))
    finally:
        ImportChunk.objects.filter(job_id=job_id).delete()  # the file's personal data goes with it
    job.refresh_from_db()
    return job


ABANDONED_AFTER = timedelta(hours=6)


def jobs_abandoned_fail(*, now: datetime | None = None) -> int:
    """A job whose worker died (killed mid-run), or whose queued task was lost, would keep its
    encrypted file forever and show `running` to whoever follows it: after ABANDONED_AFTER
    untouched it fails (`import_abandoned`) and its file is deleted. Upload it again to retry
    (rows already in count as existing)."""
    cutoff = (now or timezone.now()) - ABANDONED_AFTER
    stale = list(ImportJob.objects.filter(
        Q(status=ImportJob.Status.RUNNING, started_at__lt=cutoff) | Q(status=ImportJob.Status.QUEUED,
                                                                      created_at__lt=cutoff)
    ).values_list("pk", flat=True))
    for job_id in stale:
        ImportJob.objects.filter(pk=job_id, status__in=(ImportJob.Status.QUEUED, ImportJob.Status.RUNNING)).update(
            status=ImportJob.Status.FAILED, finished_at=timezone.now(),
            error={"code": "import_abandoned", "message": str(_("The import stopped before it finished; upload the "
                                                                "file again.")), "detail": {}})
        ImportChunk.objects.filter(job_id=job_id).delete()
    return len(stale)


def job_out(job: ImportJob, base: str) -> dict[str, Any]:
    return {
        "id": job.pk, "kind": job.kind, "status": job.status, "filename": job.filename, "size": job.size,
        "rows_done": job.rows_done, "report": job.report, "error": job.error, "started_by": job.actor_label,
        "created_at": job.created_at, "started_at": job.started_at, "finished_at": job.finished_at,
        "url": f"{base}/{job.pk}",
    }
