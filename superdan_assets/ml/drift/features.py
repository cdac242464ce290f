"""The drift features of a day's rows, and the checked labels and probabilities beside them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from superdan_assets.ml.labels import LABEL_COLUMN, normalise_location_description

#: Numeric features: time of day in hours, and the location.
NUMERIC_FEATURES: tuple[str, ...] = ("time_of_day", "latitude", "longitude")
#: Categorical features (strings); ``time_on_the_hour`` flags estimated times (minute == 0).
CATEGORICAL_FEATURES: tuple[str, ...] = (
    "location_description",
    "district",
    "ward",
    "community_area",
    "beat",
    "domestic",
    "time_on_the_hour",
)
OTHER = "__other__"
MISSING = "__missing__"


def drift_features(frame: pd.DataFrame) -> pd.DataFrame:
    """The drift features of ``crime_features`` rows (or canonical raw rows).

    Categorical values are strings with ``__missing__`` for nulls; location descriptions are
    spelling-normalised, so a raw frame and a feature frame agree. A reworded category shows
    as a new value here: the drift report should see a vocabulary change.
    """
    out = pd.DataFrame(index=frame.index)
    date = (
        pd.to_datetime(frame["date"])
        if "date" in frame.columns
        else pd.Series(pd.NaT, index=frame.index)
    )
    out["time_of_day"] = (date.dt.hour + date.dt.minute / 60 + date.dt.second / 3600).astype(float)
    for column in ("latitude", "longitude"):
        out[column] = (
            pd.to_numeric(frame[column], errors="coerce").astype(float)
            if column in frame.columns
            else np.nan
        )
    for column in CATEGORICAL_FEATURES:
        if column == "time_on_the_hour":
            values = (date.dt.minute == 0) & (date.dt.second == 0)
            values = values.map({True: "true", False: "false"}).where(date.notna(), None)
        elif column not in frame.columns:
            values = pd.Series(None, index=frame.index, dtype=object)
        elif column == "location_description":
            values = normalise_location_description(frame[column])
        else:
            values = frame[column]
        values = (
            values.astype("string").str.lower() if column == "domestic" else values.astype("string")
        )
        out[column] = values.fillna(MISSING).astype(str).to_numpy()
    return out


def labels_of(frame: pd.DataFrame) -> np.ndarray | None:
    """The 0/1 labels of ``frame`` (None without a label column); a missing label is an error."""
    if LABEL_COLUMN not in frame.columns:
        return None
    labels = pd.to_numeric(frame[LABEL_COLUMN], errors="coerce")
    if labels.isna().any():
        raise ValueError(
            f"{int(labels.isna().sum())} rows have no label; validate crime_features first"
        )
    return labels.to_numpy(int)


def checked_probabilities(values: Sequence[float] | np.ndarray, n: int) -> np.ndarray:
    """``values`` as a float array of ``n`` probabilities in [0, 1], or a ValueError."""
    p = np.asarray(values, float).ravel()
    if p.size != n:
        raise ValueError(f"{p.size} probabilities for {n} rows")
    if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
        raise ValueError("probabilities must be finite and within [0, 1]")
    return p
