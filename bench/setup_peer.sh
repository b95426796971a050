#!/usr/bin/env bash
# Create the separate virtualenv holding the peer (`lifetimes` 0.11.3) for bench/clv_cdnow.py.
# lifetimes 0.11.3 (2020) predates NumPy 2 and pandas 2, so it needs older pins that still
# ship wheels for Python 3.11. It never goes into the project's own venv.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
VENV="${PEER_VENV:-$HERE/../.venv-bench}"
PY="${PYTHON:-python3}"
"$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q \
    "numpy==1.26.4" "scipy==1.11.4" "pandas==1.5.3" "autograd==1.6.2" "dill==0.3.8" \
    "polars>=1.0" "lifetimes==0.11.3"
# Our side is imported from the source tree by the bench script, so no install of memberhub here.
"$VENV/bin/python" -c "import lifetimes, numpy, scipy, pandas; print('peer venv ok: lifetimes', lifetimes.__version__, 'numpy', numpy.__version__, 'scipy', scipy.__version__, 'pandas', pandas.__version__)"
