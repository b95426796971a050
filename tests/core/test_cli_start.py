"""Commands that compute no model start without NumPy, SciPy or Polars (seconds of CPU each).

A deterministic check, not a timing: the command runs as a whole process and reports which
of the heavy libraries it had imported when it exited (`bench/cli_start.py` measures the CPU).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("numpy", "polars", "scipy", "pandas")
PROBE = (
    "import atexit, json, sys\n"
    "atexit.register(lambda: sys.__stderr__.write('HEAVY=' + json.dumps("
    f"sorted(m for m in {HEAVY!r} if m in sys.modules)) + '\\n'))\n"
    "from memberhub.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def _heavy_after(tmp_path: Path, *args: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["MEMBERHUB_DATA_DIR"] = str(tmp_path)
    r = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    line = [ln for ln in r.stderr.splitlines() if ln.startswith("HEAVY=")][-1]
    return list(json.loads(line.removeprefix("HEAVY=")))


@pytest.mark.parametrize("args", [("--help",), ("check",), ("analytics", "--help")])
def test_commands_without_models_do_not_import_numpy_scipy_or_polars(tmp_path: Path, args: tuple[str, ...]) -> None:
    assert _heavy_after(tmp_path, *args) == []


def test_the_probe_sees_a_command_that_does_compute(tmp_path: Path) -> None:
    """The check above can fail: a file analytics run does import the libraries."""
    data = tmp_path / "tx.csv"
    data.write_text("customer_id,date,amount\na,2024-01-01,10\na,2024-02-01,12\nb,2024-01-05,8\n")
    assert {"numpy", "polars"} <= set(_heavy_after(tmp_path, "analytics", "rfm", "--from-csv", str(data)))
