"""The hot-spot baselines a street-risk model must beat, computed from the same events.

* ``last_28_days``: prior-period hot spots, the places with the most crimes in the last 28 days;
* ``all_history``: long-term hot spots, the most crimes over all history before the day;
* ``prospective``: prospective hot-spotting (Bowers, Johnson & Pease 2004), each place scored by
  the crimes of the last few weeks within a radius, weighted 1/(1+d)*1/(1+t) (d in 50 m
  steps, t in weeks).

Each gets its best fair chance: ties (common among places with one or two recent crimes) go
to the place with more long-term crimes (for ``all_history``: more crimes in the last 28 days),
and the prospective radius and weeks are chosen on validation days before the scored period
(see benchmarks/street_risk.py), from the values the literature uses.
"""

from __future__ import annotations

import numpy as np

from superdan_assets.ml.street_risk.features import KernelConfig, kernel_matrix
from superdan_assets.ml.street_risk.history import Events
from superdan_assets.ml.street_risk.units import Units

BASELINES: tuple[str, ...] = ("last_28_days", "all_history", "prospective")


class BaselineScorer:
    """Scores (and tie-breaks) of the three baselines for a day, for one crime type's events."""

    def __init__(
        self, units: Units, events: Events, kernel: KernelConfig | None = None, matrix=None
    ):
        """``matrix``: the kernel's unit-pair weights when already built (the features have it)."""
        self.events = events
        self.kernel_config = kernel or KernelConfig()
        k = self.kernel_config
        self.kernel = (
            matrix if matrix is not None else kernel_matrix(units, k.radius_m, k.distance_unit_m)
        )

    def scores(self, day: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per baseline: (score, tie-break) arrays over all units for ``day``."""
        ev = self.events
        recent = ev.counts(day - 28, day)
        long_term = ev.counts(-(1 << 40), day)
        weeks = self.kernel_config.weeks
        weighted = ev.counts(
            day - 7 * weeks, day, weights=lambda d: 1.0 / (1.0 + (day - d - 1) // 7)
        )
        return {
            "last_28_days": (recent, long_term),
            "all_history": (long_term, recent),
            "prospective": (self.kernel @ weighted, long_term),
        }
