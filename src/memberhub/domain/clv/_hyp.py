"""The Gauss hypergeometric function 2F1(1, b; c; z) for 0 <= z < 1, c > b > 0, without NaN.

scipy.special.hyp2f1 is accurate where it answers, but returns NaN once b is in the
hundreds and z is near 1 (a customer with many purchases under the Pareto/NBD).  There we
use the continued fraction of the incomplete beta function (Numerical Recipes 6.4,
modified Lentz): 2F1(a+b', 1; a+1; z) is exactly the quantity it evaluates, with a = c-1 and
b' = b-c+1.  It converges quickly when c-b >= 1, which is the case the Pareto/NBD hands it.
"""

from __future__ import annotations

import numpy as np
from scipy.special import hyp2f1

from memberhub.domain.clv._fitting import FloatArray

_TINY = 1e-300


def hyp2f1_one(b: FloatArray | float, c: FloatArray | float, z: FloatArray | float) -> FloatArray:
    b, c, z = np.broadcast_arrays(np.asarray(b, float), np.asarray(c, float), np.asarray(z, float))
    out = np.asarray(hyp2f1(1.0, b, c, z), dtype=np.float64).copy()
    bad = ~np.isfinite(out)
    if bad.any():
        out[bad] = _continued_fraction(b[bad], c[bad], z[bad])
    return out


def _continued_fraction(b: FloatArray, c: FloatArray, z: FloatArray, max_iter: int = 5000) -> FloatArray:
    a = c - 1.0
    bb = b - c + 1.0
    qab, qap, qam = a + bb, a + 1.0, a - 1.0
    cc = np.ones_like(z)
    d = _guard(1.0 - qab * z / qap)
    d = 1.0 / d
    h = d.copy()
    active = np.ones(z.shape, dtype=bool)
    for m in range(1, max_iter + 1):
        m2 = 2 * m
        for aa in (
            m * (bb - m) * z / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * z / ((a + m2) * (qap + m2)),
        ):
            d = 1.0 / _guard(1.0 + aa * d)
            cc = _guard(1.0 + aa / cc)
            step = d * cc
            h = np.where(active, h * step, h)
        active &= np.abs(step - 1.0) > 1e-15
        if not active.any():
            break
    return h


def _guard(v: FloatArray) -> FloatArray:
    return np.where(np.abs(v) < _TINY, _TINY, v)
