"""Programme health: the figures a programme manager watches, for a date range.

Read-only. Every figure is defined in docs/analytics.md ("Programme health"); in short:
dates are calendar days in the programme's time zone, `date_to` inclusive; a purchase is
one with net paid (paid - refunded) > 0; a store filter keeps purchases made in those stores
and members whose home store is one of them; a channel filter applies to purchases (and
coupon redemptions) only.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

import polars as pl
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.utils.translation import gettext_lazy as _

from memberhub.access.principal import Principal
from memberhub.access.roles import Cap
from memberhub.analytics import reader
from memberhub.analytics.queries import HealthQuery
from memberhub.core.errors import ValidationFailed
from memberhub.domain.points_lots import expiry_month
from memberhub.loyalty.models import PointsAccount, PointsEntry, PointsLot, TierChange
from memberhub.loyalty.programme import rules_current
from memberhub.members.models import Member
from memberhub.stores.models import Store

LIVE = (Member.Status.ACTIVE, Member.Status.FROZEN)
NEW_MEMBER = "new"  # the tier-migration row of members who joined after the start date
BREAKAGE_WINDOW_DAYS = 365


@dataclass
class Health:
    period: dict[str, Any]
    members: dict[str, Any]
    sales: dict[str, Any]
    repurchase: dict[str, Any]
    tiers: dict[str, int]
    tier_migration: dict[str, Any]
    cohorts: list[dict[str, Any]]
    points: dict[str, Any]
    coupons: dict[str, Any] | None
    benefits: dict[str, Any]
    by_channel: list[dict[str, Any]]
    by_store: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def health_scope(actor: Principal, codes: tuple[str, ...] | list[str]) -> list[int] | None:
    """Store ids the figures are limited to (None: all). A store-scoped caller is always limited
    to their stores and may not name another."""
    ids: list[int] | None = None
    if codes:
        found = dict(Store.objects.filter(code__in=list(codes)).values_list("code", "pk"))
        unknown = sorted(set(codes) - set(found))
        if unknown:
            raise ValidationFailed(_("Unknown store."), code="store_not_found", detail={"stores": unknown})
        for pk in found.values():
            actor.require_store(pk)
        ids = sorted(found.values())
    elif actor.store_ids is not None:
        ids = sorted(actor.store_ids)
    return ids


def health_for(*, actor: Principal, query: HealthQuery) -> Health:
    actor.require(Cap.ANALYTICS_READ)
    return programme_health(query=query, store_ids=health_scope(actor, query.stores))


def _ratio(num: float, den: float) -> float | None:
    return round(num / den, 6) if den else None


def _month(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _add_months(day: dt.date, n: int) -> dt.date:
    y, m = divmod(day.month - 1 + n, 12)
    return dt.date(day.year + y, m + 1, 1)


def programme_health(*, query: HealthQuery, store_ids: list[int] | None) -> Health:
    to = query.date_to or reader.local_today()
    frm = query.date_from or to - dt.timedelta(days=29)
    start, end = reader.local_midnight(frm), reader.local_midnight(to + dt.timedelta(days=1))
    cohort_start = _add_months(_month(to), -(query.cohort_months - 1))
    members = reader.members_frame()
    scoped = members if store_ids is None else members.filter(pl.col("home_store").is_in(store_ids))
    read_from = min(start, reader.local_midnight(cohort_start))
    purchases = reader.purchases_frame(start=read_from, end=end, members=members, store_ids=store_ids,
                                       channel=query.channel, members_only=False)
    in_period = purchases.filter(pl.col("day") >= frm)
    codes = dict(Store.objects.values_list("pk", "code"))
    notes: list[str] = []
    return Health(
        period={"date_from": frm.isoformat(), "date_to": to.isoformat(),
                "stores": [codes.get(i) for i in store_ids] if store_ids is not None else None,
                "channel": query.channel},
        members=_members(scoped, in_period, frm, to),
        sales=_sales(in_period),
        repurchase=_repurchase(in_period),
        tiers=_tiers_at(scoped, to),
        tier_migration=_migration(scoped, query.migration_from or frm, to),
        cohorts=_cohorts(scoped, purchases, cohort_start, to),
        points=_points(store_ids, start, end, to),
        coupons=_coupons(store_ids, query.channel, start, end, notes),
        benefits=_benefits(store_ids, query.channel, start, end),
        by_channel=_compare(in_period, "channel", None),
        by_store=_compare(in_period, "store", codes),
        notes=notes,
    )


def _members(scoped: pl.DataFrame, in_period: pl.DataFrame, frm: dt.date, to: dt.date) -> dict[str, Any]:
    live = scoped.filter(pl.col("status").is_in(LIVE) & (pl.col("joined") <= to))
    new = scoped.filter((pl.col("status") != Member.Status.MERGED) & pl.col("joined").is_between(frm, to))
    buyers = in_period.filter(pl.col("member").is_not_null())
    active = buyers["member"].n_unique() if buyers.height else 0
    return {"total": live.height, "new": new.height, "active": active,
            "active_rate": _ratio(active, live.height)}


def _sales(in_period: pl.DataFrame) -> dict[str, Any]:
    n = in_period.height
    net = int(in_period["net_fen"].sum() or 0)
    by_members = in_period.filter(pl.col("member").is_not_null())
    return {"purchases": n, "net_fen": net, "average_order_fen": round(net / n) if n else None,
            "member_purchases": by_members.height, "member_net_fen": int(by_members["net_fen"].sum() or 0)}


def _repurchase(in_period: pl.DataFrame) -> dict[str, Any]:
    per = in_period.filter(pl.col("member").is_not_null()).group_by("member").len()
    buyers = per.height
    repeat = per.filter(pl.col("len") >= 2).height
    return {"buyers": buyers, "repeat_buyers": repeat, "rate": _ratio(repeat, buyers)}


def _compare(in_period: pl.DataFrame, by: str, names: dict[int, str] | None) -> list[dict[str, Any]]:
    if in_period.height == 0:
        return []
    grouped = (in_period.group_by(by).agg(
        pl.len().alias("purchases"), pl.col("net_fen").sum().alias("net_fen"),
        pl.col("member").drop_nulls().n_unique().alias("buyers"),
    ).sort("net_fen", by, descending=[True, False], nulls_last=True))
    repeat = (in_period.filter(pl.col("member").is_not_null()).group_by(by, "member").len()
              .filter(pl.col("len") >= 2).group_by(by).len().rename({"len": "repeat_buyers"}))
    grouped = grouped.join(repeat, on=by, how="left", nulls_equal=True)
    out = []
    for row in grouped.iter_rows(named=True):
        key = row[by]
        n, net, buyers = row["purchases"], int(row["net_fen"]), row["buyers"]
        out.append({
            by: (names.get(key) if names is not None and key is not None else key),
            "purchases": n, "net_fen": net, "average_order_fen": round(net / n) if n else None,
            "buyers": buyers, "repurchase_rate": _ratio(row["repeat_buyers"] or 0, buyers),
        })
    return out


def _tier_history(scoped: pl.DataFrame) -> tuple[dict[int, str], dict[int, list[tuple[dt.datetime, str, str]]]]:
    """Current tier per member and their tier changes in time order."""
    ids = scoped.filter(pl.col("status").is_in(LIVE))["id"].to_list()
    current: dict[int, str] = {}
    history: dict[int, list[tuple[dt.datetime, str, str]]] = defaultdict(list)
    for chunk in range(0, len(ids), 20_000):
        part = ids[chunk: chunk + 20_000]
        current.update(PointsAccount.objects.filter(member_id__in=part).values_list("member_id", "tier"))
        for member_id, at, a, b in (TierChange.objects.filter(account__member_id__in=part)
                                    .order_by("at", "pk").values_list("account__member_id", "at", "from_tier", "to_tier")):
            history[member_id].append((at, a, b))
    return current, history


def _tier_on(day_end: dt.datetime, current: str, changes: list[tuple[dt.datetime, str, str]]) -> str:
    """The tier at an instant: the last change before it, else the first change's starting tier."""
    before = [c for c in changes if c[0] < day_end]
    if before:
        return before[-1][2]
    return changes[0][1] if changes else current


