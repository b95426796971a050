"""Degenerate fits are detected, regularised, and never pass for a good fit.

The data that broke the demo: a few purchases per customer spread uniformly over the last
300 days, nobody ever dropping out.  The BG/NBD maximum runs off to infinity along a ridge
(a -> 0 and b -> infinity, or r and alpha -> infinity together); scipy still says converged.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from memberhub.domain.clv import _fitting, bgnbd, gammagamma, paretonbd
from memberhub.domain.clv._fitting import fit_or_regularise
from memberhub.domain.clv.bgnbd import BgNbdParams
from memberhub.domain.clv.gammagamma import GammaGammaParams
from memberhub.domain.clv.simulate import simulate_histories


def uniform_shoppers(n: int = 120, seed: int = 7) -> tuple[np.ndarray, ...]:
    rng = random.Random(seed)
    x, t_x, T, z = [], [], [], []
    for _ in range(n):
        days = sorted({rng.randrange(1, 300) for _ in range(rng.randrange(1, 8))}, reverse=True)
        x.append(len(days) - 1)
        T.append(days[0])
        t_x.append(days[0] - days[-1])
        z.append(rng.choice([6800, 29900, 12900, 59900, 50000, 36700]) if len(days) > 1 else 0)
    return tuple(np.array(v, dtype=float) for v in (x, t_x, T, z))


def test_the_demo_shaped_data_gives_a_degenerate_bgnbd_fit_that_is_flagged() -> None:
    x, t_x, T, _ = uniform_shoppers()
    fit = bgnbd.fit(x, t_x, T)
    assert fit.converged  # what the optimiser says: not to be trusted alone
    assert fit.degenerate and "edge of the parameter space" in fit.degenerate_reason


def test_a_degenerate_fit_is_regularised_into_finite_answers() -> None:
    x, t_x, T, z = uniform_shoppers()
    model = fit_or_regularise(bgnbd.fit, x, t_x, T)
    spend = fit_or_regularise(gammagamma.fit, x, z)
    for fit in (model, spend):
        assert not fit.degenerate and fit.penalty > 0 and fit.regularised_because
        assert all(np.isfinite(v) and v > 0 for v in fit.std_errors.as_dict().values())
    p_alive = model.p_alive(x, t_x, T)
    expected = model.expected_purchases(365.0, x, t_x, T)
    assert np.all(np.isfinite(p_alive)) and np.all(np.isfinite(expected)) and expected.sum() > 0
    assert not np.all(p_alive == 1.0)
    assert np.isfinite(spend.population_mean)


def test_without_regularisation_a_degenerate_fit_stays_flagged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_fitting, "PENALTIES", ())
    x, t_x, T, _ = uniform_shoppers()
    fit = fit_or_regularise(bgnbd.fit, x, t_x, T)
    assert fit.degenerate and fit.penalty == 0


def test_good_fits_are_not_flagged(cdnow_sample: tuple[np.ndarray, ...], cdnow_spend: tuple[np.ndarray, ...]) -> None:
    for fit_fn, data in ((bgnbd.fit, cdnow_sample), (paretonbd.fit, cdnow_sample), (gammagamma.fit, cdnow_spend)):
        fit = fit_or_regularise(fit_fn, *data)
        assert not fit.degenerate and fit.penalty == 0 and not fit.regularised_because, fit.degenerate_reason


def test_simulated_histories_recover_their_parameters() -> None:
    truth, spend_truth = BgNbdParams(0.6, 60.0, 0.8, 4.0), GammaGammaParams(4.0, 5.0, 20000.0)
    rng = np.random.default_rng(4)
    ages = rng.integers(1, 730, 5000).astype(float)
    histories = simulate_histories(truth, spend_truth, ages, rng)
    assert all(h.days[0] == 0 and h.days == sorted(set(h.days)) and h.days[-1] <= a for h, a in zip(histories, ages, strict=True))
    x = np.array([len(h.days) - 1 for h in histories], dtype=float)
    t_x = np.array([h.days[-1] for h in histories], dtype=float)
    zbar = np.array([np.mean(h.amounts[1:]) if len(h.days) > 1 else 0.0 for h in histories])
    fit, spend = bgnbd.fit(x, t_x, ages), gammagamma.fit(x, zbar)
    assert not fit.degenerate and not spend.degenerate
    for got, want, se in ((fit.params, truth, fit.std_errors), (spend.params, spend_truth, spend.std_errors)):
        for k, v in want.as_dict().items():
            assert abs(got.as_dict()[k] - v) <= 3 * se.as_dict()[k], (k, got, want)
    assert spend.population_mean == pytest.approx(20000.0, rel=0.1)
