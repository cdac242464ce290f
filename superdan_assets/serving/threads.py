"""One thread per serving worker for every numeric library, set before numpy is imported.

Why: each worker process already owns a core; an OpenMP or BLAS pool per worker on top makes
the workers fight over the same cores, and on these machines multi-threaded LightGBM ran up to
hundreds of times slower (GUIDE section 5). The libraries read these variables once, when they
are loaded, so they must be in ``os.environ`` before the first ``import numpy``.
"""

from __future__ import annotations

import os
import sys
import warnings

#: Environment that keeps OpenMP, OpenBLAS, MKL, Accelerate and numexpr single-threaded, and
#: makes idle OpenMP threads sleep instead of spinning.
SINGLE_THREAD_ENV: dict[str, str] = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "OMP_WAIT_POLICY": "passive",
}

#: Modules whose thread pools are sized at import time.
_NUMERIC_MODULES = ("numpy", "lightgbm", "sklearn")


def pin_numeric_threads() -> None:
    """Force :data:`SINGLE_THREAD_ENV` into ``os.environ`` (overriding any inherited value).

    Warns when a numeric module is already imported, because then the pool size is already
    fixed and the setting only reaches child processes started with ``exec``.
    """
    os.environ.update(SINGLE_THREAD_ENV)
    loaded = [name for name in _NUMERIC_MODULES if name in sys.modules]
    if loaded:
        warnings.warn(
            f"{', '.join(loaded)} imported before the serving thread limits were set; their "
            "thread pools may already be sized",
            RuntimeWarning,
            stacklevel=2,
        )


def training_thread_policy() -> None:
    """Let training use every core, but make idle OpenMP threads sleep (GUIDE section 5)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")


def single_threaded_estimators(pipeline: object) -> list[str]:
    """Set every ``n_jobs`` parameter of a fitted scikit-learn pipeline to 1; return their names.

    Why besides the environment: LightGBM's scikit-learn wrapper passes its ``n_jobs`` to the
    booster at prediction time, which overrides ``OMP_NUM_THREADS``; a model trained with
    ``n_jobs=-1`` would otherwise start a thread pool in every worker.
    """
    get_params = getattr(pipeline, "get_params", None)
    set_params = getattr(pipeline, "set_params", None)
    if get_params is None or set_params is None:
        return []
    names = [
        name
        for name, value in get_params(deep=True).items()
        if (name == "n_jobs" or name.endswith("__n_jobs")) and value != 1
    ]
    if names:
        set_params(**dict.fromkeys(names, 1))
    return names
