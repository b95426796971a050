"""BG/NBD: the beta-geometric / negative binomial distribution model of repeat buying.

Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005), "'Counting your customers' the easy way:
an alternative to the Pareto/NBD model", *Marketing Science* 24(2), 275-284.

Per customer: x repeat purchases, the last at t_x, observed for T (all in one time unit).
While active a customer buys as a Poisson process with rate lambda ~ Gamma(r, alpha); after
each repeat purchase they drop out with probability p ~ Beta(a, b).

* Likelihood, eq. (6):
  L = B(a, b+x)/B(a, b) * G(r+x) a^r / (G(r) (a+T)^(r+x))
      + [x > 0] B(a+1, b+x-1)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+t_x)^(r+x)),
  evaluated as log-sum-exp of the two terms so that x in the hundreds and T in the
  thousands never overflow.
* P(alive | x, t_x, T), eq. (A10 / footnote of eq. 10):
  1 / (1 + [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)).
* Expected purchases in (T, T+t], eq. (10), with the Gauss hypergeometric function
  2F1(r+x, b+x; a+b+x-1; z), z = t/(alpha+T+t).  Its first two parameters grow with x and it
  overflows for large x, so it is Euler-transformed,
  2F1(A, B; C; z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z),
  which turns ((alpha+T)/(alpha+T+t))^(r+x) 2F1(...) into (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z),
  a bounded quantity.
* Expected purchases of a new customer in (0, t], eq. (9), is given for completeness.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

from memberhub.domain.clv._fitting import FloatArray, as_float_array, assess, collapse, maximise, penalised


@dataclass(frozen=True)
class BgNbdParams:
    r: float
    alpha: float
    a: float
    b: float

    def as_dict(self) -> dict[str, float]:
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}


def log_likelihood(params: BgNbdParams, x: object, t_x: object, T: object) -> FloatArray:
    """Per-customer log-likelihood, eq. (6)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    xa, txa, Ta = (as_float_array(v, n) for v, n in ((x, "x"), (t_x, "t_x"), (T, "T")))
    xs = np.maximum(xa, 1.0)  # b + x - 1 must stay positive where the second term is masked out
    head = gammaln(r + xa) - gammaln(r) + r * np.log(alpha) - betaln(a, b)
    term1 = betaln(a, b + xa) - (r + xa) * np.log(alpha + Ta)
    term2 = np.where(xa > 0, betaln(a + 1, b + xs - 1) - (r + xa) * np.log(alpha + txa), -np.inf)
    return np.asarray(head + np.logaddexp(term1, term2), dtype=np.float64)


class _Objective:
    """Weighted mean negative log-likelihood and its analytic gradient in log-parameters.

    Everything that depends on x alone, or on a time alone, is computed once per distinct
    value and gathered, so each evaluation costs a few special-function calls on small
    arrays plus a handful of passes over the (collapsed) rows.
    """

    def __init__(self, x: FloatArray, t_x: FloatArray, T: FloatArray, w: FloatArray) -> None:
        self.xu, self.xi = np.unique(x, return_inverse=True)
        self.tu, ti = np.unique(np.concatenate([T, t_x]), return_inverse=True)
        self.Ti, self.txi = ti[: len(T)], ti[len(T) :]
        self.x = x
        self.has_repeat = x > 0
        self.w = w
        self.W = float(w.sum())

    def __call__(self, log_params: FloatArray) -> tuple[float, FloatArray]:
        r, alpha, a, b = np.exp(log_params)
        xu, x, xi = self.xu, self.x, self.xi
        xs = np.maximum(xu, 1.0)
        rx = r + x
        log_t = np.log(alpha + self.tu)
        inv_t = 1.0 / (alpha + self.tu)
        l1x = betaln(a, b + xu)
        l2x = np.where(xu > 0, betaln(a + 1, b + xs - 1), -np.inf)
        l1 = l1x[xi] - rx * log_t[self.Ti]
        l2 = l2x[xi] - rx * log_t[self.txi]
        lse = np.logaddexp(l1, l2)
        head_x = gammaln(r + xu) - gammaln(r)
        const = r * np.log(alpha) - betaln(a, b)
        ll = float(self.w @ (head_x[xi] + lse)) + const * self.W
        w2 = np.exp(l2 - lse)  # share of the "dropped out after t_x" term
        w1 = 1.0 - w2
        ww1, ww2 = self.w * w1, self.w * w2
        # d/dtheta of each piece (Fader-Hardie eq. 6 differentiated term by term).
        psi_ab = digamma(a + b)
        psi_abx = digamma(a + b + xu)
        d1a = psi_ab - psi_abx  # d/da [betaln(a, b+x) - betaln(a, b)]
        d2a = digamma(a + 1) - digamma(a) + psi_ab - psi_abx
        d1b = digamma(b + xu) - psi_abx - digamma(b) + psi_ab
        d2b = np.where(xu > 0, digamma(b + xs - 1) - psi_abx - digamma(b) + psi_ab, 0.0)
        g_r = float(self.w @ (digamma(r + xu) - digamma(r))[xi]) + self.W * np.log(alpha)
        g_r -= float(ww1 @ log_t[self.Ti] + ww2 @ log_t[self.txi])
        g_alpha = self.W * r / alpha - float((ww1 * rx) @ inv_t[self.Ti] + (ww2 * rx) @ inv_t[self.txi])
        g_a = float(ww1 @ d1a[xi] + ww2 @ d2a[xi])
        g_b = float(ww1 @ d1b[xi] + ww2 @ d2b[xi])
        grad = np.array([g_r * r, g_alpha * alpha, g_a * a, g_b * b])
        return -ll / self.W, -grad / self.W

    def value(self, log_params: FloatArray) -> float:
        return self(log_params)[0]


