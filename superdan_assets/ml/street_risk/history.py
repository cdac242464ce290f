"""Past incidents as arrays, and the per-unit counts a forecast for one day is built from.

Why arrays sorted by day: a forecast for day D reads only incidents strictly before D, and
every feature is a (weighted) count per unit over a window of days. With the incidents sorted
by day, a window is one slice found by binary search and a count is one ``np.bincount`` over
it, so a day's ~20 features over 30,000 blocks and half a million incidents cost tens of
milliseconds, and no feature can see day D or later by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from superdan_assets.ml.street_risk.units import Units

#: Crime types forecast, and their ``label`` in the ``crime_features`` rows.
CRIME_TYPES: dict[str, int] = {"burglary": 1, "theft": 0}
_EPOCH = np.datetime64("1970-01-01", "D")


def day_number(value) -> int:
    """Days since 1970-01-01 of a date-like value (its calendar day)."""
    return int((np.datetime64(pd.Timestamp(value).normalize().date(), "D") - _EPOCH).astype(int))


def day_date(number: int) -> pd.Timestamp:
    """The calendar day of a day number."""
    return pd.Timestamp(_EPOCH + np.timedelta64(int(number), "D"))


@dataclass
class Events:
    """Incidents as parallel arrays sorted by day: unit index (-1: not a unit), day, type label."""

    unit: np.ndarray
    day: np.ndarray
    label: np.ndarray
    n_units: int

    @classmethod
    def from_rows(cls, rows: pd.DataFrame, units: Units) -> Events:
        """Events of ``crime_features``-like rows (``date``, ``label``, block/location columns)."""
        if rows.empty:
            empty = np.zeros(0, dtype=np.int64)
            return cls(empty, empty.copy(), empty.astype(np.int8), len(units))
        dates = pd.to_datetime(rows["date"]).to_numpy().astype("datetime64[D]")
        day = (dates - _EPOCH).astype(np.int64)
        keys = units.keys_of(rows)
        unit = np.full(len(rows), -1, dtype=np.int64)
        has_key = keys.notna().to_numpy()
        unit[has_key] = units.index_of(keys[has_key].to_numpy())
        label = rows["label"].to_numpy(dtype=np.int8)
        order = np.argsort(day, kind="stable")
        return cls(unit[order], day[order], label[order], len(units))

    def of_type(self, label: int) -> Events:
        keep = self.label == label
        return Events(self.unit[keep], self.day[keep], self.label[keep], self.n_units)

    def window(self, start_day: int, end_day: int) -> slice:
        """The slice of events with ``start_day <= day < end_day``."""
        lo = int(np.searchsorted(self.day, start_day, side="left"))
        hi = int(np.searchsorted(self.day, end_day, side="left"))
        return slice(lo, hi)

    def counts(self, start_day: int, end_day: int, weights=None) -> np.ndarray:
        """Per-unit (weighted) count of events in ``[start_day, end_day)``; unknown units skipped."""
        s = self.window(start_day, end_day)
        unit = self.unit[s]
        known = unit >= 0
        w = None
        if weights is not None:
            w = weights(self.day[s][known])
        return np.bincount(unit[known], weights=w, minlength=self.n_units).astype(float)

    def first_day(self) -> np.ndarray:
        """Per unit, the day of its first event (a large number when it has none)."""
        first = np.full(self.n_units, np.iinfo(np.int64).max, dtype=np.int64)
        known = self.unit >= 0
        np.minimum.at(first, self.unit[known], self.day[known])
        return first

    def last_day_before(self, end_day: int) -> np.ndarray:
        """Per unit, the day of its last event before ``end_day`` (-1 when none)."""
        s = self.window(np.iinfo(np.int32).min, end_day)
        last = np.full(self.n_units, -1, dtype=np.int64)
        unit = self.unit[s]
        known = unit >= 0
        np.maximum.at(last, unit[known], self.day[s][known])
        return last
