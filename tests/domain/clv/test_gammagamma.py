from __future__ import annotations

import numpy as np
import pytest

from memberhub.domain.clv import gammagamma
from memberhub.domain.clv.simulate import simulate_spend


@pytest.fixture(scope="module")
def cdnow_fit(cdnow_spend):
    return gammagamma.fit(*cdnow_spend)


def test_it_matches_the_published_cdnow_parameters(cdnow_fit):
    # Published to two decimals (p = 6.25, q = 3.74, gamma = 15.44): within one unit of the last digit.
    p = cdnow_fit.params
    assert cdnow_fit.converged and cdnow_fit.n_customers == 946
    assert p.p == pytest.approx(6.25, abs=0.01)
    assert p.q == pytest.approx(3.74, abs=0.01)
    assert p.gamma == pytest.approx(15.44, abs=0.01)


def test_expected_spend_shrinks_towards_the_population_mean(cdnow_fit):
    spend = cdnow_fit.expected_average_spend([0, 1, 1, 200], [0.0, 100.0, 5.0, 100.0])
    assert spend[0] == pytest.approx(cdnow_fit.population_mean)
    assert spend[2] < cdnow_fit.population_mean < spend[1] < 100.0
    assert spend[3] == pytest.approx(100.0, rel=0.01)  # many purchases: the customer's own mean


def test_customers_without_repeat_purchases_are_ignored_in_the_fit(cdnow_spend):
    x, zbar = cdnow_spend
    with_zeros = gammagamma.fit(x, zbar)
    only_repeaters = gammagamma.fit(x[x > 0], zbar[x > 0])
    assert with_zeros.params == only_repeaters.params


def test_it_recovers_simulated_parameters_within_sampling_error():
    truth = gammagamma.GammaGammaParams(p=6.0, q=3.8, gamma=15.0)
    rng = np.random.default_rng(5)
    x = rng.integers(1, 20, 20_000).astype(float)
    fit = gammagamma.fit(x, simulate_spend(truth, x, rng))
    for name in ("p", "q", "gamma"):
        z = (getattr(fit.params, name) - getattr(truth, name)) / getattr(fit.std_errors, name)
        assert abs(z) < 4, (name, z)


def test_it_stays_finite_with_hundreds_of_purchases(cdnow_fit):
    ll = gammagamma.log_likelihood(cdnow_fit.params, [500.0, 5000.0], [35.0, 1e4])
    assert np.all(np.isfinite(ll))


def test_it_refuses_data_without_repeat_purchases():
    with pytest.raises(ValueError, match="repeat purchase"):
        gammagamma.fit([0, 0], [0.0, 0.0])
