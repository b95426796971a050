"""Pareto/NBD: Poisson purchasing with an exponential (unobserved) lifetime.

Schmittlein, D. C., Morrison, D. G. & Colombo, R. (1987), "Counting your customers: who are
they and what will they do next?", *Management Science* 33(1), 1-24; likelihood and
conditional expressions as derived in Fader, P. S. & Hardie, B. G. S. (2005), "A note on
deriving the Pareto/NBD model and related expressions" (the note's eqs. (17)-(22)).

lambda ~ Gamma(r, alpha) is the purchase rate, mu ~ Gamma(s, beta) the death rate.

* Likelihood (note, eq. 19):
  L = G(r+x) alpha^r beta^s / G(r) * { (alpha+T)^-(r+x) (beta+T)^-s + s/(r+s+x) A0 },
  A0 = H(t_x) - H(T).  For alpha >= beta,
  H(t) = 2F1(r+s+x, s+1; r+s+x+1; (alpha-beta)/(alpha+t)) / (alpha+t)^(r+s+x),
  and for alpha < beta the roles swap: 2F1(r+s+x, r+x; r+s+x+1; (beta-alpha)/(beta+t)) / (beta+t)^(r+s+x).
  We Euler-transform 2F1(A, B; A+1; z) = (1-z)^(1-B) 2F1(1, A+1-B; A+1; z) so that the power
  factors come out exactly and the remaining 2F1(1, .; .; z) lies in [1, 1/(1-z)], then work
  in logs throughout (large x and T never overflow).
* P(alive | x, t_x, T) = 1 / (1 + s/(r+s+x) (alpha+T)^(r+x) (beta+T)^s A0)   (note, eq. 20).
* E[Y(t) | x, t_x, T] = (r+x)(beta+T) / ((alpha+T)(s-1)) [1 - ((beta+T)/(beta+T+t))^(s-1)] P(alive)
  (note, eq. 22; the s -> 1 limit is taken as a log).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, gammaln

from memberhub.domain.clv._fitting import FloatArray, as_float_array, assess, collapse, maximise, penalised
from memberhub.domain.clv._hyp import hyp2f1_one
from memberhub.domain.clv.bgnbd import _check


@dataclass(frozen=True)
class ParetoNbdParams:
    r: float
    alpha: float
    s: float
    beta: float

    def as_dict(self) -> dict[str, float]:
        return {"r": self.r, "alpha": self.alpha, "s": self.s, "beta": self.beta}


def _log_h(r: float, alpha: float, s: float, beta: float, x: FloatArray, t: FloatArray) -> FloatArray:
    """log H(t) of the module docstring, after the Euler transformation."""
    if alpha >= beta:
        z = (alpha - beta) / (alpha + t)
        g = hyp2f1_one(r + x, r + s + x + 1, z)
        return np.asarray(-(r + x) * np.log(alpha + t) - s * np.log(beta + t) + np.log(g), dtype=np.float64)
    z = (beta - alpha) / (beta + t)
    g = hyp2f1_one(s + 1, r + s + x + 1, z)
    return np.asarray(
        (1 - r - x) * np.log(alpha + t) - (s + 1) * np.log(beta + t) + np.log(g), dtype=np.float64
    )


def _terms(
    p: ParetoNbdParams, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """log of the 'alive at T' term and of the 'died in (t_x, T]' term inside the braces."""
    r, alpha, s, beta = p.r, p.alpha, p.s, p.beta
    alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    h_tx = _log_h(r, alpha, s, beta, x, t_x)
    h_T = _log_h(r, alpha, s, beta, x, T)
    # H decreases in t, so H(t_x) >= H(T); clip rounding noise when t_x == T.
    with np.errstate(divide="ignore"):
        log_a0 = h_tx + np.log(-np.expm1(np.minimum(h_T - h_tx, 0.0)))
    died = np.log(s) - np.log(r + s + x) + log_a0
    return alive, died


def log_likelihood(params: ParetoNbdParams, x: object, t_x: object, T: object) -> FloatArray:
    xa, txa, Ta = as_float_array(x, "x"), as_float_array(t_x, "t_x"), as_float_array(T, "T")
    r, alpha, s, beta = params.r, params.alpha, params.s, params.beta
    alive, died = _terms(params, xa, txa, Ta)
    head = gammaln(r + xa) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    return np.asarray(head + np.logaddexp(alive, died), dtype=np.float64)


@dataclass(frozen=True)
class ParetoNbdFit:
    params: ParetoNbdParams
    log_likelihood: float
    std_errors: ParetoNbdParams
    n_customers: int
    n_distinct: int
    converged: bool
    iterations: int
    penalty: float = 0.0  # L2 penalty on the log-parameters (0: plain maximum likelihood)
    degenerate_reason: str = ""  # why the fit is unusable; "" when it is usable
    regularised_because: str = ""  # why the plain fit was not used (see _fitting.fit_or_regularise)

    @property
    def degenerate(self) -> bool:
        return bool(self.degenerate_reason)

    def p_alive(self, x: object, t_x: object, T: object) -> FloatArray:
        xa, txa, Ta = as_float_array(x, "x"), as_float_array(t_x, "t_x"), as_float_array(T, "T")
        alive, died = _terms(self.params, xa, txa, Ta)
        return np.asarray(expit(alive - died), dtype=np.float64)

    def expected_purchases(self, t: float, x: object, t_x: object, T: object) -> FloatArray:
        p = self.params
        xa, txa, Ta = as_float_array(x, "x"), as_float_array(t_x, "t_x"), as_float_array(T, "T")
        log_ratio = np.log(p.beta + Ta) - np.log(p.beta + Ta + t)
        # (1 - u^(s-1)) / (s-1) tends to -log u as s -> 1; expm1 keeps precision near there.
        near_one = abs(p.s - 1.0) < 1e-10
        bracket = -log_ratio if near_one else -np.expm1((p.s - 1.0) * log_ratio) / (p.s - 1.0)
        scale = (p.r + xa) * (p.beta + Ta) / (p.alpha + Ta)
        return np.asarray(scale * bracket * self.p_alive(xa, txa, Ta), dtype=np.float64)


def fit(x: object, t_x: object, T: object, *, weights: object | None = None, penalty: float = 0.0) -> ParetoNbdFit:
    """Maximum-likelihood Pareto/NBD fit (L-BFGS-B in log-parameters, central-difference gradient)."""
    xa, txa, Ta = as_float_array(x, "x"), as_float_array(t_x, "t_x"), as_float_array(T, "T")
    _check(xa, txa, Ta)
    w = None if weights is None else as_float_array(weights, "weights")
    data = collapse(xa, txa, Ta, weights=w)
    cx, ctx, cT = data.columns
    W = float(data.weights.sum())

    def objective(log_params: FloatArray) -> float:
        p = ParetoNbdParams(*(float(v) for v in np.exp(log_params)))
        return -float(data.weights @ log_likelihood(p, cx, ctx, cT)) / W

    rate = max(float(np.average(xa, weights=w)) / max(float(np.average(Ta, weights=w)), 1e-9), 1e-6)
    mean_T = max(float(np.average(Ta, weights=w)), 1e-9)
    x0 = np.log(np.array([1.0, 1.0 / rate, 1.0, mean_T]))
    target = penalised(objective, x0, penalty, analytic=False)
    opt = maximise(target, x0, analytic=False)
    check = assess(target, opt.log_params, x0, W, ("r", "alpha", "s", "beta"), analytic=False)
    r, alpha, s, beta = np.exp(opt.log_params)
    return ParetoNbdFit(
        params=ParetoNbdParams(float(r), float(alpha), float(s), float(beta)),
        log_likelihood=-objective(opt.log_params) * W,
        std_errors=ParetoNbdParams(*(float(v) for v in check.std_errors)),
        n_customers=int(round(W)),
        n_distinct=len(data.weights),
        converged=opt.converged,
        iterations=opt.iterations,
        penalty=penalty,
        degenerate_reason=check.degenerate_reason,
    )
