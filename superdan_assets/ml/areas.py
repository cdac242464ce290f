"""Police areas that are redrawn: an unseen beat (district, ward...) becomes the known one it lies in.

Departments renumber and redraw beats and districts (Chicago redrew its beats in 2012 and
merged districts in 2012-2013). A model keyed on the old codes sees a new beat as a place with
no past: its beat-and-location history is empty on the first day of the new map. But the
incident's point still says where it happened, so an unseen code is replaced by the known area
whose centre is nearest the point, learnt from the training rows' own points (the median of
each area's points). A point farther from every centre than the areas' own spread (the 95th
percentile distance of an area's points from its centre, the median across areas, doubled)
is left unseen, and so
is an incident without a point.

Measured in ``benchmarks/vocabulary.py`` (``beats_renumbered``: every 2018 beat unseen).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: An area needs this many located training rows for its centre to be trusted.
MIN_AREA_ROWS = 20
#: Unseen rows are matched to centres in chunks of this many rows (bounded memory).
_CHUNK = 4096


class AreaCentres:
    """Known codes of one area column and where their incidents lie (picklable)."""

    def __init__(
        self,
        codes: list[str],
        latitude: np.ndarray,
        longitude: np.ndarray,
        reach: float,
        seen: frozenset[str] = frozenset(),
    ):
        self.codes = list(codes)
        #: Every code of the training rows (a rare one keeps its own small history).
        self.known = frozenset(codes) | frozenset(seen)
        self.latitude = np.asarray(latitude, dtype="float64")
        self.longitude = np.asarray(longitude, dtype="float64")
        #: Farthest (in degrees of latitude) a point may lie from a centre to be matched.
        self.reach = float(reach)
        self._scale = float(np.cos(np.radians(np.median(self.latitude)))) if codes else 1.0

    @classmethod
    def learn(cls, codes: np.ndarray, latitude: np.ndarray, longitude: np.ndarray) -> AreaCentres:
        """Centres (medians) of each code's located training rows, and the areas' spread."""
        frame = pd.DataFrame(
            {
                "code": pd.Series(codes, dtype=object),
                "lat": np.asarray(latitude, dtype="float64"),
                "lon": np.asarray(longitude, dtype="float64"),
            }
        )
        seen = frozenset(str(c) for c in frame["code"].dropna().unique())
        located = frame["code"].notna() & (frame["lat"].abs() <= 90) & (frame["lon"].abs() <= 180)
        frame = frame[located]
        if frame.empty:
            return cls([], np.empty(0), np.empty(0), 0.0, seen)
        sizes = frame.groupby("code")["lat"].size()
        frame = frame[frame["code"].isin(sizes[sizes >= MIN_AREA_ROWS].index)]
        if frame.empty:
            return cls([], np.empty(0), np.empty(0), 0.0, seen)
        centres = frame.groupby("code", sort=True)[["lat", "lon"]].median()
        scale = float(np.cos(np.radians(centres["lat"].median())))
        distance = np.hypot(
            frame["lat"] - frame["code"].map(centres["lat"]),
            (frame["lon"] - frame["code"].map(centres["lon"])) * scale,
        )
        spread = distance.groupby(frame["code"]).quantile(0.95)
        return cls(
            [str(c) for c in centres.index],
            centres["lat"].to_numpy(),
            centres["lon"].to_numpy(),
            float(spread.median()) * 2.0,
            seen,
        )

    def map_values(
        self, codes: np.ndarray, latitude: np.ndarray, longitude: np.ndarray
    ) -> np.ndarray:
        """``codes`` with each unseen one replaced by the nearest known area within reach."""
        codes = np.asarray(codes, dtype=object)
        if not self.codes:
            return codes
        unseen = np.fromiter(
            (c is not None and c not in self.known for c in codes), dtype=bool, count=len(codes)
        )
        unseen &= np.isfinite(latitude) & np.isfinite(longitude)
        if not unseen.any():
            return codes
        out = codes.copy()
        rows = np.flatnonzero(unseen)
        centre_codes = np.asarray(self.codes, dtype=object)
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start : start + _CHUNK]
            d_lat = latitude[chunk, None] - self.latitude[None, :]
            d_lon = (longitude[chunk, None] - self.longitude[None, :]) * self._scale
            distance = np.hypot(d_lat, d_lon)
            nearest = distance.argmin(axis=1)
            within = distance[np.arange(len(chunk)), nearest] <= self.reach
            out[chunk[within]] = centre_codes[nearest[within]]
        return out
