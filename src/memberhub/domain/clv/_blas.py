"""Run a block with the BLAS thread pool limited to one thread.

scipy's L-BFGS-B calls BLAS on vectors of 4 parameters; with a multi-threaded OpenBLAS each
call wakes the thread pool, and on CDNOW that made the optimiser spend ~0.1 s in overhead
for a 10 ms fit. threadpoolctl finds whichever BLAS numpy and scipy loaded and restores the
previous limits on exit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from threadpoolctl import threadpool_limits


@contextlib.contextmanager
def single_blas_thread() -> Iterator[None]:
    with threadpool_limits(limits=1, user_api="blas"):
        yield
