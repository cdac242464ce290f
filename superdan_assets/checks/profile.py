"""What a city's data normally looks like, learnt from its own stored history.

Why learnt: a new city arrives with a spec and nothing else. Which primary types, location
wordings and police codes it uses, and where its incidents lie, are read from the days already
stored (and merged, day by day, as new days are written), never from another city's lists.
A spec's ``[bounds]`` overrides the learnt coordinate box.

Coordinates are summarised as mergeable histograms (fixed bin width chosen from the first batch
seen), so the profile stays small (a few KB) however long the history and its quantiles give a
box that one stray geocode (the (0, 0) placeholder) does not stretch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: Category columns whose values are learnt, per asset.
CATEGORY_COLUMNS: dict[str, tuple[str, ...]] = {
    "raw_crimes": (
        "primary_type",
        "location_description",
        "district",
        "beat",
        "ward",
        "community_area",
    ),
    "crime_features": ("location_description", "district", "beat", "ward", "community_area"),
}
#: Coordinate columns whose box is learnt.
COORDINATE_COLUMNS: tuple[str, ...] = ("latitude", "longitude", "x_coordinate", "y_coordinate")
#: Quantiles of the learnt box, and the margin added on each side (share of its width).
BOX_QUANTILES = (0.001, 0.999)
BOX_MARGIN = 0.10
#: Bins across the central 98 % of the first batch a coordinate histogram is started from.
HISTOGRAM_BINS = 400
#: Fewer located rows than this and no box is learnt.
MIN_LOCATED_ROWS = 50


@dataclass
class Histogram:
    """Counts of ``floor(value / width)`` bins; merged by adding counts."""

    width: float
    counts: dict[int, int] = field(default_factory=dict)

    @classmethod
    def start(cls, values: np.ndarray) -> Histogram | None:
        values = values[np.isfinite(values)]
        if len(values) < MIN_LOCATED_ROWS:
            return None
        lo, hi = np.quantile(values, [0.01, 0.99])
        width = float(hi - lo) / HISTOGRAM_BINS if hi > lo else max(abs(float(lo)) * 1e-4, 1e-6)
        return cls(width=width)

    def add(self, values: np.ndarray) -> None:
        values = values[np.isfinite(values)]
        if not len(values):
            return
        bins, counts = np.unique(np.floor(values / self.width).astype(np.int64), return_counts=True)
        for b, n in zip(bins.tolist(), counts.tolist(), strict=True):
            self.counts[b] = self.counts.get(b, 0) + n

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def box(self) -> tuple[float, float] | None:
        """The [q0.1 %, q99.9 %] range widened by ``BOX_MARGIN`` on each side."""
        if self.total < MIN_LOCATED_ROWS:
            return None
        bins = np.array(sorted(self.counts))
        cum = np.cumsum([self.counts[b] for b in bins]) / self.total
        lo = float(bins[np.searchsorted(cum, BOX_QUANTILES[0])]) * self.width
        hi = (
            float(bins[min(np.searchsorted(cum, BOX_QUANTILES[1]), len(bins) - 1)] + 1) * self.width
        )
        pad = max(hi - lo, self.width) * BOX_MARGIN
        return (lo - pad, hi + pad)


@dataclass
class CityProfile:
    """Learnt categories and coordinate histograms of one city's asset."""

    city: str
    asset: str
    days: int = 0
    first_day: str | None = None
    last_day: str | None = None
    categories: dict[str, dict[str, int]] = field(default_factory=dict)
    histograms: dict[str, Histogram] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self.days == 0

    def known_values(self, column: str) -> list[str] | None:
        """Values of ``column`` seen before, or None when none were (nothing learnt yet)."""
        values = self.categories.get(column)
        return sorted(values) if values else None

    def box(self, column: str) -> tuple[float, float] | None:
        hist = self.histograms.get(column)
        return hist.box() if hist else None

    def merge(self, frame: pd.DataFrame, days: list[str]) -> CityProfile:
        """This profile with ``frame`` (the rows of ``days``) added."""
        for column in CATEGORY_COLUMNS.get(self.asset, ()):
            if column not in frame.columns:
                continue
            counts = frame[column].dropna().astype(str).value_counts()
            known = self.categories.setdefault(column, {})
            for value, n in counts.items():
                known[value] = known.get(value, 0) + int(n)
        for column in COORDINATE_COLUMNS:
            if column not in frame.columns:
                continue
            values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype="float64")
            if column not in self.histograms:
                started = Histogram.start(values)
                if started is None:
                    continue
                self.histograms[column] = started
            self.histograms[column].add(values)
        if days:
            self.days += len(days)
            first, last = min(days), max(days)
            self.first_day = min(self.first_day or first, first)
            self.last_day = max(self.last_day or last, last)
        return self

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "city": self.city,
                "asset": self.asset,
                "days": self.days,
                "first_day": self.first_day,
                "last_day": self.last_day,
                "categories": self.categories,
                "histograms": {
                    c: {"width": h.width, "counts": {str(k): v for k, v in h.counts.items()}}
                    for c, h in self.histograms.items()
                },
            }
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> CityProfile:
        doc = json.loads(data)
        return cls(
            city=doc["city"],
            asset=doc["asset"],
            days=int(doc["days"]),
            first_day=doc.get("first_day"),
            last_day=doc.get("last_day"),
            categories={c: dict(v) for c, v in doc.get("categories", {}).items()},
            histograms={
                c: Histogram(
                    width=float(h["width"]), counts={int(k): int(v) for k, v in h["counts"].items()}
                )
                for c, h in doc.get("histograms", {}).items()
            },
        )


def batch_box(values: pd.Series) -> tuple[float, float] | None:
    """A box learnt from the batch itself, for a city with no history and no spec bounds.

    Wide on purpose (the central 98 % widened by half its width on each side): with nothing
    else to go on it only catches coordinates far from where the city's incidents lie.
    """
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
    numbers = numbers[np.isfinite(numbers)]
    if len(numbers) < MIN_LOCATED_ROWS:
        return None
    lo, hi = np.quantile(numbers, [0.01, 0.99])
    pad = max(float(hi - lo), 1e-3) * 0.5
    return (float(lo) - pad, float(hi) + pad)