def _default_tier() -> str:
    return str(PointsAccount._meta.get_field("tier").default)


def _tiers_at(scoped: pl.DataFrame, to: dt.date) -> dict[str, int]:
    return _migration(scoped, to, to)["to"]


def _migration(scoped: pl.DataFrame, frm: dt.date, to: dt.date) -> dict[str, Any]:
    """How members moved between tiers from the start of `frm` to the end of `to`."""
    live = scoped.filter(pl.col("status").is_in(LIVE) & (pl.col("joined") <= to))
    current, history = _tier_history(live)
    t0, t1 = reader.local_midnight(frm), reader.local_midnight(to + dt.timedelta(days=1))
    default = _default_tier()
    matrix: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    at_start: dict[str, int] = defaultdict(int)
    at_end: dict[str, int] = defaultdict(int)
    for member_id, joined in live.select("id", "joined").iter_rows():
        now_tier = current.get(member_id, default)
        changes = history.get(member_id, [])
        b = _tier_on(t1, now_tier, changes)
        a = _tier_on(t0, now_tier, changes) if joined < frm else NEW_MEMBER
        matrix[a][b] += 1
        at_end[b] += 1
        if a != NEW_MEMBER:
            at_start[a] += 1
    return {"date_from": frm.isoformat(), "date_to": to.isoformat(), "from": dict(at_start), "to": dict(at_end),
            "matrix": {a: dict(row) for a, row in matrix.items()}}


