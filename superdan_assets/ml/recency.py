"""Recency: which training rows a model learns from, and how much each counts.

Two options, both model parameters (so the asset's ``hyperparameters``, the container's
``hyperparameters.json``, the manifest and the selection grid carry them like any other):

* ``window_days``: train on the last N days of the training rows only (a sliding window), or on
  all history (``None``). The rows before the window are dropped entirely, place histories
  included: a sliding window forgets old places as well as old patterns.
* ``recency_half_life_days``: weight each training row by ``0.5 ** (age / half_life)``, its age
  in days counted back from the last training row (``None``: every row counts the same). The
  weights are scaled to mean 1, so LightGBM's regularisation (``reg_lambda``, the hessian floor)
  means the same with and without weighting. Weights reach the boosting only; place histories
  count every earlier row.

Why here and not in the pipeline: both act on the *rows* a fit sees, relative to the end of the
training window, and the pipeline is also what serves single incidents, which have no window.
Both are applied relative to the rows' own last date, so the validation fit (which ends earlier)
and the final fit use the same rule.

Whether either helps is decided by rolling-origin selection (:mod:`superdan_assets.ml.selection`),
not assumed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

#: The recency parameters and their "off" values; merged into the model's parameters.
RECENCY_PARAMS: dict[str, Any] = {"window_days": None, "recency_half_life_days": None}

_NS_PER_DAY = 86_400 * 10**9


def _positive_or_none(name: str, value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a positive number of days or null; got {value!r}"
        ) from None
    if not np.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a positive number of days or null; got {value!r}")
    return number


def apply_window(rows: pd.DataFrame, window_days: float | None) -> pd.DataFrame:
    """The rows of the last ``window_days`` calendar days before the last row's day (inclusive).

    ``None`` keeps every row. The cut is at midnight, so a day is never split. Raises when the
    window would leave no row (only possible with no dated rows).
    """
    days = _positive_or_none("window_days", window_days)
    if days is None:
        return rows
    dates = pd.to_datetime(rows["date"])
    if dates.isna().all():
        raise ValueError("cannot apply a training window: no row has a date")
    start = dates.max().normalize() + pd.Timedelta(days=1) - pd.Timedelta(days=days)
    kept = rows.loc[(dates >= start).to_numpy()]
    return kept.reset_index(drop=True)


def recency_weights(dates: pd.Series, half_life_days: float | None) -> np.ndarray | None:
    """``0.5 ** (age_days / half_life_days)`` per row, scaled to mean 1; ``None`` when off.

    Age is counted from the latest date in ``dates``; a missing date gets the oldest age seen
    (it cannot claim to be recent).
    """
    half_life = _positive_or_none("recency_half_life_days", half_life_days)
    if half_life is None:
        return None
    values = pd.to_datetime(dates).to_numpy(dtype="datetime64[ns]")
    known = ~np.isnat(values)
    if not known.any():
        raise ValueError("cannot weight by recency: no row has a date")
    end = values[known].max()
    age = np.empty(len(values), dtype="float64")
    age[known] = (end - values[known]).astype(np.int64) / _NS_PER_DAY
    age[~known] = age[known].max()
    weights = np.power(0.5, age / half_life)
    return weights / weights.mean()


def training_rows(
    rows: pd.DataFrame, params: dict[str, Any]
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """``(rows, sample weights or None)`` a fit with ``params`` learns from.

    ``params`` needs the two keys of :data:`RECENCY_PARAMS` (missing ones are "off").
    """
    kept = apply_window(rows, params.get("window_days"))
    return kept, recency_weights(kept["date"], params.get("recency_half_life_days"))
