"""Runs: request one (API, CLI, nightly job), execute it in the background, store its result.

    run = run_request(actor=actor, query=ClvQuery())   # queued; executes after commit (huey)
    run_execute(run_id=run.pk)                          # what the worker calls

A snapshot run writes its rows in chunks, each in its own short transaction, while the run
is not yet current (nobody reads them), then makes itself current in one transaction: the
till is never blocked behind a long analytics write, and readers switch from the old
snapshot set to the new one at once. A failed run deletes its partial rows and leaves the
current snapshots alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from memberhub.access.principal import Principal
from memberhub.access.roles import Cap
from memberhub.analytics.models import AnalyticsRun, MemberSnapshot
from memberhub.analytics.queries import ClvQuery, HealthQuery, Query, RfmQuery, query_parse
from memberhub.core.errors import NotFound

if TYPE_CHECKING:  # Polars, NumPy and SciPy load when a run executes, not when Django starts
    import polars as pl

    from memberhub.analytics import runners

log = logging.getLogger("memberhub.analytics")

CHUNK = 10_000
KEEP_RUNS = 3  # snapshot sets kept per kind (the current one and the two before it)


def run_authorise(actor: Principal, kind: str) -> None:
    """Anyone with analytics:read may compute; replacing the snapshots that campaigns target
    (an rfm or clv run becomes current) also needs programme:manage."""
    actor.require(Cap.ANALYTICS_READ)
    if kind != AnalyticsRun.Kind.HEALTH:
        actor.require(Cap.PROGRAMME_MANAGE)


def run_request(*, actor: Principal, query: Query, enqueue: bool = True) -> AnalyticsRun:
    run_authorise(actor, query.kind)
    params = query.params()
    if isinstance(query, HealthQuery):
        from memberhub.analytics.health import health_scope

        params["store_ids"] = health_scope(actor, query.stores)
    with transaction.atomic():
        run = AnalyticsRun.objects.create(kind=query.kind, params=params, requested_by=actor.label,
                                          created_at=timezone.now())
        if enqueue:
            from memberhub.analytics.tasks import analytics_run_task

            transaction.on_commit(lambda: analytics_run_task(run.pk))
    return run


def run_get(*, actor: Principal, run_id: int) -> AnalyticsRun:
    actor.require(Cap.ANALYTICS_READ)
    from memberhub.analytics.selectors import run_scope_q

    run = AnalyticsRun.objects.filter(run_scope_q(actor), pk=run_id).first()
    if run is None:
        raise NotFound(_("No such analytics run."), code="run_not_found")
    return run


def run_execute(*, run_id: int, progress: Callable[[str], None] | None = None) -> AnalyticsRun:
    """Claim a queued run (a second worker finds nothing to do), compute, store, publish."""
    now = timezone.now()
    if AnalyticsRun.objects.filter(pk=run_id, status=AnalyticsRun.Status.QUEUED).update(
            status=AnalyticsRun.Status.RUNNING, started_at=now) != 1:
        return AnalyticsRun.objects.get(pk=run_id)
    run = AnalyticsRun.objects.get(pk=run_id)
    say = progress or (lambda _msg: None)
    import polars as pl

    from memberhub.analytics import runners

    try:
        params = dict(run.params)
        store_ids = params.pop("store_ids", None)
        query = query_parse(run.kind, params)
        if isinstance(query, HealthQuery):
            from memberhub.analytics.health import programme_health

            outcome = runners.Outcome(pl.DataFrame(), result=programme_health(query=query, store_ids=store_ids).as_dict())
        else:
            outcome = _snapshot_outcome(query, say)
            say(f"storing {outcome.snapshots.height} snapshots")
            _store(run, outcome.snapshots)
        _publish(run, outcome)
    except Exception as exc:  # recorded on the run for the operator, and logged
        if isinstance(exc, runners.NotFittable):  # the data, not a bug: no traceback
            log.warning("analytics run %s failed: %s", run_id, exc)
        else:
            log.exception("analytics run %s failed", run_id)
        MemberSnapshot.objects.filter(run_id=run_id).delete()
        message = str(exc) if isinstance(exc, runners.NotFittable) else f"{type(exc).__name__}: {exc}"
        AnalyticsRun.objects.filter(pk=run_id).update(status=AnalyticsRun.Status.FAILED, error=message[:2000],
                                                      finished_at=timezone.now())
    run.refresh_from_db()
    return run


def _snapshot_outcome(query: RfmQuery, say: Callable[[str], None]) -> runners.Outcome:
    from memberhub.analytics import reader, runners

    end = query.observation_end or reader.local_today()
    query = query.model_copy(update={"observation_end": end})
    say("reading purchases")
    purchases = reader.purchases_frame(end=reader.local_midnight(end + timedelta(days=1)))
    if purchases.height == 0:
        raise runners.NotFittable("there are no member purchases on or before the observation end")
    say(f"computing on {purchases.height} purchases")
    return runners.clv_run(purchases, query) if isinstance(query, ClvQuery) else runners.rfm_run(purchases, query)


def _store(run: AnalyticsRun, frame: pl.DataFrame) -> None:
    """Raw multi-row INSERTs in chunks: no model instances for a million rows."""
    import polars as pl

    from memberhub.analytics import runners

    table = MemberSnapshot._meta.db_table
    columns = ["run_id", *runners.SNAPSHOT_COLUMNS]
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})"
    frame = frame.with_columns(pl.lit(run.pk, dtype=pl.Int64).alias("run_id")).select(columns)
    for start in range(0, frame.height, CHUNK):
        rows = frame.slice(start, CHUNK).rows()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(sql, rows)


def _publish(run: AnalyticsRun, outcome: runners.Outcome) -> None:
    snapshot = run.kind != AnalyticsRun.Kind.HEALTH
    with transaction.atomic():
        if snapshot:
            # Lock the current row of this kind so two finishing runs publish one after the other.
            list(AnalyticsRun.objects.select_for_update().filter(kind=run.kind, is_current=True))
            AnalyticsRun.objects.filter(kind=run.kind, is_current=True).update(is_current=False)
        AnalyticsRun.objects.filter(pk=run.pk).update(
            status=AnalyticsRun.Status.SUCCEEDED, finished_at=timezone.now(), fitted=outcome.fitted,
            counts=outcome.counts, result=outcome.result, is_current=snapshot, error="",
        )
    if snapshot:
        _prune(run.kind)


def _prune(kind: str) -> None:
    keep = getattr(settings, "ANALYTICS_KEEP_RUNS", KEEP_RUNS)
    recent = list(AnalyticsRun.objects.filter(kind=kind, status=AnalyticsRun.Status.SUCCEEDED)
                  .order_by("-finished_at", "-pk").values_list("pk", flat=True)[:keep])
    old = AnalyticsRun.objects.filter(kind=kind).exclude(pk__in=recent).filter(is_current=False)
    MemberSnapshot.objects.filter(run__in=old).delete()


def run_now(*, actor: Principal, query: Query, progress: Callable[[str], None] | None = None) -> AnalyticsRun:
    """Request and execute in this process (the management command)."""
    run = run_request(actor=actor, query=query, enqueue=False)
    return run_execute(run_id=run.pk, progress=progress)


def current_run(kind: str) -> AnalyticsRun | None:
    return AnalyticsRun.objects.filter(kind=kind, is_current=True).first()
