"""Per-unit features for one forecast day, from events strictly before it.

What a place's risk tomorrow depends on, each a feature here:

* long-term concentration: most crime recurs on the same few places for years (counts over
  all history, per day of history, and over the last year);
* recent activity at several time scales: exponentially decayed counts with half-lives of a
  week to a year, and plain counts of the last 7/28/91 days (hot spots drift and flare);
* near-repeat victimisation (Bowers, Johnson & Pease 2004; Mohler et al. 2011): a crime
  raises the risk nearby for a few weeks, which the prospective kernel measures;
* neighbours: a place in a busy area is riskier than its own few counts say;
* the other crime type (burglary and theft share places: shopping streets, dense housing);
* the day's calendar (weekday, season): it moves the city's total, and with it the expected
  count every probability is computed from;
* a place's day-of-week profile (for the types in ``FeatureConfig.weekday_profile``): thefts
  at shops peak at weekends and downtown on weekdays, so a place's share of its past crimes on
  the forecast day's weekday moves its expected count for that day (used with a target of the
  day's own count, see :mod:`.model`).

Neighbour sums are sparse matrix products over pairs of units within a radius, computed once
per set of units; a day's features are a few ``bincount`` calls and products.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse

from superdan_assets.ml.street_risk.history import CRIME_TYPES, Events, day_date
from superdan_assets.ml.street_risk.units import Units


@dataclass(frozen=True)
class KernelConfig:
    """Prospective hot-spotting kernel: weight 1/(1+d/distance_unit) * 1/(1+weeks ago).

    Bowers, Johnson & Pease (2004) used 50 m cells, a 400 m radius and the last two months,
    with distance counted in cells and time in weeks. Chosen per crime type on the 2017
    validation days (63 days, every 5th of 2017-01-01..11-11; PAI at 1 %; block locations as
    the points) among radii 100-800 m, 2-16 weeks and distance steps 10/25/50 m: burglary
    400 m, 16 weeks, 50 m steps (5.20; the two-month 400 m kernel 4.68); theft 200 m, 8 weeks,
    10 m steps (21.6; with 50 m steps 19.0). A baseline given its best fair chance.
    """

    radius_m: float = 400.0
    weeks: int = 8
    distance_unit_m: float = 50.0


#: The prospective kernel per crime type (see :class:`KernelConfig`).
DEFAULT_KERNELS: dict[str, KernelConfig] = {
    "burglary": KernelConfig(radius_m=400.0, weeks=16, distance_unit_m=50.0),
    "theft": KernelConfig(radius_m=200.0, weeks=8, distance_unit_m=10.0),
}


@dataclass(frozen=True)
class FeatureConfig:
    """Which features are computed (chosen on validation days; see benchmarks/street_risk.py)."""

    half_lives: tuple[float, ...] = (7.0, 30.0, 120.0, 365.0)
    windows: tuple[int, ...] = (7, 28, 91, 365)
    kernels: dict[str, KernelConfig] = field(default_factory=lambda: dict(DEFAULT_KERNELS))
    neighbour_radius_m: float = 400.0
    other_type_half_lives: tuple[float, ...] = (30.0, 365.0)
    # Off: on the 2017 validation days, adding projected coordinates and weekday/season
    # features lowered burglary PAI at 1 % from 6.43 to 6.31 and left theft at 25.5.
    location: bool = False
    calendar: bool = False
    # Day-of-week profile features per crime type. Theft only: on the 2017 validation days
    # (training on 2015-2016, target the day's count) theft PAI at 1 % went from 25.55 (no
    # profile, 28-day mean target) to 25.92; see benchmarks/README.md.
    weekday_profile: tuple[str, ...] = ("theft",)


def kernel_matrix(units: Units, radius_m: float, distance_unit_m: float, self_weight: bool = True):
    """Sparse (n, n) matrix of 1/(1+d/distance_unit) for located unit pairs within ``radius_m``."""
    from scipy.spatial import cKDTree

    n = len(units)
    xy = units.xy()
    located = np.flatnonzero(np.isfinite(xy).all(axis=1))
    tree = cKDTree(xy[located])
    pairs = tree.sparse_distance_matrix(tree, radius_m, output_type="coo_matrix")
    rows = located[pairs.row]
    cols = located[pairs.col]
    dist = pairs.data
    if not self_weight:
        keep = rows != cols
        rows, cols, dist = rows[keep], cols[keep], dist[keep]
    # The COO output keeps each located unit's pair with itself (distance 0, weight 1).
    weights = 1.0 / (1.0 + dist / distance_unit_m)
    return sparse.coo_matrix((weights, (rows, cols)), shape=(n, n)).tocsr()


def neighbour_matrix(units: Units, radius_m: float):
    """Sparse (n, n) 0/1 matrix of distinct located unit pairs within ``radius_m``."""
    matrix = kernel_matrix(units, radius_m, distance_unit_m=1.0, self_weight=False)
    matrix.data[:] = 1.0
    return matrix


class FeatureBuilder:
    """Computes the feature matrix of every unit for a day, for one crime type.

    Built once per set of units (the neighbour matrices are the costly part); then
    :meth:`day_features` is cheap and reads only events strictly before the day.
    """

    def __init__(self, units: Units, events: Events, config: FeatureConfig | None = None):
        self.units = units
        self.events = events
        self.config = config or FeatureConfig()
        self.by_type = {label: events.of_type(label) for label in (0, 1)}
        self._first = events.first_day()
        self.kernels = {
            label: (k, kernel_matrix(units, k.radius_m, k.distance_unit_m))
            for label, k in ((CRIME_TYPES[name], k) for name, k in self.config.kernels.items())
        }
        self.neighbours = neighbour_matrix(units, self.config.neighbour_radius_m)
        self.history_start = int(events.day.min()) if len(events.day) else 0

    def active(self, day: int) -> np.ndarray:
        """Units that exist on ``day``: those with an event (of any type) before it."""
        return self._first < day

    def names(self, label: int) -> list[str]:
        """Feature names of crime type ``label`` (the types' feature sets may differ)."""
        c = self.config
        names = ["rate_all"]
        names += [f"count_{w}d" for w in c.windows]
        names += [f"decayed_{h:g}d" for h in c.half_lives]
        names += ["days_since_last", "prospective", "neighbours_28d", "neighbours_365d"]
        names += [f"other_decayed_{h:g}d" for h in c.other_type_half_lives]
        if c.location:
            names += ["x_km", "y_km"]
        if c.calendar:
            names += ["weekday", "day_of_year_sin", "day_of_year_cos"]
        if _type_name(label) in c.weekday_profile:
            names += [
                "same_weekday_52w",
                "same_weekday_rate",
                "same_weekday_share",
                "weekend_share",
                "forecast_weekday",
            ]
        return names

    def day_features(self, day: int, label: int) -> np.ndarray:
        """(n_units, n_features) float32 features for ``day`` and crime type ``label``."""
        c = self.config
        ev = self.by_type[label]
        other = self.by_type[1 - label]
        n = len(self.units)
        cols: list[np.ndarray] = []
        history_days = max(day - self.history_start, 1)
        cols.append(ev.counts(-(1 << 40), day) / history_days)
        for w in c.windows:
            cols.append(ev.counts(day - w, day))
        for h in c.half_lives:
            cols.append(_decayed(ev, day, h))
        last = ev.last_day_before(day)
        since = np.where(last >= 0, day - last, 10_000).astype(float)
        cols.append(np.minimum(since, 10_000))
        k, matrix = self.kernels[label]
        recent = ev.counts(
            day - 7 * k.weeks, day, weights=lambda d: 1.0 / (1.0 + (day - d - 1) // 7)
        )
        cols.append(matrix @ recent)
        cols.append(self.neighbours @ ev.counts(day - 28, day))
        cols.append(self.neighbours @ ev.counts(day - 365, day))
        for h in c.other_type_half_lives:
            cols.append(_decayed(other, day, h))
        if c.location:
            # Absolute projected kilometres: the same place has the same value whatever
            # history the units were built from.
            xy = self.units.xy()
            cols.append(xy[:, 0] / 1000.0)
            cols.append(xy[:, 1] / 1000.0)
        if c.calendar:
            date = day_date(day)
            angle = 2 * np.pi * (date.day_of_year - 1) / 365.25
            cols.append(np.full(n, date.weekday(), dtype=float))
            cols.append(np.full(n, np.sin(angle)))
            cols.append(np.full(n, np.cos(angle)))
        if _type_name(label) in c.weekday_profile:
            cols.extend(_weekday_profile(ev, day, history_days))
        return np.column_stack(cols).astype(np.float32)


def weekday_of(day) -> np.ndarray:
    """Weekday (Monday 0) of day numbers: 1970-01-01, day 0, was a Thursday."""
    return (np.asarray(day) + 3) % 7


def _weekday_profile(ev: Events, day: int, history_days: int) -> list[np.ndarray]:
    """A place's crimes on the forecast day's weekday (last 52 weeks; per week of all history;
    as a share of all its crimes), its share at weekends, and the day's weekday."""
    weekday = int(weekday_of(day))

    def same_weekday(d):
        return (weekday_of(d) == weekday).astype(float)

    def weekend(d):
        return (weekday_of(d) >= 5).astype(float)

    total = ev.counts(-(1 << 40), day)
    same_all = ev.counts(-(1 << 40), day, weights=same_weekday)
    denominator = np.maximum(total, 1.0)
    return [
        ev.counts(day - 364, day, weights=same_weekday),
        same_all / max(history_days / 7.0, 1.0),
        same_all / denominator,
        ev.counts(-(1 << 40), day, weights=weekend) / denominator,
        np.full(len(total), float(weekday)),
    ]


def _type_name(label: int) -> str:
    return next(name for name, value in CRIME_TYPES.items() if value == label)


def _decayed(ev: Events, day: int, half_life: float) -> np.ndarray:
    """Per-unit sum of 2^-(age/half_life) over events before ``day`` (ages over 8 half-lives
    add under 0.4 % and are skipped)."""
    horizon = int(np.ceil(8 * half_life))
    return ev.counts(day - horizon, day, weights=lambda d: np.exp2(-(day - d) / half_life))


def day_targets(events: Events, day: int, label: int, days: int = 1) -> np.ndarray:
    """Per-unit mean daily count of ``label`` events over ``[day, day + days)``.

    ``days`` 1 is the count of the forecast day itself; a longer horizon is a less noisy
    estimate of the same daily rate (used only as a training target, see the model).
    """
    return events.of_type(label).counts(day, day + days) / days


def as_frame(builder: FeatureBuilder, matrix: np.ndarray, label: int) -> pd.DataFrame:
    return pd.DataFrame(matrix, columns=builder.names(label))
