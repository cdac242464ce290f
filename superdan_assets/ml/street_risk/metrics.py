"""The field's measures of a hot-spot forecast: hit rate, PAI and PEI at a share of the city.

(NIJ Real-Time Crime Forecasting Challenge 2017.) Flag the top ``share`` of places; then

* hit rate = the share of the day's crimes that happened on flagged places;
* PAI (Predictive Accuracy Index) = hit rate / share flagged: how much better than flagging
  places at random (PAI 1);
* PEI (Predictive Efficiency Index) = hit rate / the best hit rate any choice of that many
  places could have reached that day (the places with the most crimes): 1 is perfect.

Area share for blocks: each block counts as an equal unit (``k = round(share * n_blocks)``
blocks are flagged). Chicago's hundred-blocks are each about 1/8 mile of one street (800
address numbers per mile), so a share of blocks is a share of the street network, which is
where these crimes are reported; counting the area around each block instead would reward
flagging sparse outskirts with large empty surroundings. For grid cells the share is exactly a
share of area. Scores are pooled over days (total hits / total crimes), as the NIJ scored a
whole forecast period, so a day with one burglary does not weigh as much as a day with fifty.
Crimes on a place that did not exist in the history (a block never reported before) count in
the denominator: no forecast could flag them, and leaving them out would flatter every method.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SHARES: tuple[float, ...] = (0.01, 0.02, 0.05)


def flagged_count(n_units: int, share: float) -> int:
    """How many of ``n_units`` equal units are flagged at ``share`` (at least one)."""
    return max(1, int(round(share * n_units)))


def top_units(scores: np.ndarray, k: int, tie_break: np.ndarray | None = None) -> np.ndarray:
    """Indices of the ``k`` highest ``scores``; ties go to the higher ``tie_break``, then to
    the lower index (deterministic, so a benchmark run is reproducible)."""
    scores = np.asarray(scores, dtype=float)
    secondary = np.zeros_like(scores) if tie_break is None else np.asarray(tie_break, float)
    order = np.lexsort((np.arange(len(scores)), -secondary, -scores))
    return order[:k]


@dataclass
class HitTally:
    """Pooled hits over forecast days for one method, crime type and share."""

    hits: float = 0.0
    crimes: float = 0.0
    best_hits: float = 0.0
    share_flagged: list[float] = field(default_factory=list)
    daily_hit_rates: list[float] = field(default_factory=list)

    def add(self, flagged: np.ndarray, actual: np.ndarray, unplaced: float, k: int, n: int) -> None:
        """One day: ``actual`` counts per candidate unit, ``unplaced`` crimes off the units."""
        hits = float(actual[flagged].sum())
        total = float(actual.sum() + unplaced)
        best = float(np.sort(actual)[::-1][:k].sum())
        self.hits += hits
        self.crimes += total
        self.best_hits += best
        self.share_flagged.append(k / n)
        if total > 0:
            self.daily_hit_rates.append(hits / total)

    def summary(self) -> dict[str, float]:
        hit_rate = self.hits / self.crimes if self.crimes else 0.0
        share = float(np.mean(self.share_flagged)) if self.share_flagged else 0.0
        return {
            "hit_rate": hit_rate,
            "pai": hit_rate / share if share else 0.0,
            "pei": self.hits / self.best_hits if self.best_hits else 0.0,
            "share_flagged": share,
            "crimes": self.crimes,
            "days": len(self.share_flagged),
        }


def day_hit_rate(scores, actual, unplaced: float, share: float, tie_break=None) -> float:
    """One day's hit rate of a forecast over candidate units (NaN on a day without crimes)."""
    actual = np.asarray(actual, dtype=float)
    total = float(actual.sum() + unplaced)
    if total == 0:
        return float("nan")
    k = flagged_count(len(actual), share)
    return float(actual[top_units(scores, k, tie_break)].sum()) / total
