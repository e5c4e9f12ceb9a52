"""One BLAS thread per computation: the app serves many sessions from one process.

NumPy's OpenBLAS starts a pool of threads (one per core) and, after each matrix product, keeps them
spinning for a while in case another comes. The app's products are small (a decoder pass over a few
dozen codes) and a class's sessions already run side by side, so the pool only burns a core that other
sessions' runs need: with two threads a slider release cost the server ~40 ms of CPU, a drawing
~230 ms and a page open ~310 ms; with one, ~10, ~110 and ~130 ms (bench.action_cost, docs/hosting.md).
"""

from __future__ import annotations

import functools


@functools.cache
def limit_blas_threads() -> int:
    """Limit every OpenBLAS loaded in this process (NumPy's, SciPy's) to one thread, once; returns how
    many libraries were limited. Torch's own math libraries are left alone (training is not served)."""
    import numpy  # noqa: F401 - load both OpenBLAS libraries now: a library loaded later would not be limited
    import scipy.linalg  # noqa: F401
    from threadpoolctl import ThreadpoolController

    openblas = ThreadpoolController().select(internal_api="openblas")
    openblas.limit(limits=1)  # stays in force: no context manager, nothing restores it
    return len(openblas.lib_controllers)