@dataclass(frozen=True)
class BgNbdFit:
    """A fitted BG/NBD model; times are in the unit of the data it was fitted on."""

    params: BgNbdParams
    log_likelihood: float
    std_errors: BgNbdParams
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
        p = self.params
        xa, txa, Ta = as_float_array(x, "x"), as_float_array(t_x, "t_x"), as_float_array(T, "T")
        xs = np.maximum(xa, 1.0)
        log_odds_dead = (
            np.log(p.a) - np.log(p.b + xs - 1) + (p.r + xa) * (np.log(p.alpha + Ta) - np.log(p.alpha + txa))
        )
        return np.where(xa > 0, expit(-log_odds_dead), 1.0)

    def expected_purchases(self, t: float, x: object, t_x: object, T: object) -> FloatArray:
        """E[purchases in (T, T+t] | x, t_x, T], eq. (10), Euler-transformed for large x."""
        p = self.params
        r, alpha, a, b = p.r, p.alpha, p.a, p.b
        xa, txa, Ta = as_float_array(x, "x"), as_float_array(t_x, "t_x"), as_float_array(T, "T")
        z = t / (alpha + Ta + t)
        hyp = hyp2f1(a + b - 1 - r, a - 1, a + b + xa - 1, z)
        # 1 - (1-z)^(a-1) * 2F1: written with expm1 so small t keeps its precision.
        bracket = -np.expm1((a - 1) * np.log1p(-z)) - np.exp((a - 1) * np.log1p(-z)) * (hyp - 1.0)
        return np.asarray((a + b + xa - 1) / (a - 1) * bracket * self.p_alive(xa, txa, Ta), dtype=np.float64)

    def expected_purchases_new(self, t: float) -> float:
        """E[X(t)] for a customer just acquired, eq. (9)."""
        r, alpha, a, b = self.params.r, self.params.alpha, self.params.a, self.params.b
        z = t / (alpha + t)
        hyp = hyp2f1(r, b, a + b - 1, z)
        return float((a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp))


def fit(x: object, t_x: object, T: object, *, weights: object | None = None, penalty: float = 0.0) -> BgNbdFit:
    """Maximum-likelihood BG/NBD fit (L-BFGS-B in log-parameters, analytic gradient); with
    `penalty`, penalised by penalty * |log params - log start|^2 (see _fitting.penalised)."""
    xa, txa, Ta = as_float_array(x, "x"), as_float_array(t_x, "t_x"), as_float_array(T, "T")
    _check(xa, txa, Ta)
    w = None if weights is None else as_float_array(weights, "weights")
    data = collapse(xa, txa, Ta, weights=w)
    cx, ctx, cT = data.columns
    obj = _Objective(cx, ctx, cT, data.weights)
    # Start with r = 1 and alpha matched to the mean purchase rate, so the start is sensible
    # whatever the time unit (days or weeks) of the data.
    rate = max(float(np.average(xa, weights=w)) / max(float(np.average(Ta, weights=w)), 1e-9), 1e-6)
    x0 = np.log(np.array([1.0, 1.0 / rate, 1.0, 1.0]))
    target = penalised(obj, x0, penalty, analytic=True)
    opt = maximise(target, x0, analytic=True)
    check = assess(target, opt.log_params, x0, obj.W, ("r", "alpha", "a", "b"), analytic=True)
    r, alpha, a, b = np.exp(opt.log_params)
    return BgNbdFit(
        params=BgNbdParams(float(r), float(alpha), float(a), float(b)),
        log_likelihood=-obj.value(opt.log_params) * obj.W,
        std_errors=BgNbdParams(*(float(v) for v in check.std_errors)),
        n_customers=int(round(obj.W)),
        n_distinct=len(data.weights),
        converged=opt.converged,
        iterations=opt.iterations,
        penalty=penalty,
        degenerate_reason=check.degenerate_reason,
    )


def _check(x: FloatArray, t_x: FloatArray, T: FloatArray) -> None:
    if not (len(x) == len(t_x) == len(T)):
        raise ValueError("x, t_x and T must have the same length")
    if len(x) == 0:
        raise ValueError("no customers to fit")
    if np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > T + 1e-9):
        raise ValueError("need x >= 0 and 0 <= t_x <= T for every customer")
    if np.any((x == 0) & (t_x > 0)):
        raise ValueError("t_x must be 0 when x is 0")
