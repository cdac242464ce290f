"""Scoring forecasts against what happened: the model and every baseline, on the same days.

Used by the benchmark (2018 days, scored once), by training's gate (validation days before the
training cutoff) and by the asset's monitoring (yesterday's forecast against yesterday).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from superdan_assets.ml.street_risk.baselines import BASELINES
from superdan_assets.ml.street_risk.forecast import actual_counts, baseline_order, forecast_day
from superdan_assets.ml.street_risk.history import CRIME_TYPES
from superdan_assets.ml.street_risk.metrics import SHARES, HitTally, flagged_count

METHODS: tuple[str, ...] = ("model", *BASELINES)


def share_key(share: float) -> str:
    return f"{round(share * 100)}pct"


def method_order(forecast: pd.DataFrame, method: str) -> np.ndarray:
    """Row positions of a one-type forecast frame, riskiest first, as ``method`` ranks them."""
    if method == "model":
        return np.argsort(forecast["rank"].to_numpy(), kind="stable")
    return baseline_order(forecast, method)


def day_scores(
    forecast: pd.DataFrame, day_rows: pd.DataFrame
) -> dict[str, dict[str, dict[str, float]]]:
    """Hit rate per crime type, method and share of one day's forecast against that day's rows
    (NaN when the day had no crime of the type)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for crime_type in CRIME_TYPES:
        one = forecast[forecast["crime_type"] == crime_type].reset_index(drop=True)
        actual, unplaced = actual_counts(one, day_rows, crime_type)
        total = actual.sum() + unplaced
        out[crime_type] = {}
        for method in METHODS:
            order = method_order(one, method)
            out[crime_type][method] = {
                share_key(s): float(actual[order[: flagged_count(len(one), s)]].sum() / total)
                if total
                else float("nan")
                for s in SHARES
            }
    return out


@dataclass
class Scoreboard:
    """Pooled tallies per crime type, method and share, plus the forecast timings."""

    tallies: dict = field(
        default_factory=lambda: {
            t: {m: {s: HitTally() for s in SHARES} for m in METHODS} for t in CRIME_TYPES
        }
    )
    seconds: list[float] = field(default_factory=list)

    def add_day(self, forecast: pd.DataFrame, day_rows: pd.DataFrame) -> None:
        for crime_type in CRIME_TYPES:
            one = forecast[forecast["crime_type"] == crime_type].reset_index(drop=True)
            actual, unplaced = actual_counts(one, day_rows, crime_type)
            for method in METHODS:
                order = method_order(one, method)
                for share in SHARES:
                    k = flagged_count(len(one), share)
                    self.tallies[crime_type][method][share].add(
                        order[:k], actual, unplaced, k, len(one)
                    )

    def summary(self) -> dict:
        """Per crime type and share: hit rate, PAI, PEI of every method, and the model's PAI
        over the best baseline's."""
        out: dict = {}
        for crime_type, methods in self.tallies.items():
            out[crime_type] = {}
            for share in SHARES:
                entry = {m: _rounded(methods[m][share].summary()) for m in METHODS}
                best = max(BASELINES, key=lambda b: entry[b]["pai"])
                entry["best_baseline"] = best
                base = entry[best]["pai"]
                entry["pai_ratio_vs_best_baseline"] = (
                    round(entry["model"]["pai"] / base, 4) if base else None
                )
                out[crime_type][share_key(share)] = entry
        return out


def _rounded(summary: dict[str, float]) -> dict[str, float]:
    return {
        "hit_rate": round(summary["hit_rate"], 5),
        "pai": round(summary["pai"], 4),
        "pei": round(summary["pei"], 4),
        "share_flagged": round(summary["share_flagged"], 6),
        "crimes": int(summary["crimes"]),
    }


def score_days(
    model,
    rows: pd.DataFrame,
    days: Iterable,
    progress: Callable[[str], None] | None = None,
) -> Scoreboard:
    """Forecast each day from the rows strictly before it and score it against its rows."""
    board = Scoreboard()
    dates = pd.to_datetime(rows["date"]).dt.normalize()
    for i, day in enumerate(days):
        day = pd.Timestamp(day).normalize()
        start = time.perf_counter()
        forecast = forecast_day(model, rows, day)
        board.seconds.append(time.perf_counter() - start)
        board.add_day(forecast, rows[dates == day])
        if progress and (i + 1) % 10 == 0:
            progress(f"scored {i + 1} days (last {day.date()}, {board.seconds[-1]:.2f} s)")
    return board
