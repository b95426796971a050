"""Shared machinery of the CLV fitters: collapsing identical rows, the optimiser call, standard errors.

Every model here is fitted the same way: maximise the weighted log-likelihood over the
log of its (positive) parameters with L-BFGS-B.  Working in log-parameters removes the
positivity bounds, and identical customers are collapsed into one weighted row because
real data (integer days, small counts) repeats the same (x, t_x, T) many times over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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


def standard_errors(
    objective: Callable[[FloatArray], float] | Objective,
    log_params: FloatArray,
    total_weight: float,
    *,
    analytic: bool = False,
) -> FloatArray:
    """Asymptotic standard errors of the natural parameters.

    The observed information is the finite-difference Hessian of the total negative
    log-likelihood in log-parameters (central differences of the analytic gradient when
    there is one: 2k evaluations instead of 2k^2 + 1); the delta method maps it back
    (se_theta = theta * se_log).
    """
    k = len(log_params)
    hess = np.empty((k, k))
    if analytic:
        h = 1e-5
        for i in range(k):
            e = np.zeros(k)
            e[i] = h
            hess[i] = (objective(log_params + e)[1] - objective(log_params - e)[1]) / (2 * h)  # type: ignore[index]
        hess = (hess + hess.T) / 2
    else:
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
    try:
        cov = np.linalg.inv(hess * total_weight)
    except np.linalg.LinAlgError:
        return np.full(k, np.nan)
    return np.exp(log_params) * np.sqrt(np.clip(np.diag(cov), 0.0, None))
