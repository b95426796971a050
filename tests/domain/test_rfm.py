from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from memberhub.domain.rfm import SEGMENT_ORDER, RfmConfig, quintile_scores, rfm

D = dt.date


@pytest.fixture
def shop() -> pl.DataFrame:
    # Eight members, one for each segment when compared with the averages
    # (frequency mean 19/8).
    rows = [
        # member, days before 31 Jan of each purchase, amount of each purchase
        ("vip", [1, 10, 20, 30], [200, 200, 200, 200]),  # R high F high M high
        ("big_new", [5], [900]),  # R high F low  M high
        ("big_old", [45, 50, 55, 60], [150, 150, 150, 150]),  # R low  F high M high
        ("big_gone", [50], [700]),  # R low  F low  M high
        ("small_loyal", [2, 8, 14, 21], [10, 10, 10, 10]),  # R high F high M low
        ("small_new", [3], [20]),  # R high F low  M low
        ("small_old", [40, 45, 50], [30, 30, 30]),  # R low  F high M low
        ("small_gone", [58], [15]),  # R low  F low  M low
    ]
    end = D(2024, 1, 31)
    records = [
        (member, end - dt.timedelta(days=ago), float(amount))
        for member, agos, amounts in rows
        for ago, amount in zip(agos, amounts, strict=True)
    ]
    return pl.DataFrame(records, schema=["customer", "date", "amount"], orient="row")


def by_member(result) -> dict[str, str]:
    return dict(zip(result.values.customer.to_list(), result.segment.tolist(), strict=True))


def test_it_assigns_the_eight_classic_segments(shop):
    result = rfm(shop, config=RfmConfig(observation_end=D(2024, 1, 31)))
    assert by_member(result) == {
        "vip": "重要价值客户",
        "big_new": "重要发展客户",
        "big_old": "重要保持客户",
        "big_gone": "重要挽留客户",
        "small_loyal": "一般价值客户",
        "small_new": "一般发展客户",
        "small_old": "一般保持客户",
        "small_gone": "一般挽留客户",
    }
    assert result.segment_counts() == dict.fromkeys(SEGMENT_ORDER, 1)
    r_t, f_t, m_t = result.thresholds
    assert f_t == pytest.approx(19 / 8)


def test_recency_frequency_monetary_values(shop):
    result = rfm(shop, config=RfmConfig(observation_end=D(2024, 1, 31)))
    frame = result.to_frame().filter(pl.col("customer") == "vip").row(0, named=True)
    assert (frame["recency_days"], frame["frequency"], frame["monetary"]) == (1.0, 4.0, 800.0)
    mean = rfm(shop, config=RfmConfig(observation_end=D(2024, 1, 31), monetary="mean")).to_frame()
    assert mean.filter(pl.col("customer") == "vip")["monetary"][0] == 200.0


def test_thresholds_are_configurable(shop):
    # With a frequency bar of 5 nobody is frequent: every 'F high' member moves to its F-low twin.
    result = rfm(shop, config=RfmConfig(observation_end=D(2024, 1, 31), frequency_threshold=5))
    seg = by_member(result)
    assert seg["vip"] == "重要发展客户" and seg["small_old"] == "一般挽留客户"
    assert result.thresholds[1] == 5.0


def test_window_keeps_only_recent_purchases(shop):
    result = rfm(shop, config=RfmConfig(observation_end=D(2024, 1, 31), window_days=30))
    frame = result.to_frame()
    assert "big_gone" not in frame["customer"].to_list()
    assert frame.filter(pl.col("customer") == "vip")["frequency"][0] == 3  # the purchase 30 days ago is out


def test_quintile_scores_give_ties_the_same_score_and_reverse_recency():
    scores = quintile_scores(np.arange(1.0, 11.0))
    assert scores.tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert quintile_scores(np.array([1.0, 1.0, 1.0, 1.0, 9.0])).tolist() == [
        3,
        3,
        3,
        3,
        5,
    ]  # average rank 2.5
    assert quintile_scores(np.arange(1.0, 11.0), higher_is_better=False).tolist() == [
        5,
        5,
        4,
        4,
        3,
        3,
        2,
        2,
        1,
        1,
    ]


def test_score_basis_compares_scores_with_their_average(shop):
    result = rfm(shop, config=RfmConfig(observation_end=D(2024, 1, 31), basis="score"))
    assert by_member(result)["vip"] == "重要价值客户"
    assert by_member(result)["small_gone"] == "一般挽留客户"


def test_bad_config_is_refused():
    with pytest.raises(ValueError):
        RfmConfig(window_days=0)


def test_average_ranks_match_scipy_rankdata_with_ties() -> None:
    from scipy.stats import rankdata

    from memberhub.domain.rfm import average_ranks

    rng = np.random.default_rng(3)
    for values in (rng.integers(0, 7, 500).astype(float), rng.normal(size=300), np.array([2.0]), np.ones(4)):
        assert np.array_equal(average_ranks(values), rankdata(values, method="average"))
