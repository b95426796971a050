from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import check_grad
from scipy.special import gammaln

from memberhub.domain.clv import bgnbd
from memberhub.domain.clv._fitting import collapse
from memberhub.domain.clv.simulate import simulate_bgnbd


@pytest.fixture(scope="module")
def cdnow_fit(cdnow_sample):
    return bgnbd.fit(*cdnow_sample)


def test_it_matches_the_published_cdnow_parameters(cdnow_fit):
    p = cdnow_fit.params
    assert cdnow_fit.converged
    assert (round(p.r, 3), round(p.alpha, 3), round(p.a, 3), round(p.b, 3)) == (0.243, 4.414, 0.793, 2.426)
    assert cdnow_fit.n_customers == 2357
    assert cdnow_fit.n_distinct < 2357  # identical (x, t_x, T) rows were collapsed


def test_it_matches_the_published_conditional_expectation(cdnow_fit):
    assert round(float(cdnow_fit.expected_purchases(39, [2], [30.43], [38.86])[0]), 3) == 1.226


def test_fit_log_likelihood_equals_the_per_customer_sum(cdnow_fit, cdnow_sample):
    assert cdnow_fit.log_likelihood == pytest.approx(
        bgnbd.log_likelihood(cdnow_fit.params, *cdnow_sample).sum(), rel=1e-12
    )


def test_likelihood_matches_a_direct_evaluation_of_eq_6():
    p = bgnbd.BgNbdParams(0.5, 3.0, 0.9, 2.0)
    x, t_x, T = 3, 20.0, 35.0
    beta = lambda u, v: np.exp(gammaln(u) + gammaln(v) - gammaln(u + v))  # noqa: E731
    common = np.exp(gammaln(p.r + x) - gammaln(p.r)) * p.alpha**p.r
    direct = beta(p.a, p.b + x) / beta(p.a, p.b) * common / (p.alpha + T) ** (p.r + x) + beta(
        p.a + 1, p.b + x - 1
    ) / beta(p.a, p.b) * common / (p.alpha + t_x) ** (p.r + x)
    assert bgnbd.log_likelihood(p, [x], [t_x], [T])[0] == pytest.approx(np.log(direct), rel=1e-12)


def test_analytic_gradient_agrees_with_finite_differences(cdnow_sample):
    data = collapse(*cdnow_sample)
    obj = bgnbd._Objective(*data.columns, data.weights)
    for point in (np.log([0.24, 4.4, 0.79, 2.4]), np.log([1.5, 0.3, 3.0, 0.2])):
        assert check_grad(obj.value, lambda q: obj(q)[1], point) < 1e-6


def test_weights_are_equivalent_to_repeated_rows(cdnow_sample):
    x, t_x, T = (a[:300] for a in cdnow_sample)
    weights = np.arange(300) % 3 + 1
    weighted = bgnbd.fit(x, t_x, T, weights=weights)
    repeated = bgnbd.fit(np.repeat(x, weights), np.repeat(t_x, weights), np.repeat(T, weights))
    assert weighted.params.r == pytest.approx(repeated.params.r, rel=1e-5)
    assert weighted.log_likelihood == pytest.approx(repeated.log_likelihood, rel=1e-9)


def test_it_recovers_simulated_parameters_within_sampling_error():
    truth = bgnbd.BgNbdParams(r=0.25, alpha=4.0, a=0.8, b=2.5)
    rng = np.random.default_rng(0)
    sim = simulate_bgnbd(truth, rng.uniform(30, 60, 20_000), rng)
    fit = bgnbd.fit(sim.x, sim.t_x, sim.T)
    for name in ("r", "alpha", "a", "b"):
        z = (getattr(fit.params, name) - getattr(truth, name)) / getattr(fit.std_errors, name)
        assert abs(z) < 4, (name, z)


def test_it_stays_finite_for_heavy_buyers_and_long_histories(cdnow_fit):
    x = np.array([500.0, 500.0, 0.0, 1.0])
    t_x = np.array([9999.0, 10.0, 0.0, 5.0])
    T = np.array([10000.0, 10000.0, 10000.0, 10000.0])
    ll = bgnbd.log_likelihood(cdnow_fit.params, x, t_x, T)
    e = cdnow_fit.expected_purchases(39, x, t_x, T)
    pa = cdnow_fit.p_alive(x, t_x, T)
    assert np.all(np.isfinite(ll)) and np.all(np.isfinite(e)) and np.all(np.isfinite(pa))
    assert pa[0] > 0.99 and pa[1] < 1e-6  # bought until yesterday vs. silent for 27 years
    assert e[0] > e[1] >= 0


def test_eq_9_equals_eq_10_for_a_customer_with_no_history(cdnow_fit):
    # A customer acquired just now (x = 0, T = 0) expects exactly the eq. (9) number.
    got = cdnow_fit.expected_purchases_new(39.0)
    assert got == pytest.approx(float(cdnow_fit.expected_purchases(39.0, [0], [0], [0])[0]), rel=1e-9)


def test_fit_fails_on_inconsistent_input():
    with pytest.raises(ValueError, match="t_x <= T"):
        bgnbd.fit([1, 2], [5.0, 9.0], [4.0, 10.0])
    with pytest.raises(ValueError, match="NaN"):
        bgnbd.fit([1.0, np.nan], [1.0, 1.0], [2.0, 2.0])
