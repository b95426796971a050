"""Programme health on hand-made data; every expected number is counted by hand in the comments."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from memberhub.analytics.health import programme_health
from memberhub.analytics.queries import HealthQuery
from memberhub.loyalty.models import PointsAccount, PointsEntry, PointsLot, TierChange
from tests.analytics.conftest import at, buy, member, refund

JUNE = {"date_from": dt.date(2024, 6, 1), "date_to": dt.date(2024, 6, 30)}


@pytest.fixture
def june(stores: Any) -> dict[str, Any]:
    a = member("SH", "2024-01-10")  # buys in June twice (store SH, then online)
    b = member("SH", "2024-06-03")  # new; their only June order is refunded in full
    c = member("BJ", "2024-06-15")  # new; buys once in June
    d = member("BJ", "2024-02-01")  # bought in May only
    buy(a.pk, 10000, at("2024-06-05"))
    buy(a.pk, 5000, at("2024-06-20"), store="ONLINE", channel="online")
    refund(buy(b.pk, 3000, at("2024-06-10")), None, at("2024-06-11"))
    buy(c.pk, 8000, at("2024-06-16"), store="BJ")
    buy(d.pk, 2000, at("2024-05-10"), store="BJ")
    buy(None, 1000, at("2024-06-07"))  # anonymous
    return {"a": a, "b": b, "c": c, "d": d}


def health(store_ids: Any = None, **kw: Any) -> dict[str, Any]:
    return programme_health(query=HealthQuery(**{**JUNE, **kw}), store_ids=store_ids).as_dict()


def test_member_and_sales_figures(june: dict[str, Any]) -> None:
    h = health()
    # live by 30 June: a b c d; new in June: b c; bought in June: a c
    assert h["members"] == {"total": 4, "new": 2, "active": 2, "active_rate": 0.5}
    # a x2 + c + the anonymous order (b's is refunded): 10000 + 5000 + 8000 + 1000
    assert h["sales"] == {"purchases": 4, "net_fen": 24000, "average_order_fen": 6000,
                          "member_purchases": 3, "member_net_fen": 23000}
    assert h["repurchase"] == {"buyers": 2, "repeat_buyers": 1, "rate": 0.5}


def test_comparison_by_channel_and_store(june: dict[str, Any], stores: Any) -> None:
    h = health()
    by_channel = {r["channel"]: r for r in h["by_channel"]}
    assert by_channel["offline"] == {"channel": "offline", "purchases": 3, "net_fen": 19000,
                                     "average_order_fen": 6333, "buyers": 2, "repurchase_rate": 0.0}
    assert by_channel["online"]["purchases"] == 1 and by_channel["online"]["net_fen"] == 5000
    by_store = {r["store"]: (r["purchases"], r["net_fen"], r["buyers"]) for r in h["by_store"]}
    assert by_store == {"SH": (2, 11000, 1), "BJ": (1, 8000, 1), "ONLINE": (1, 5000, 1)}


def test_store_and_channel_filters(june: dict[str, Any], stores: Any) -> None:
    sh = health(store_ids=[stores["SH"].pk])
    assert sh["members"]["total"] == 2 and sh["members"]["new"] == 1 and sh["members"]["active"] == 1
    assert (sh["sales"]["purchases"], sh["sales"]["net_fen"]) == (2, 11000)
    assert sh["period"]["stores"] == ["SH"]
    online = health(channel="online")
    assert (online["sales"]["purchases"], online["sales"]["net_fen"], online["members"]["active"]) == (1, 5000, 1)


def test_cohort_retention_by_join_month(june: dict[str, Any]) -> None:
    h = health(cohort_months=6)
    cohorts = {c["cohort"]: c for c in h["cohorts"]}
    assert set(cohorts) == {"2024-01", "2024-02", "2024-06"}
    assert cohorts["2024-01"]["active"] == [0, 0, 0, 0, 0, 1]  # a: June
    assert cohorts["2024-02"]["active"] == [0, 0, 0, 1, 0]  # d: May
    assert cohorts["2024-06"] == {"cohort": "2024-06", "size": 2, "active": [1], "retention": [0.5]}  # c, not b


@pytest.fixture
def ledger(stores: Any) -> dict[str, Any]:
    """Points and tiers written by hand (no purchases, so nothing else earns)."""
    a, b, c, d = member("SH", "2024-01-10"), member("SH", "2024-06-03"), member("BJ", "2024-06-15"), member("BJ", "2024-02-01")
    acc = PointsAccount.objects.create(member=a, balance=750, tier="silver")
    acc_d = PointsAccount.objects.create(member=d, tier="normal")
    entries = [
        ("earn", 1000, "2024-06-05", "purchase"), ("redeem", -300, "2024-06-10", "cash"),
        ("redeem", -200, "2024-06-11", "hold"), ("reverse", 200, "2024-06-11", "hold_release"),
        ("expire", -100, "2024-06-30", "expiry"), ("reverse", -40, "2024-06-12", "refund"),
        ("adjust", 25, "2024-06-13", "manual"), ("earn", 88, "2024-06-14", "action:birthday"),
        ("expire", -50, "2024-01-15", "expiry"), ("redeem", -150, "2023-12-01", "cash"),  # before June
    ]
    PointsEntry.objects.bulk_create([PointsEntry(account=acc, kind=k, points=p, at=at(day), rule=r)
                                     for k, p, day, r in entries])
    lots = [(400, "2024-09-30", False), (200, "2025-03-31", False), (100, None, False), (0, "2024-12-31", False),
            (50, "2025-03-31", True)]
    PointsLot.objects.bulk_create([PointsLot(account=acc, points=max(r, 10), remaining=r, earned_at=at("2024-06-05"),
                                             expires_at=at(e) if e else None, pending=p) for r, e, p in lots])
    TierChange.objects.create(account=acc, from_tier="normal", to_tier="silver", reason="upgrade", at=at("2024-06-10"))
    TierChange.objects.create(account=acc_d, from_tier="normal", to_tier="silver", reason="upgrade", at=at("2024-03-01"))
    TierChange.objects.create(account=acc_d, from_tier="silver", to_tier="normal", reason="downgrade", at=at("2024-06-20"))
    return {"a": a, "b": b, "c": c, "d": d}


def test_points_issued_redeemed_expired_and_liability(ledger: dict[str, Any]) -> None:
    p = health()["points"]
    # issued 1000 + 88; redeemed 300 + 200 - 200 (hold released); expired 100; refund clawback 40
    assert {k: p[k] for k in ("issued", "redeemed", "expired", "clawed_back", "adjusted")} == {
        "issued": 1088, "redeemed": 300, "expired": 100, "clawed_back": 40, "adjusted": 25}
    li = p["liability"]
    assert li["outstanding"] == 750 and li["pending"] == 50 and li["no_expiry"] == 100
    assert li["by_expiry_month"] == [{"month": "2024-09", "points": 400}, {"month": "2025-03", "points": 250}]
    # 12 months to 30 June: expired 100 + 50, redeemed 300 + 150 -> 150 / 600
    assert li["expiry_ratio"] == 0.25
    assert li["expected_breakage"] == round(750 * 0.25)


def test_tier_distribution_and_migration_matrix(ledger: dict[str, Any]) -> None:
    h = health()
    assert h["tiers"] == {"silver": 1, "normal": 3}
    m = h["tier_migration"]
    # a normal -> silver; d silver -> normal; b and c joined in June (no account: the entry tier)
    assert m["matrix"] == {"normal": {"silver": 1}, "silver": {"normal": 1}, "new": {"normal": 2}}
    assert m["from"] == {"normal": 1, "silver": 1}


def test_benefit_usage_counts_action_points(ledger: dict[str, Any]) -> None:
    assert health()["benefits"]["actions"] == {"birthday": {"count": 1, "points": 88}}


def test_coupon_redemption_and_return_on_discount(june: dict[str, Any]) -> None:
    from memberhub.coupons.models import Coupon, CouponRedemption, CouponRedemptionReversal, CouponTemplate

    t = CouponTemplate.objects.create(name="t", kind="amount_off", validity_kind="relative", valid_days=30)

    def coupon(code: str, m: Any, issued: str) -> Coupon:
        return Coupon.objects.create(template=t, code=code, member=m, valid_from=at(issued),
                                     valid_until=at("2024-12-31"), issued_at=at(issued), source="manual")

    ca, cb, cc, cd = (coupon("CA", june["a"], "2024-06-02"), coupon("CB", june["b"], "2024-06-04"),
                      coupon("CC", june["c"], "2024-06-16"), coupon("CD", june["d"], "2024-05-20"))

    def redeem(c: Coupon, fen: int, sales: int, day: str, status: str = "redeemed") -> CouponRedemption:
        return CouponRedemption.objects.create(coupon=c, template=t, member=c.member, channel="offline",
                                               order_no=c.code, amount_fen=fen, order_sales_fen=sales,
                                               redeemed_at=at(day), status=status)

    redeem(ca, 500, 10000, "2024-06-05")
    redeem(cd, 300, 2000, "2024-06-02")  # issued in May: a June redemption, not a June issue used
    redeem(cb, 400, 3000, "2024-06-10", status="restored")  # restored the old way, by status
    ce = coupon("CE", june["a"], "2024-06-03")
    reversed_one = redeem(ce, 700, 5000, "2024-06-11")  # restored by an appended reversal row
    CouponRedemptionReversal.objects.create(redemption=reversed_one, coupon=ce, template=t, channel="offline",
                                            order_no="CE", amount_fen=700, reason="refund", at=at("2024-06-12"))
    c = health()["coupons"]
    # issued in June: CA CB CC CE; used of those: CA (CB and CE were restored); redemptions: CA, CD
    assert c == {"issued": 4, "issued_and_used": 1, "redemption_rate": pytest.approx(1 / 4, abs=1e-6),
                 "redemptions": 2, "discount_fen": 800, "order_sales_fen": 12000, "return_on_discount": 15.0}
    assert cc.pk


def test_liability_and_member_expiry_agree_on_the_month_at_a_boundary(stores: Any) -> None:
    """A lot expiring at 00:00 on 1 Jan 2028 Shanghai (2027-12-31T16:00Z) is last usable on
    31 Dec 2027: both the programme's liability and the member's own expiry view say 2027-12
    (the liability once said 2028-01, truncating the exclusive instant to its month)."""
    from memberhub.access.principal import system_principal
    from memberhub.loyalty.selectors import expiring_member

    a = member("SH", "2024-01-10")
    acc = PointsAccount.objects.create(member=a, balance=300)
    boundary = dt.datetime(2027, 12, 31, 16, 0, tzinfo=dt.UTC)
    PointsLot.objects.create(account=acc, points=300, remaining=300, earned_at=at("2024-06-05"), expires_at=boundary)
    li = health()["points"]["liability"]
    assert li["by_expiry_month"] == [{"month": "2027-12", "points": 300}]
    mine = expiring_member(actor=system_principal("test"), member_id=a.pk, now=at("2024-06-30"))
    assert [(b["period"].strftime("%Y-%m"), b["points"]) for b in mine] == [("2027-12", 300)]
