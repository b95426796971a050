from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture(scope="session")
def cdnow_sample() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = pl.read_csv(DATA / "cdnow_customers_summary.csv")
    return d["frequency"].to_numpy().astype(float), d["recency"].to_numpy(), d["T"].to_numpy()


@pytest.fixture(scope="session")
def cdnow_spend() -> tuple[np.ndarray, np.ndarray]:
    d = pl.read_csv(DATA / "cdnow_customers_summary_with_transactions.csv")
    return d["x"].to_numpy().astype(float), d["zbar"].to_numpy()
