"""One day's street-risk forecast from the history before it: the frame the asset writes.

``forecast_day`` is the whole daily computation (units from history, features, the model's
expected counts, the baselines' scores) and it is what the benchmark scores, so the measured
hit rates and seconds per day are those of the shipped path.

Forecast frame, one row per unit and crime type::

    day, crime_type, unit (block key or cell key), latitude, longitude,
    expected_count, probability (P(at least one) = 1 - exp(-expected_count)), rank (1 = riskiest),
    percentile (share of units ranked at or above it), flagged_1pct/2pct/5pct,
    last_28_days, all_history, prospective (the baselines' scores, for monitoring)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from superdan_assets.ml.street_risk.baselines import BaselineScorer
from superdan_assets.ml.street_risk.features import FeatureBuilder
from superdan_assets.ml.street_risk.history import CRIME_TYPES, Events, day_number
from superdan_assets.ml.street_risk.metrics import SHARES, flagged_count, top_units
from superdan_assets.ml.street_risk.model import StreetRiskModel
from superdan_assets.ml.street_risk.units import Units, build_units

FORECAST_COLUMNS: dict[str, str] = {
    "day": "datetime64[ns]",
    "crime_type": "string",
    "unit": "string",
    "latitude": "float64",
    "longitude": "float64",
    "expected_count": "float64",
    "probability": "float64",
    "rank": "int64",
    "percentile": "float64",
    **{f"flagged_{round(s * 100)}pct": "bool" for s in SHARES},
    "last_28_days": "float64",
    "all_history": "float64",
    "prospective": "float64",
}


def history_before(rows: pd.DataFrame, day) -> pd.DataFrame:
    """The rows strictly before the calendar day ``day`` (a forecast may never see its day)."""
    start = pd.Timestamp(day).normalize()
    return rows[pd.to_datetime(rows["date"]) < start]


def prepare(model: StreetRiskModel, history: pd.DataFrame, unit_kind: str | None = None):
    """Units, events and the feature builder for a history frame (the per-history setup)."""
    units = build_units(history, kind=unit_kind)
    events = Events.from_rows(history, units)
    builder = FeatureBuilder(units, events, model.feature_config)
    return units, events, builder


def forecast_day(
    model: StreetRiskModel,
    rows: pd.DataFrame,
    day,
    unit_kind: str | None = None,
) -> pd.DataFrame:
    """The forecast for calendar day ``day`` from the rows strictly before it.

    ``rows`` are ``crime_features``-like rows (``date``, ``label``, ``block``, ``latitude``,
    ``longitude``); rows on or after ``day`` are ignored, so passing more history is safe.
    """
    history = history_before(rows, day)
    if history.empty:
        raise ValueError(f"no history before {pd.Timestamp(day).date()} to forecast from")
    units, events, builder = prepare(model, history, unit_kind)
    number = day_number(day)
    frames = []
    for crime_type, label in CRIME_TYPES.items():
        expected = model.expected_counts(builder, number, crime_type)
        kernel, matrix = builder.kernels[label]
        baselines = BaselineScorer(units, builder.by_type[label], kernel, matrix)
        frames.append(_frame(units, number, day, crime_type, expected, baselines.scores(number)))
    return pd.concat(frames, ignore_index=True)


def _frame(
    units: Units, number: int, day, crime_type: str, expected, baseline_scores
) -> pd.DataFrame:
    n = len(units)
    tie_break = baseline_scores["all_history"][0]
    order = top_units(expected, n, tie_break)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(1, n + 1)
    frame = pd.DataFrame(
        {
            "day": pd.Timestamp(day).normalize(),
            "crime_type": crime_type,
            "unit": pd.array(units.keys.astype(str), dtype="string"),
            "latitude": units.latitude,
            "longitude": units.longitude,
            "expected_count": expected,
            "probability": 1.0 - np.exp(-expected),
            "rank": rank,
            "percentile": rank / n,
        }
    )
    for share in SHARES:
        frame[f"flagged_{round(share * 100)}pct"] = rank <= flagged_count(n, share)
    for name, (score, _) in baseline_scores.items():
        frame[name] = score
    frame = frame.sort_values("rank", kind="stable").reset_index(drop=True)
    return frame.astype(FORECAST_COLUMNS)


def baseline_order(forecast: pd.DataFrame, baseline: str) -> np.ndarray:
    """Positions of ``forecast`` rows (one crime type) ordered as ``baseline`` ranks them,
    with the same tie-breaks as :class:`~.baselines.BaselineScorer`."""
    tie = "last_28_days" if baseline == "all_history" else "all_history"
    return top_units(forecast[baseline].to_numpy(), len(forecast), forecast[tie].to_numpy())


def actual_counts(
    forecast: pd.DataFrame, day_rows: pd.DataFrame, crime_type: str
) -> tuple[np.ndarray, int]:
    """The day's crimes of ``crime_type`` per forecast row (one crime type), and how many of
    that day's crimes fell on no forecast unit (a new block, or no location)."""
    label = CRIME_TYPES[crime_type]
    rows = day_rows[day_rows["label"] == label]
    kind = "cell" if str(forecast["unit"].iloc[0]).startswith("cell:") else "block"
    if kind == "block":
        keys = rows["block"].astype("string").str.strip()
    else:
        from superdan_assets.ml.street_risk.units import (
            DEFAULT_CELL_SIZE_M,
            cell_keys,
            reference_latitude,
        )

        # The history's projection latitude is its median rounded to a degree: the same value
        # from the cells' own (median) locations.
        ref_lat = reference_latitude(forecast["latitude"])
        keys = cell_keys(rows["latitude"], rows["longitude"], ref_lat, DEFAULT_CELL_SIZE_M)
    counts = keys.value_counts()
    per_unit = counts.reindex(forecast["unit"].astype(str)).fillna(0).to_numpy(dtype=float)
    return per_unit, int(len(rows) - per_unit.sum())