def _cohorts(scoped: pl.DataFrame, purchases: pl.DataFrame, first: dt.date, to: dt.date) -> list[dict[str, Any]]:
    """Members by join month; for each month since, the share of them who bought in it."""
    joined = (scoped.filter((pl.col("status") != Member.Status.MERGED) & (pl.col("joined") >= first)
                            & (pl.col("joined") <= to))
              .select(pl.col("id").alias("member"), pl.col("joined").dt.truncate("1mo").alias("cohort")))
    if joined.height == 0:
        return []
    active = (purchases.filter(pl.col("member").is_not_null())
              .select("member", pl.col("day").dt.truncate("1mo").alias("month")).unique()
              .join(joined, on="member", how="inner")
              .filter(pl.col("month") >= pl.col("cohort"))
              .group_by("cohort", "month").len())
    sizes = dict(joined.group_by("cohort").len().iter_rows())
    counts = {(c, m): n for c, m, n in active.iter_rows()}
    last = _month(to)
    out = []
    for cohort in sorted(sizes):
        size = sizes[cohort]
        months, retained = [], []
        k, month = 0, cohort
        while month <= last:
            n = counts.get((cohort, month), 0)
            months.append(n)
            retained.append(_ratio(n, size))
            k += 1
            month = _add_months(cohort, k)
        out.append({"cohort": cohort.strftime("%Y-%m"), "size": size, "active": months, "retention": retained})
    return out


def _entries(store_ids: list[int] | None) -> QuerySet[PointsEntry]:
    qs = PointsEntry.objects.all()
    if store_ids is not None:
        qs = qs.filter(account__member__home_store_id__in=store_ids)
    return qs


def _movements(qs: QuerySet[PointsEntry], start: dt.datetime, end: dt.datetime) -> dict[str, int]:
    sums: dict[tuple[str, str], int] = {
        (kind, rule): int(total or 0)
        for kind, rule, total in qs.filter(at__gte=start, at__lt=end).values_list("kind", "rule")
        .annotate(total=Sum("points")).values_list("kind", "rule", "total")
    }
    K = PointsEntry.Kind

    def total(kind: str, rule: str | None = None) -> int:
        return sum(v for (k, r), v in sums.items() if k == kind and (rule is None or r == rule))

    return {
        "issued": total(K.EARN),
        # a released checkout hold gives its points back: not a redemption
        "redeemed": -total(K.REDEEM) - total(K.REVERSE, "hold_release"),
        "expired": -total(K.EXPIRE),
        "clawed_back": -total(K.REVERSE, "refund"),
        "adjusted": total(K.ADJUST),
    }


