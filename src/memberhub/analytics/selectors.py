"""Reads of the stored snapshots: always the current run of a kind, within the caller's stores."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from memberhub.access.principal import Principal
from memberhub.access.roles import Cap
from memberhub.analytics.models import AnalyticsRun, MemberSnapshot
from memberhub.core.errors import NotFound, ValidationFailed

SNAPSHOT_KINDS = (AnalyticsRun.Kind.CLV, AnalyticsRun.Kind.RFM)


def _kind(kind: str) -> str:
    if kind not in SNAPSHOT_KINDS:
        raise ValidationFailed(_("Unknown snapshot kind."), code="invalid_kind", detail={"allowed": list(SNAPSHOT_KINDS)})
    return kind


def snapshot_scope(actor: Principal, kind: str = AnalyticsRun.Kind.CLV) -> QuerySet[MemberSnapshot]:
    """The current run's rows (none when no run of this kind has succeeded yet)."""
    actor.require(Cap.ANALYTICS_READ)
    qs = MemberSnapshot.objects.filter(run__kind=_kind(kind), run__is_current=True).select_related(
        "run", "member", "member__home_store").prefetch_related("member__consents")
    if actor.store_ids is not None:
        qs = qs.filter(member__home_store_id__in=actor.store_ids)
    return qs


def snapshot_list(
    *,
    actor: Principal,
    kind: str = AnalyticsRun.Kind.CLV,
    segment: str | None = None,
    stage: str | None = None,
    min_clv_fen: int | None = None,
    min_p_alive: float | None = None,
) -> QuerySet[MemberSnapshot]:
    qs = snapshot_scope(actor, kind)
    if segment:
        qs = qs.filter(segment=segment)
    if stage:
        qs = qs.filter(stage=stage)
    if min_clv_fen is not None:
        qs = qs.filter(clv_fen__gte=min_clv_fen)
    if min_p_alive is not None:
        qs = qs.filter(p_alive__gte=min_p_alive)
    return qs


def member_snapshot(*, actor: Principal, member_id: int, kind: str = AnalyticsRun.Kind.CLV) -> MemberSnapshot:
    snap = snapshot_scope(actor, kind).filter(member_id=member_id).first()
    if snap is None:
        raise NotFound(_("No current snapshot for this member."), code="snapshot_not_found")
    return snap


def run_scope_q(actor: Principal) -> Q:
    """A store-scoped caller sees the model runs (chain-wide fits, no member rows: its
    snapshots are filtered by store) and the health runs it asked for itself (always limited
    to its stores); another's health run may hold other stores' figures."""
    if actor.store_ids is None:
        return Q()
    return Q(kind__in=[AnalyticsRun.Kind.RFM, AnalyticsRun.Kind.CLV]) | Q(kind=AnalyticsRun.Kind.HEALTH,
                                                                        requested_by=actor.label)


def run_list(*, actor: Principal, kind: str | None = None) -> QuerySet[AnalyticsRun]:
    actor.require(Cap.ANALYTICS_READ)
    qs = AnalyticsRun.objects.filter(run_scope_q(actor))
    if kind:
        qs = qs.filter(kind=kind)
    return qs
