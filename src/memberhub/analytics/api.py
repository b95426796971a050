"""/api/v1/analytics: request runs, read snapshots and programme health, export them."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils import timezone
from ninja import Field, Query, Router, Schema, Status

from memberhub.access.roles import Cap
from memberhub.analytics import exports, selectors, services
from memberhub.analytics.models import AnalyticsRun, MemberSnapshot
from memberhub.analytics.queries import HealthQuery, query_parse
from memberhub.core.pagination import paginate
from memberhub.core.schemas import ERRORS as API_ERRORS
from memberhub.core.schemas import StrictSchema
from memberhub.members.presenters import member_public

router = Router(tags=["analytics"])
ERRORS: dict[int, Any] = API_ERRORS


class RunIn(StrictSchema):
    kind: Literal["rfm", "clv", "health"]
    params: dict[str, Any] = Field(default_factory=dict)


class RunOut(Schema):
    id: int
    kind: str
    params: dict[str, Any]
    status: str
    is_current: bool
    requested_by: str
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    fitted: dict[str, Any]
    counts: dict[str, Any]
    result: dict[str, Any]
    error: str


class RunPage(Schema):
    items: list[RunOut]
    next_cursor: str | None


class SnapshotOut(Schema):
    member: dict[str, Any]
    run_id: int
    computed_at: dt.datetime | None
    recency_days: int
    frequency: int
    monetary_fen: int
    r_score: int
    f_score: int
    m_score: int
    segment: str
    repeat_purchases: int | None
    expected_purchases: float | None
    p_alive: float | None
    expected_spend_fen: int | None
    clv_fen: int | None
    stage: str


class SnapshotPage(Schema):
    items: list[SnapshotOut]
    next_cursor: str | None


class SnapshotFilters(Schema):
    kind: Literal["clv", "rfm"] = "clv"
    segment: str | None = None
    stage: str | None = None
    min_clv_fen: int | None = None
    min_p_alive: float | None = None
    cursor: str | None = None
    limit: int = 50


class HealthFilters(Schema):
    date_from: dt.date | None = Field(None, alias="from")
    date_to: dt.date | None = Field(None, alias="to")
    store: str | None = None  # one store code, or several separated by commas
    channel: Literal["online", "offline"] | None = None
    migration_from: dt.date | None = None
    cohort_months: int = 12

    def query(self) -> HealthQuery:
        stores = tuple(c.strip() for c in (self.store or "").split(",") if c.strip())
        params = {"date_from": self.date_from, "date_to": self.date_to, "stores": stores, "channel": self.channel,
                  "migration_from": self.migration_from, "cohort_months": self.cohort_months}
        return query_parse("health", params)  # type: ignore[return-value]


def _run(run: AnalyticsRun) -> dict[str, Any]:
    return {f: getattr(run, f) for f in RunOut.model_fields}


def _snapshot(request: HttpRequest, s: MemberSnapshot) -> dict[str, Any]:
    out = {f: getattr(s, f) for f in SnapshotOut.model_fields if f not in ("member", "computed_at")}
    out["member"] = member_public(s.member, viewer=request.auth)  # type: ignore[attr-defined]
    out["computed_at"] = s.run.finished_at
    return out


@router.post("/runs", response={202: RunOut, **ERRORS}, summary="Run RFM, CLV or programme health in the background")
def run_create(request: HttpRequest, body: RunIn) -> Status[dict[str, Any]]:
    query = query_parse(body.kind, body.params)
    run = services.run_request(actor=request.auth, query=query)  # type: ignore[attr-defined]
    run.refresh_from_db()  # HUEY immediate (tests, single-process) has already run it
    return Status(202, _run(run))


@router.get("/runs", response={200: RunPage, **ERRORS}, summary="Analytics runs, newest first")
def run_list(request: HttpRequest, kind: str | None = None, cursor: str | None = None, limit: int = 50) -> dict[str, Any]:
    page, next_cursor = paginate(selectors.run_list(actor=request.auth, kind=kind), cursor=cursor, limit=limit)  # type: ignore[attr-defined]
    return {"items": [_run(r) for r in page], "next_cursor": next_cursor}


@router.get("/runs/{run_id}", response={200: RunOut, **ERRORS}, summary="A run's status and result")
def run_get(request: HttpRequest, run_id: int) -> dict[str, Any]:
    return _run(services.run_get(actor=request.auth, run_id=run_id))  # type: ignore[attr-defined]


@router.get("/snapshots", response={200: SnapshotPage, **ERRORS}, summary="Current per-member snapshots")
def snapshot_list(request: HttpRequest, filters: Query[SnapshotFilters]) -> dict[str, Any]:
    qs = selectors.snapshot_list(actor=request.auth, **filters.model_dump(exclude={"cursor", "limit"}))  # type: ignore[attr-defined]
    page, next_cursor = paginate(qs, cursor=filters.cursor, limit=filters.limit)
    return {"items": [_snapshot(request, s) for s in page], "next_cursor": next_cursor}


@router.get("/members/{member_id}/snapshot", response={200: SnapshotOut, **ERRORS}, summary="A member's current snapshot")
def member_snapshot(request: HttpRequest, member_id: int, kind: Literal["clv", "rfm"] = "clv") -> dict[str, Any]:
    snap = selectors.member_snapshot(actor=request.auth, member_id=member_id, kind=kind)  # type: ignore[attr-defined]
    return _snapshot(request, snap)


@router.get("/health", response={200: dict, **ERRORS}, summary="Programme health figures for a date range")
def health(request: HttpRequest, filters: Query[HealthFilters]) -> dict[str, Any]:
    from memberhub.analytics.health import health_for  # Polars: loaded when a figure is asked for

    return health_for(actor=request.auth, query=filters.query()).as_dict()  # type: ignore[attr-defined]


class ExportFilters(HealthFilters):
    kind: Literal["snapshots", "health"] = "snapshots"
    format: Literal["csv", "xlsx"] = "csv"
    snapshot_kind: Literal["clv", "rfm"] = "clv"
    segment: str | None = None
    stage: str | None = None
    min_clv_fen: int | None = None


@router.get("/export", response={200: None, **ERRORS}, summary="Export snapshots or health as CSV or Excel")
def export(request: HttpRequest, filters: Query[ExportFilters]) -> HttpResponse | StreamingHttpResponse:
    actor = request.auth  # type: ignore[attr-defined]
    actor.require(Cap.ANALYTICS_READ)
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    header: tuple[str, ...]
    if filters.kind == "snapshots":
        qs = selectors.snapshot_list(actor=actor, kind=filters.snapshot_kind, segment=filters.segment,
                                     stage=filters.stage, min_clv_fen=filters.min_clv_fen).order_by("pk")
        header, rows = exports.SNAPSHOT_HEADER, exports.snapshot_rows(qs.iterator(chunk_size=2000))
    else:
        from memberhub.analytics.health import health_for

        header, rows = exports.HEALTH_HEADER, exports.health_rows(health_for(actor=actor, query=filters.query()).as_dict())
    name = f"analytics-{filters.kind}-{stamp}.{filters.format}"
    if filters.format == "csv":
        return exports.csv_response(header, rows, name)
    return exports.xlsx_response(header, rows, name, title=filters.kind)
