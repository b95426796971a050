"""Where the processes of one `memberhub serve` write their metrics (no prometheus import here:
the folder must be named before prometheus_client is first imported)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess_dir(path: Path) -> None:
    """A fresh folder for this run's per-process files (a previous run's counts would add up)."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.environ[MULTIPROC_ENV] = str(path)