def _points(store_ids: list[int] | None, start: dt.datetime, end: dt.datetime, to: dt.date) -> dict[str, Any]:
    moves = _movements(_entries(store_ids), start, end)
    window = _movements(_entries(store_ids), end - dt.timedelta(days=BREAKAGE_WINDOW_DAYS), end)
    ratio = _ratio(window["expired"], window["expired"] + window["redeemed"])
    lots = PointsLot.objects.filter(remaining__gt=0)
    if store_ids is not None:
        lots = lots.filter(account__member__home_store_id__in=store_ids)
    # grouped by expiry instant in the database (few distinct ones), then bucketed by the same
    # rule as the member's own expiry view: the month of the last valid day, in the programme's zone
    zone = rules_current().timezone
    by_instant = lots.values("expires_at").annotate(points=Sum("remaining")).order_by()
    per_month: dict[dt.date, int] = defaultdict(int)
    no_expiry = 0
    for row in by_instant:
        if row["expires_at"] is None:
            no_expiry += int(row["points"])
        else:
            per_month[expiry_month(row["expires_at"], timezone=zone)] += int(row["points"])
    months = [{"month": m.strftime("%Y-%m"), "points": per_month[m]} for m in sorted(per_month)]
    outstanding = sum(per_month.values()) + no_expiry
    pending = int(lots.filter(pending=True).aggregate(s=Sum("remaining"))["s"] or 0)
    return {
        **moves,
        "liability": {
            "outstanding": outstanding, "pending": pending, "no_expiry": no_expiry, "by_expiry_month": months,
            "expiry_ratio": ratio, "expiry_ratio_window_days": BREAKAGE_WINDOW_DAYS,
            "expected_breakage": round(outstanding * ratio) if ratio is not None else None,
        },
    }


def _coupons(store_ids: list[int] | None, channel: str | None, start: dt.datetime, end: dt.datetime,
             notes: list[str]) -> dict[str, Any] | None:
    try:
        from memberhub.coupons.models import Coupon, CouponRedemption
    except ImportError:  # the coupons app is not installed in this build
        notes.append("coupons: the coupons tables are not available")
        return None
    issued = Coupon.objects.filter(issued_at__gte=start, issued_at__lt=end)
    redemptions = CouponRedemption.objects.live().filter(redeemed_at__gte=start, redeemed_at__lt=end)
    if store_ids is not None:
        issued = issued.filter(member__home_store_id__in=store_ids)
        redemptions = redemptions.filter(store_id__in=store_ids)
    if channel is not None:
        redemptions = redemptions.filter(channel=channel)
    n_issued = issued.count()
    used = issued.filter(Exists(CouponRedemption.objects.live().filter(coupon=OuterRef("pk")))).count()
    agg = redemptions.aggregate(n=Count("pk"), discount=Sum("amount_fen"), shipping=Sum("shipping_fen"),
                                sales=Sum("order_sales_fen"))
    discount = int(agg["discount"] or 0) + int(agg["shipping"] or 0)
    sales = int(agg["sales"] or 0)
    return {
        "issued": n_issued, "issued_and_used": used, "redemption_rate": _ratio(used, n_issued),
        "redemptions": int(agg["n"] or 0), "discount_fen": discount, "order_sales_fen": sales,
        "return_on_discount": _ratio(sales, discount),
    }


def _benefits(store_ids: list[int] | None, channel: str | None, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """Action points (birthday, check-in, ...) granted, and the discounts recorded on purchases by kind."""
    actions = (_entries(store_ids).filter(at__gte=start, at__lt=end, kind=PointsEntry.Kind.EARN,
                                          rule__startswith="action:")
               .values("rule").annotate(n=Count("pk"), points=Sum("points")).order_by("rule"))
    from memberhub.loyalty.models import Purchase

    purchases = Purchase.objects.filter(at__gte=start, at__lt=end).exclude(Q(discounts=[]) | Q(discounts__isnull=True))
    if store_ids is not None:
        purchases = purchases.filter(store_id__in=store_ids)
    if channel is not None:
        purchases = purchases.filter(channel=channel)
    discounts: dict[str, dict[str, int]] = defaultdict(lambda: {"count": 0, "fen": 0})
    for items in purchases.values_list("discounts", flat=True).iterator(chunk_size=5000):
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            kind = str(item.get("kind") or item.get("type") or item.get("code") or "other")
            fen = item.get("amount_fen", item.get("fen", 0))
            discounts[kind]["count"] += 1
            discounts[kind]["fen"] += int(fen) if isinstance(fen, int) else 0
    return {
        "actions": {row["rule"].removeprefix("action:"): {"count": row["n"], "points": int(row["points"] or 0)}
                    for row in actions},
        "discounts": dict(discounts),
    }
