from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from memberhub.domain.clv import bgnbd, gammagamma, summarise
from memberhub.domain.clv.clv import customer_lifetime_value
from memberhub.domain.clv.lifecycle import LifecycleConfig, Stage, lifecycle_stage

DATA = Path(__file__).resolve().parents[2] / "data"
D = dt.date


def test_summary_counts_repeat_purchase_days_like_fader_hardie():
    tx = pl.DataFrame(
        {
            "customer": ["a", "a", "a", "a", "b", "c"],
            "date": [
                D(2024, 1, 1),
                D(2024, 1, 1),
                D(2024, 1, 11),
                D(2024, 1, 21),
                D(2024, 1, 5),
                D(2024, 2, 1),
            ],
            "amount": [10.0, 5.0, 30.0, 50.0, 7.0, 99.0],
        }
    )
    s = summarise(tx, observation_end=D(2024, 1, 31))
    assert s.customer.to_list() == ["a", "b"]  # c bought after the observation end
    np.testing.assert_array_equal(s.x, [2, 0])  # two purchases on 1 Jan are one purchase day
    np.testing.assert_array_equal(s.t_x, [20, 0])
    np.testing.assert_array_equal(s.T, [30, 26])
    np.testing.assert_array_equal(s.monetary, [40.0, 0.0])  # mean of the repeat purchases only
    weeks = summarise(tx, observation_end=D(2024, 1, 31), time_unit_days=7)
    np.testing.assert_allclose(weeks.T, [30 / 7, 26 / 7])


def test_summary_of_the_cdnow_master_file():
    raw = pl.read_csv(DATA / "CDNOW_master.txt", separator="\x1f", has_header=True, new_columns=["line"])
    parts = raw["line"].str.strip_chars().str.replace_all(r"\s+", " ").str.split(" ")
    tx = pl.DataFrame(
        {
            "customer": parts.list.get(0),
            "date": parts.list.get(1).str.to_date("%Y%m%d"),
            "amount": parts.list.get(3).cast(pl.Float64),
        }
    )
    s = summarise(tx, observation_end=D(1998, 6, 30))
    assert len(s) == 23_570
    assert tx.height == 69_659
    assert s.T.max() == (D(1998, 6, 30) - D(1997, 1, 1)).days
    assert np.all(s.t_x <= s.T)


def test_clv_discounting_and_horizon():
    fit = bgnbd.BgNbdFit(
        bgnbd.BgNbdParams(0.243, 4.414 * 7, 0.793, 2.426), 0.0, bgnbd.BgNbdParams(0, 0, 0, 0), 1, 1, True, 0
    )
    x, t_x, T = np.array([2.0, 0.0]), np.array([200.0, 0.0]), np.array([270.0, 270.0])
    spend = np.array([30.0, 30.0])
    undiscounted = customer_lifetime_value(fit, x, t_x, T, spend, horizon_days=365, annual_discount_rate=0.0)
    np.testing.assert_allclose(undiscounted, spend * fit.expected_purchases(365, x, t_x, T), rtol=1e-12)
    discounted = customer_lifetime_value(fit, x, t_x, T, spend, horizon_days=365, annual_discount_rate=0.1)
    assert np.all(discounted < undiscounted) and np.all(discounted > undiscounted / 1.1)
    longer = customer_lifetime_value(fit, x, t_x, T, spend, horizon_days=730, annual_discount_rate=0.1)
    assert np.all(longer > discounted)
    with pytest.raises(ValueError):
        customer_lifetime_value(fit, x, t_x, T, spend, horizon_days=0, annual_discount_rate=0.1)


def test_clv_of_the_cdnow_sample_is_finite_and_positive(cdnow_sample, cdnow_spend):
    fit = bgnbd.fit(*cdnow_sample)
    spend_fit = gammagamma.fit(*cdnow_spend)
    x, t_x, T = cdnow_sample
    spend = spend_fit.expected_average_spend(x, cdnow_spend[1])
    value = customer_lifetime_value(
        fit, x, t_x, T, spend, horizon_days=365, annual_discount_rate=0.1, time_unit_days=7
    )
    assert np.all(np.isfinite(value)) and np.all(value > 0)


def test_lifecycle_stages_follow_the_documented_rules():
    stages = lifecycle_stage(
        p_alive=np.array([0.05, 0.05, 0.9, 0.3, 0.9, 0.9, 0.9, 0.95]),
        recency_days=np.array([10, 60, 400, 30, 200, 20, 20, 10]),
        age_days=np.array([30, 400, 500, 400, 400, 400, 400, 90]),
        repeat_purchases=np.array([0, 1, 5, 2, 4, 5, 1, 0]),
    )
    assert stages.tolist() == [
        Stage.NEW,
        Stage.CHURNED,
        Stage.CHURNED,
        Stage.DORMANT,
        Stage.DORMANT,
        Stage.MATURE,
        Stage.GROWING,
        Stage.NEW,
    ]
    assert Stage.NEW.value == "新客"
    with pytest.raises(ValueError):
        LifecycleConfig(churned_max_p_alive=0.6, dormant_max_p_alive=0.5)
