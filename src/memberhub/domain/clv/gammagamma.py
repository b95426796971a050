"""Gamma-Gamma model of monetary value.

Fader, P. S. & Hardie, B. G. S. (2013), "The Gamma-Gamma model of monetary value"
(after Colombo & Jiang 1999).  Each transaction value z ~ Gamma(p, nu); across customers
nu ~ Gamma(q, gamma).  Only customers with at least one repeat purchase (x > 0) carry
information; zbar is the mean value of their x repeat transactions.

* Likelihood of (x, zbar), the note's eq. (5), in logs:
  log L = lnG(px+q) - lnG(px) - lnG(q) + q ln(gamma) + (px-1) ln(x zbar) + ln x - (px+q) ln(gamma + x zbar).
* Expected average transaction value, eq. (6):
  E[M | x, zbar] = (gamma + x zbar) p / (px + q - 1)
               = (q-1)/(px+q-1) * gamma p/(q-1) + px/(px+q-1) * zbar,
  a weighted mean of the population mean and the customer's own mean (needs q > 1).
* The model assumes spend is independent of purchase frequency; check the correlation of
  x and zbar before trusting it (near zero on CDNOW).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import digamma, gammaln

from memberhub.domain.clv._fitting import FloatArray, as_float_array, assess, collapse, maximise, penalised


@dataclass(frozen=True)
class GammaGammaParams:
    p: float
    q: float
    gamma: float

    def as_dict(self) -> dict[str, float]:
        return {"p": self.p, "q": self.q, "gamma": self.gamma}


def log_likelihood(params: GammaGammaParams, x: object, zbar: object) -> FloatArray:
    p, q, g = params.p, params.q, params.gamma
    xa, za = as_float_array(x, "x"), as_float_array(zbar, "zbar")
    px = p * xa
    out = (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(g)
        + (px - 1) * np.log(xa * za)
        + np.log(xa)
        - (px + q) * np.log(g + xa * za)
    )
    return np.asarray(out, dtype=np.float64)


class _Objective:
    def __init__(self, x: FloatArray, zbar: FloatArray, w: FloatArray) -> None:
        self.x, self.w, self.W = x, w, float(w.sum())
        self.total = x * zbar
        self.log_total = np.log(self.total)
        self.log_x = np.log(x)

    def __call__(self, log_params: FloatArray) -> tuple[float, FloatArray]:
        p, q, g = np.exp(log_params)
        x, w = self.x, self.w
        px = p * x
        log_gt = np.log(g + self.total)
        ll = (
            gammaln(px + q)
            - gammaln(px)
            - gammaln(q)
            + q * np.log(g)
            + (px - 1) * self.log_total
            + self.log_x
            - (px + q) * log_gt
        )
        psi = digamma(px + q)
        g_p = w @ (x * (psi - digamma(px) + self.log_total - log_gt))
        g_q = w @ (psi - digamma(q) + np.log(g) - log_gt)
        g_g = w @ (q / g - (px + q) / (g + self.total))
        grad = np.array([g_p * p, g_q * q, g_g * g])
        return -float(w @ ll) / self.W, -grad / self.W

    def value(self, log_params: FloatArray) -> float:
        return self(log_params)[0]


@dataclass(frozen=True)
class GammaGammaFit:
    params: GammaGammaParams
    log_likelihood: float
    std_errors: GammaGammaParams
    n_customers: int
    converged: bool
    iterations: int
    penalty: float = 0.0  # L2 penalty on the log-parameters (0: plain maximum likelihood)
    degenerate_reason: str = ""  # why the fit is unusable; "" when it is usable
    regularised_because: str = ""  # why the plain fit was not used (see _fitting.fit_or_regularise)

    @property
    def degenerate(self) -> bool:
        return bool(self.degenerate_reason)

    @property
    def population_mean(self) -> float:
        """Mean spend of a customer we know nothing about (gamma p / (q-1)); inf if q <= 1."""
        p = self.params
        return p.gamma * p.p / (p.q - 1) if p.q > 1 else float("inf")

    def expected_average_spend(self, x: object, zbar: object) -> FloatArray:
        """E[M | x, zbar]; customers with x = 0 get the population mean."""
        p = self.params
        xa, za = as_float_array(x, "x"), as_float_array(zbar, "zbar")
        za = np.where(xa > 0, za, 0.0)
        return np.asarray((p.gamma + xa * za) * p.p / (p.p * xa + p.q - 1), dtype=np.float64)


def fit(x: object, zbar: object, *, weights: object | None = None, penalty: float = 0.0) -> GammaGammaFit:
    """Fit on customers with x > 0 and zbar > 0 (others carry no spend information and are skipped)."""
    xa, za = as_float_array(x, "x"), as_float_array(zbar, "zbar")
    if len(xa) != len(za):
        raise ValueError("x and zbar must have the same length")
    w = np.ones(len(xa)) if weights is None else as_float_array(weights, "weights")
    keep = (xa > 0) & (za > 0)
    if not keep.any():
        raise ValueError("Gamma-Gamma needs customers with at least one repeat purchase of positive value")
    data = collapse(xa[keep], za[keep], weights=w[keep])
    cx, cz = data.columns
    obj = _Objective(cx, cz, data.weights)
    # Moment-style start: p = 1, q = 2 puts the population mean spend at gamma.
    mean_spend = float(np.average(za[keep], weights=w[keep]))
    x0 = np.log(np.array([1.0, 2.0, mean_spend]))
    target = penalised(obj, x0, penalty, analytic=True)
    opt = maximise(target, x0, analytic=True)
    check = assess(target, opt.log_params, x0, obj.W, ("p", "q", "gamma"), analytic=True)
    p, q, g = np.exp(opt.log_params)
    return GammaGammaFit(
        params=GammaGammaParams(float(p), float(q), float(g)),
        log_likelihood=-obj.value(opt.log_params) * obj.W,
        std_errors=GammaGammaParams(*(float(v) for v in check.std_errors)),
        n_customers=int(round(obj.W)),
        converged=opt.converged,
        iterations=opt.iterations,
        penalty=penalty,
        degenerate_reason=check.degenerate_reason,
    )
