"""Simulate customer histories from known parameters (for parameter-recovery tests and benchmarks).

Each generator draws the latent traits of every customer and then the summary statistics
directly, fully vectorised:

* BG/NBD: lambda ~ Gamma(r, 1/alpha), p ~ Beta(a, b).  The customer dies right after their
  J-th repeat purchase, J ~ Geometric(p).  N(T) ~ Poisson(lambda T) purchases would happen in
  (0, T] if alive throughout, so x = min(N, J), and given N the purchase times are uniform
  order statistics on (0, T]: t_x = T * Beta(x, N - x + 1).
* Pareto/NBD: lambda ~ Gamma(r, 1/alpha), mu ~ Gamma(s, 1/beta), lifetime tau ~ Exp(mu);
  x ~ Poisson(lambda min(tau, T)), t_x = min(tau, T) * Beta(x, 1) (the largest of x uniforms).
* Gamma-Gamma: nu ~ Gamma(q, 1/gamma); the mean of x spends, each Gamma(p, 1/nu), is
  Gamma(p x, 1/(x nu)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memberhub.domain.clv._fitting import FloatArray
from memberhub.domain.clv.bgnbd import BgNbdParams
from memberhub.domain.clv.gammagamma import GammaGammaParams
from memberhub.domain.clv.paretonbd import ParetoNbdParams


@dataclass(frozen=True)
class SimulatedCustomers:
    x: FloatArray
    t_x: FloatArray
    T: FloatArray


def _order_statistic(rng: np.random.Generator, k: FloatArray, n: FloatArray) -> FloatArray:
    """k-th smallest of n uniforms on (0, 1); 0 where k = 0."""
    safe_k = np.maximum(k, 1)
    draw = rng.beta(safe_k, np.maximum(n - safe_k + 1, 1))
    return np.where(k > 0, draw, 0.0)


def simulate_bgnbd(params: BgNbdParams, T: FloatArray, rng: np.random.Generator) -> SimulatedCustomers:
    T = np.asarray(T, dtype=np.float64)
    n = len(T)
    lam = rng.gamma(params.r, 1.0 / params.alpha, n)
    p = rng.beta(params.a, params.b, n)
    j = rng.geometric(np.clip(p, 1e-300, 1.0))  # repeat purchase after which the customer dies
    would_buy = rng.poisson(lam * T)
    x = np.minimum(would_buy, j).astype(np.float64)
    t_x = T * _order_statistic(rng, x, would_buy.astype(np.float64))
    return SimulatedCustomers(x, t_x, T)


def simulate_paretonbd(
    params: ParetoNbdParams, T: FloatArray, rng: np.random.Generator
) -> SimulatedCustomers:
    T = np.asarray(T, dtype=np.float64)
    n = len(T)
    lam = rng.gamma(params.r, 1.0 / params.alpha, n)
    mu = rng.gamma(params.s, 1.0 / params.beta, n)
    lifetime = rng.exponential(1.0 / mu)
    window = np.minimum(lifetime, T)
    x = rng.poisson(lam * window).astype(np.float64)
    t_x = window * _order_statistic(rng, x, x)
    return SimulatedCustomers(x, t_x, T)


def simulate_spend(params: GammaGammaParams, x: FloatArray, rng: np.random.Generator) -> FloatArray:
    """Mean repeat-purchase value for each customer (0 where x = 0)."""
    x = np.asarray(x, dtype=np.float64)
    nu = rng.gamma(params.q, 1.0 / params.gamma, len(x))
    safe_x = np.maximum(x, 1.0)
    zbar = rng.gamma(params.p * safe_x, 1.0 / (safe_x * nu))
    return np.where(x > 0, zbar, 0.0)


@dataclass(frozen=True)
class History:
    """One customer's purchases: whole days after the first purchase (0 first), and values."""

    days: list[int]
    amounts: list[float]


def simulate_histories(
    purchases: BgNbdParams, spend: GammaGammaParams, ages_days: FloatArray, rng: np.random.Generator
) -> list[History]:
    """Purchase-by-purchase histories from the BG/NBD and Gamma-Gamma processes (days as the
    time unit), for demo data that the models can be fitted to and recover.

    Each customer buys at day 0, then at exponential gaps with rate lambda ~ Gamma(r, 1/alpha)
    while alive, dropping out after each repeat purchase with probability p ~ Beta(a, b); each
    purchase is worth Gamma(p, 1/nu), nu ~ Gamma(q, 1/gamma).  Observation ends `ages_days`
    after the first purchase.  A purchase on the same day as the one before is skipped
    (the models count purchase days), which biases the rate down by a negligible amount at
    rates of a few purchases a month.
    """
    ages = np.asarray(ages_days, dtype=np.float64)
    n = len(ages)
    lam = rng.gamma(purchases.r, 1.0 / purchases.alpha, n)
    drop = rng.beta(purchases.a, purchases.b, n)
    nu = rng.gamma(spend.q, 1.0 / spend.gamma, n)
    out = []
    for i in range(n):
        days, t = [0], 0.0
        while True:
            t += rng.exponential(1.0 / lam[i])
            if t > ages[i]:
                break
            day = int(t)
            if day > days[-1]:
                days.append(day)
                if rng.random() < drop[i]:
                    break
        amounts = rng.gamma(spend.p, 1.0 / nu[i], len(days))
        out.append(History(days, [float(v) for v in amounts]))
    return out
