"""Lifecycle stage of each member: 新客, 成长, 成熟, 沉睡, 流失.

The stage is decided from the member's history (age and repeat purchases), recency (days
since the last purchase) and the model's probability of still being active, P(alive).
The rules are applied in this order, first match wins:

1. 新客 (new): first purchase at most `new_max_age_days` ago (default 90).  Too little
   history to judge, whatever the model says.
2. 流失 (churned): P(alive) < `churned_max_p_alive` (default 0.2) or no purchase for
   `churned_min_recency_days` (default 365).
3. 沉睡 (dormant): P(alive) < `dormant_max_p_alive` (default 0.5) or no purchase for
   `dormant_min_recency_days` (default 180).  Still reachable; the target of win-back.
4. 成熟 (mature): active with at least `mature_min_repeat` repeat purchases (default 3).
5. 成长 (growing): active, fewer repeat purchases: the ones to develop.

Recency is used alongside P(alive) because the BG/NBD gives P(alive) = 1 to anyone who has
never bought again, however long ago they joined.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray


class Stage(StrEnum):
    NEW = "新客"
    GROWING = "成长"
    MATURE = "成熟"
    DORMANT = "沉睡"
    CHURNED = "流失"


@dataclass(frozen=True)
class LifecycleConfig:
    new_max_age_days: float = 90.0
    churned_max_p_alive: float = 0.2
    churned_min_recency_days: float = 365.0
    dormant_max_p_alive: float = 0.5
    dormant_min_recency_days: float = 180.0
    mature_min_repeat: int = 3

    def __post_init__(self) -> None:
        if not 0 <= self.churned_max_p_alive <= self.dormant_max_p_alive <= 1:
            raise ValueError("need 0 <= churned_max_p_alive <= dormant_max_p_alive <= 1")
        if self.dormant_min_recency_days > self.churned_min_recency_days:
            raise ValueError("dormant_min_recency_days must not exceed churned_min_recency_days")


def lifecycle_stage(
    *,
    p_alive: NDArray[np.float64],
    recency_days: NDArray[np.float64],
    age_days: NDArray[np.float64],
    repeat_purchases: NDArray[np.float64],
    config: LifecycleConfig | None = None,
) -> NDArray[np.str_]:
    """Vectorised stage assignment; returns an array of the Chinese stage labels."""
    c = config or LifecycleConfig()
    p = np.asarray(p_alive, dtype=np.float64)
    rec = np.asarray(recency_days, dtype=np.float64)
    conditions = [
        np.asarray(age_days) <= c.new_max_age_days,
        (p < c.churned_max_p_alive) | (rec >= c.churned_min_recency_days),
        (p < c.dormant_max_p_alive) | (rec >= c.dormant_min_recency_days),
        np.asarray(repeat_purchases) >= c.mature_min_repeat,
    ]
    choices = [Stage.NEW.value, Stage.CHURNED.value, Stage.DORMANT.value, Stage.MATURE.value]
    return np.select(conditions, choices, default=Stage.GROWING.value)
