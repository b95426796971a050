"""Discounted customer lifetime value over a finite horizon.

CLV_i = margin * E[M_i] * sum_k (E[Y_i(t_k)] - E[Y_i(t_{k-1})]) / (1 + d)^(t_k / year)

The horizon is cut into steps (30 days by default); the purchases a model expects in each
step are valued at the Gamma-Gamma expected average spend and discounted from the end of
the step at the annual rate d.  This is the discrete scheme of Fader, Hardie & Lee (2005),
"RFM and CLV: using iso-value curves for customer base analysis" (JMR 42(4)), with the
period length made explicit instead of fixed at one month.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from memberhub.domain.clv._fitting import FloatArray


class PurchaseModel(Protocol):
    def expected_purchases(self, t: float, x: object, t_x: object, T: object) -> FloatArray: ...


def customer_lifetime_value(
    model: PurchaseModel,
    x: FloatArray,
    t_x: FloatArray,
    T: FloatArray,
    average_spend: FloatArray,
    *,
    horizon_days: float,
    annual_discount_rate: float,
    time_unit_days: float = 1.0,
    step_days: float = 30.0,
    margin: float = 1.0,
) -> FloatArray:
    if horizon_days <= 0:
        raise ValueError("horizon_days must be positive")
    if annual_discount_rate <= -1:
        raise ValueError("annual_discount_rate must be greater than -1")
    edges = np.arange(step_days, horizon_days + step_days, step_days, dtype=np.float64)
    edges[-1] = horizon_days  # the last step may be shorter than step_days
    edges = np.unique(edges)
    # Customers with the same (x, t_x, T) expect the same purchases: compute each distinct
    # history once (a third of the customers on CDNOW) and give it back to each customer.
    histories, inverse = np.unique(np.stack([x, t_x, T], axis=1), axis=0, return_inverse=True)
    ux, utx, uT = histories[:, 0], histories[:, 1], histories[:, 2]
    value = np.zeros(len(histories))
    previous = np.zeros(len(histories))
    for edge in edges:
        cumulative = model.expected_purchases(edge / time_unit_days, ux, utx, uT)
        discount = (1.0 + annual_discount_rate) ** (-edge / 365.0)
        value += (cumulative - previous) * discount
        previous = cumulative
    return np.asarray(margin * np.asarray(average_spend) * value[inverse.reshape(-1)], dtype=np.float64)
