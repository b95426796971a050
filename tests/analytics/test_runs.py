"""Snapshot runs on the database give exactly the domain functions' numbers on the same purchases."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import polars as pl
import pytest

from memberhub.analytics import reader
from memberhub.analytics.models import AnalyticsRun, MemberSnapshot
from memberhub.analytics.queries import ClvQuery, RfmQuery
from memberhub.analytics.services import run_now
from memberhub.domain.clv import bgnbd, gammagamma
from memberhub.domain.clv.clv import customer_lifetime_value
from memberhub.domain.clv.lifecycle import lifecycle_stage
from memberhub.domain.clv.summary import summarise
from memberhub.domain.rfm import RfmConfig, rfm
from memberhub.members.models import Member
from tests.analytics.conftest import SYSTEM, Shop, at, buy, member

END = dt.date(2024, 12, 31)


def frame(shop: Shop) -> pl.DataFrame:
    return pl.DataFrame(
        {"customer": [shop.members[k].pk for k, _d, _v in shop.transactions],
         "date": [d for _k, d, _v in shop.transactions],
         "amount": [float(v) for _k, _d, v in shop.transactions]},
        schema={"customer": pl.Int64, "date": pl.Date, "amount": pl.Float64},
    )


def stored(run: AnalyticsRun) -> dict[int, MemberSnapshot]:
    return {s.member_id: s for s in MemberSnapshot.objects.filter(run=run)}


def test_it_reads_net_purchases_on_local_days_folding_merges(shop: Shop) -> None:
    purchases = reader.purchases_frame(end=reader.local_midnight(END + dt.timedelta(days=1)))
    got = sorted(zip(purchases["member"].to_list(), purchases["day"].to_list(), purchases["net_fen"].to_list(),
                     strict=True))
    want = sorted((shop.members[k].pk, d, v) for k, d, v in shop.transactions)
    assert got == want
    erased = shop.members["m8"].pk
    assert set(purchases.filter(pl.col("erased"))["member"].to_list()) == {erased}


def test_it_folds_a_merge_chain_even_when_purchases_were_not_moved(shop: Shop) -> None:
    m1, m3, m4 = (shop.members[k].pk for k in ("m1", "m3", "m4"))
    # m4 -> m3 -> m1 recorded by hand, as history imported before the merge hook would leave it
    Member.objects.filter(pk=m4).update(status="merged", merged_into=m3)
    Member.objects.filter(pk=m3).update(status="merged", merged_into=m1)
    purchases = reader.purchases_frame()
    assert set(purchases["member"].drop_nulls().to_list()).isdisjoint({m3, m4})
    assert purchases.filter(pl.col("member") == m1).height == 6 + 3 + 1  # m1 (with m7), m3, m4


def test_an_rfm_run_stores_the_domain_rfm_per_member(shop: Shop) -> None:
    run = run_now(actor=SYSTEM, query=RfmQuery(observation_end=END))
    assert run.status == "succeeded", run.error
    assert run.is_current
    want = rfm(frame(shop), config=RfmConfig(observation_end=END)).to_frame()
    rows = stored(run)
    erased = shop.members["m8"].pk
    assert set(rows) == set(want["customer"].to_list()) - {erased}
    for w in want.iter_rows(named=True):
        if w["customer"] == erased:
            continue
        s = rows[w["customer"]]
        assert (s.recency_days, s.frequency, s.monetary_fen) == (w["recency_days"], w["frequency"], round(w["monetary"]))
        assert (s.r_score, s.f_score, s.m_score, s.segment) == (w["r_score"], w["f_score"], w["m_score"], w["segment"])
        assert s.clv_fen is None and s.stage == ""
    m1 = rows[shop.members["m1"].pk]
    assert (m1.frequency, m1.monetary_fen, m1.recency_days) == (6, 10000 + 8000 + 12000 + 9000 + 15000 + 7700, 41)
    assert run.counts["snapshots"] == 6 and run.counts["members_analysed"] == 7


def test_a_clv_run_stores_the_domain_clv_p_alive_and_stage_per_member(crowd: Shop) -> None:
    shop = crowd
    run = run_now(actor=SYSTEM, query=ClvQuery(observation_end=END, horizon_days=180, discount_rate=0.08))
    assert run.status == "succeeded", run.error
    s = summarise(frame(shop), observation_end=END)
    model = bgnbd.fit(s.x, s.t_x, s.T)
    spend = gammagamma.fit(s.x, s.monetary)
    expected = model.expected_purchases(180, s.x, s.t_x, s.T)
    p_alive = model.p_alive(s.x, s.t_x, s.T)
    avg = spend.expected_average_spend(s.x, s.monetary)
    value = customer_lifetime_value(model, s.x, s.t_x, s.T, avg, horizon_days=180, annual_discount_rate=0.08)
    stage = lifecycle_stage(p_alive=p_alive, recency_days=s.T - s.t_x, age_days=s.T, repeat_purchases=s.x)
    rows = stored(run)
    erased = shop.members["m8"].pk
    for i, customer in enumerate(s.customer.to_list()):
        if customer == erased:
            assert customer not in rows
            continue
        snap = rows[customer]
        assert snap.repeat_purchases == s.x[i]
        assert snap.expected_purchases == pytest.approx(expected[i], rel=1e-12)
        assert snap.p_alive == pytest.approx(p_alive[i], rel=1e-12)
        assert snap.expected_spend_fen == round(avg[i])
        assert snap.clv_fen == round(value[i])
        assert snap.stage == stage[i]
    assert run.fitted["purchase_model"]["params"]["r"] == pytest.approx(model.params.r, rel=1e-12)
    assert run.counts["clv_fen"] == sum(r.clv_fen for r in rows.values())
    # m3's two orders on 2024-05-05 are one purchase day for the model, two purchases for RFM
    m3 = rows[shop.members["m3"].pk]
    assert (m3.frequency, m3.repeat_purchases) == (3, 1)


def test_a_new_run_becomes_current_and_old_snapshot_sets_are_pruned(shop: Shop, settings: Any) -> None:
    settings.ANALYTICS_KEEP_RUNS = 2
    runs = [run_now(actor=SYSTEM, query=RfmQuery(observation_end=END)) for _ in range(3)]
    assert [r.pk for r in AnalyticsRun.objects.filter(kind="rfm", is_current=True)] == [runs[-1].pk]
    assert not MemberSnapshot.objects.filter(run=runs[0]).exists()
    assert MemberSnapshot.objects.filter(run=runs[1]).exists() and MemberSnapshot.objects.filter(run=runs[2]).exists()


def test_a_run_that_cannot_fit_fails_and_keeps_the_current_snapshots(crowd: Shop) -> None:
    good = run_now(actor=SYSTEM, query=ClvQuery(observation_end=END))
    bad = run_now(actor=SYSTEM, query=ClvQuery(observation_end=dt.date(2020, 1, 1)))
    assert bad.status == "failed" and "no member purchases" in bad.error
    assert not bad.is_current and not MemberSnapshot.objects.filter(run=bad).exists()
    good.refresh_from_db()
    assert good.is_current


def test_no_repeat_purchases_fails_with_a_reason(stores: Any) -> None:
    for day in ("2024-01-01", "2024-02-01"):
        buy(member().pk, 1000, at(day))
    run = run_now(actor=SYSTEM, query=ClvQuery(observation_end=END))
    assert run.status == "failed" and "repeat purchase" in run.error


def test_erasing_a_member_deletes_their_snapshots(shop: Shop) -> None:
    from memberhub.members.privacy import member_erase

    run_now(actor=SYSTEM, query=RfmQuery(observation_end=END))
    m2 = shop.members["m2"].pk
    assert MemberSnapshot.objects.filter(member_id=m2).exists()
    member_erase(actor=SYSTEM, member_id=m2, reason="asked")
    assert not MemberSnapshot.objects.filter(member_id=m2).exists()


def test_the_weeks_time_unit_and_pareto_model_also_run(crowd: Shop) -> None:
    run = run_now(actor=SYSTEM, query=ClvQuery(observation_end=END, model="paretonbd", time_unit="weeks"))
    assert run.status == "succeeded", run.error
    assert run.fitted["purchase_model"]["name"] == "paretonbd"
    assert all(0 <= s.p_alive <= 1 for s in MemberSnapshot.objects.filter(run=run))
    assert np.isfinite(run.counts["expected_purchases"])
    assert all(np.isfinite(v) for v in run.fitted["purchase_model"]["params"].values())
