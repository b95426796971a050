"""Shared machinery of the CLV fitters: collapsing identical rows, the optimiser call, standard errors.

Every model here is fitted the same way: maximise the weighted log-likelihood over the
log of its (positive) parameters with L-BFGS-B.  Working in log-parameters removes the
positivity bounds, and identical customers are collapsed into one weighted row because
real data (integer days, small counts) repeats the same (x, t_x, T) many times over.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize

from memberhub.domain.clv._blas import single_blas_thread

FloatArray = NDArray[np.float64]
Objective = Callable[[FloatArray], tuple[float, FloatArray]]


@dataclass(frozen=True)
class Collapsed:
    """Distinct rows of the data and how many customers each one stands for."""

    columns: tuple[FloatArray, ...]
    weights: FloatArray


def as_float_array(values: object, name: str) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def collapse(*columns: FloatArray, weights: FloatArray | None = None) -> Collapsed:
    """Group identical rows, summing their weights (lexsort + run boundaries, O(n log n))."""
    n = len(columns[0])
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    if n == 0:
        return Collapsed(tuple(np.asarray(c, dtype=np.float64) for c in columns), w)
    order = np.lexsort(columns[::-1])
    sorted_cols = [np.asarray(c)[order] for c in columns]
    change = np.zeros(n, dtype=bool)
    change[0] = True
    for c in sorted_cols:
        change[1:] |= c[1:] != c[:-1]
    starts = np.flatnonzero(change)
    summed = np.add.reduceat(w[order], starts)
    return Collapsed(tuple(c[starts].astype(np.float64) for c in sorted_cols), summed)


@dataclass(frozen=True)
class Optimum:
    log_params: FloatArray
    mean_neg_ll: float
    converged: bool
    iterations: int
    message: str


def maximise(
    objective: Objective | Callable[[FloatArray], float], x0: FloatArray, *, analytic: bool
) -> Optimum:
    """Minimise a mean negative log-likelihood over log-parameters.

    The tolerances are far tighter than scipy's defaults: the published CDNOW figures are
    matched to three decimals, and the likelihood surface of these models is flat along
    ridges (a with b, s with beta), so a loose stop lands visibly off the optimum.
    """
    options = {"maxiter": 5000, "maxfun": 50000, "ftol": 1e-15, "gtol": 1e-10, "maxcor": 20}
    # Central differences when there is no analytic gradient: forward ones leave an
    # O(sqrt(eps)) bias that shows on a flat ridge.
    jac: bool | str = True if analytic else "3-point"
    with single_blas_thread():
        res = minimize(objective, x0, jac=jac, method="L-BFGS-B", options=options)
    # L-BFGS-B reports ABNORMAL_TERMINATION when the line search cannot improve any more at
    # these tolerances, i.e. at the optimum to machine precision: that is a success for us.
    ok = bool(res.success) or ("ABNORMAL" in str(res.message) and bool(np.all(np.isfinite(res.x))))
    return Optimum(np.asarray(res.x, dtype=np.float64), float(res.fun), ok, int(res.nit), str(res.message))


# A fit is degenerate when the data cannot pin its parameters down: they run off along a
# ridge of the likelihood (e.g. r and alpha to infinity together when every customer buys at
# the same rate; a to 0 and b to infinity when nobody seems to drop out).  The optimiser then
# stops somewhere on the ridge and says it converged, the observed information is singular,
# and the conditional expectations (hypergeometric functions of huge parameters) are NaN or
# meaningless.  Detected by: a parameter 10^4 times away from its data-scaled start, or the
# Hessian not positive definite, or a parameter undetermined within a factor e^5.
LOG_RANGE_LIMIT = float(np.log(1e4))
LOG_SE_LIMIT = 5.0
PENALTIES = (1e-3, 1e-2, 1e-1)  # tried in turn when a fit is degenerate


@dataclass(frozen=True)
class Assessment:
    std_errors: FloatArray  # of the natural parameters; NaN where undefined
    degenerate_reason: str  # "" when the fit is usable


def penalised(objective: Objective | Callable[[FloatArray], float], centre: FloatArray, penalty: float,
              *, analytic: bool) -> Objective | Callable[[FloatArray], float]:
    """The objective plus penalty * |log_params - centre|^2: an L2 (ridge) penalty on the
    log-parameters, as lifetimes' penalizer_coef, centred on the data-scaled start instead of
    on 1 so that it does not depend on the time or money unit."""
    if penalty <= 0:
        return objective
    if analytic:
        def with_gradient(lp: FloatArray) -> tuple[float, FloatArray]:
            value, grad = objective(lp)  # type: ignore[misc]
            d = lp - centre
            return float(value) + penalty * float(d @ d), grad + 2 * penalty * d

        return with_gradient

    def plain(lp: FloatArray) -> float:
        d = lp - centre
        return float(objective(lp)) + penalty * float(d @ d)  # type: ignore[arg-type]

    return plain


def hessian(
    objective: Callable[[FloatArray], float] | Objective, log_params: FloatArray, *, analytic: bool
) -> FloatArray:
    """Finite-difference Hessian of the mean objective in log-parameters (central differences
    of the analytic gradient when there is one: 2k evaluations instead of 2k^2 + 1)."""
    k = len(log_params)
    hess = np.empty((k, k))
    if analytic:
        h = 1e-5
        for i in range(k):
            e = np.zeros(k)
            e[i] = h
            hess[i] = (objective(log_params + e)[1] - objective(log_params - e)[1]) / (2 * h)  # type: ignore[index]
        return (hess + hess.T) / 2
    h = 1e-4

    def f(theta: FloatArray) -> float:
        return float(objective(theta))  # type: ignore[arg-type]

    f0 = f(log_params)
    for i in range(k):
        ei = np.zeros(k)
        ei[i] = h
        hess[i, i] = (f(log_params + ei) - 2 * f0 + f(log_params - ei)) / h**2
        for j in range(i + 1, k):
            ej = np.zeros(k)
            ej[j] = h
            val = (
                f(log_params + ei + ej)
                - f(log_params + ei - ej)
                - f(log_params - ei + ej)
                + f(log_params - ei - ej)
            ) / (4 * h**2)
            hess[i, j] = hess[j, i] = val
    return hess


def assess(
    objective: Callable[[FloatArray], float] | Objective,
    log_params: FloatArray,
    start: FloatArray,
    total_weight: float,
    names: tuple[str, ...],
    *,
    analytic: bool,
) -> Assessment:
    """Standard errors (observed information, delta method: se_theta = theta * se_log) and
    whether the fit is degenerate, with the reason in words."""
    k = len(log_params)
    if not np.all(np.isfinite(log_params)):
        return Assessment(np.full(k, np.nan), "a parameter is not finite")
    far = np.abs(log_params - start) > LOG_RANGE_LIMIT
    hess = hessian(objective, log_params, analytic=analytic) * total_weight
    reason = ""
    if far.any():
        i = int(np.argmax(np.abs(log_params - start)))
        reason = f"{names[i]} = {np.exp(log_params[i]):.3g} ran off to the edge of the parameter space"
    if not np.all(np.isfinite(hess)):
        return Assessment(np.full(k, np.nan), reason or "the likelihood's curvature is not finite")
    eig = np.linalg.eigvalsh(hess)
    if eig[0] <= 1e-9 * max(1.0, float(np.abs(eig).max())):
        return Assessment(np.full(k, np.nan), reason or "the Hessian is singular or not positive definite")
    log_se = np.sqrt(np.diag(np.linalg.inv(hess)))
    se = np.exp(log_params) * log_se
    if not reason and np.any(log_se > LOG_SE_LIMIT):
        i = int(np.argmax(log_se))
        reason = f"{names[i]} is not identified by the data (standard error of its log {log_se[i]:.3g})"
    return Assessment(se, reason)


def standard_errors(
    objective: Callable[[FloatArray], float] | Objective,
    log_params: FloatArray,
    total_weight: float,
    *,
    analytic: bool = False,
) -> FloatArray:
    """Asymptotic standard errors of the natural parameters (NaN when the information is singular)."""
    k = len(log_params)
    try:
        cov = np.linalg.inv(hessian(objective, log_params, analytic=analytic) * total_weight)
    except np.linalg.LinAlgError:
        return np.full(k, np.nan)
    return np.exp(log_params) * np.sqrt(np.clip(np.diag(cov), 0.0, None))


F = TypeVar("F")


def fit_or_regularise(fit: Callable[..., F], *args: object, **kwargs: object) -> F:
    """Fit; when the fit is degenerate, fit again with a growing L2 penalty on the
    log-parameters (PENALTIES) until it is not.  The answer's `degenerate_reason` is ""
    only if a usable fit was found; its `penalty` says whether it was regularised, and its
    `regularised_because` why."""
    first = fit(*args, **kwargs)
    if not first.degenerate:  # type: ignore[attr-defined]
        return first
    last = first
    for penalty in PENALTIES:
        last = fit(*args, penalty=penalty, **kwargs)
        if not last.degenerate:  # type: ignore[attr-defined]
            break
    return dataclasses.replace(last, regularised_because=first.degenerate_reason)  # type: ignore[type-var,attr-defined]


def fit_status(fit: Any) -> dict[str, Any]:
    """How a fit was obtained: "ok" (plain maximum likelihood) or "regularised" (the plain fit
    was degenerate; an L2 penalty on the log-parameters pulled it back), and why."""
    if not fit.penalty:
        return {"status": "ok"}
    return {"status": "regularised", "penalty": fit.penalty, "degenerate_reason": fit.regularised_because}


def fit_warning(name: str, fit: Any) -> str:
    if not fit.penalty:
        return ""
    return (f"{name}: the maximum-likelihood fit was degenerate ({fit.regularised_because}); "
            f"regularised with an L2 penalty of {fit.penalty:g} on the log-parameters")
