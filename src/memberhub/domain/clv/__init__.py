"""Customer lifetime value models: BG/NBD, Pareto/NBD, Gamma-Gamma, discounted CLV, lifecycle stages.

Pure NumPy/SciPy (Polars for the transaction summary); no database, no Django.
"""

from memberhub.domain.clv.bgnbd import BgNbdFit, BgNbdParams
from memberhub.domain.clv.clv import customer_lifetime_value
from memberhub.domain.clv.gammagamma import GammaGammaFit, GammaGammaParams
from memberhub.domain.clv.lifecycle import LifecycleConfig, Stage, lifecycle_stage
from memberhub.domain.clv.paretonbd import ParetoNbdFit, ParetoNbdParams
from memberhub.domain.clv.summary import CustomerSummary, summarise

__all__ = [
    "BgNbdFit",
    "BgNbdParams",
    "CustomerSummary",
    "GammaGammaFit",
    "GammaGammaParams",
    "LifecycleConfig",
    "ParetoNbdFit",
    "ParetoNbdParams",
    "Stage",
    "customer_lifetime_value",
    "lifecycle_stage",
    "summarise",
]
