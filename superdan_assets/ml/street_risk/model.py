"""The street-risk model: per crime type, a Poisson gradient-boosted model of a place's count.

For each forecast day and place it gives the expected count ``lambda`` of burglaries and of
thefts, and the probability of at least one, ``1 - exp(-lambda)`` (a Poisson count). Places
are ranked by ``lambda``.

Why Poisson boosting on count features (and not a fitted self-exciting point process): the
features already hold what the point-process models estimate (a long-term background rate and
near-repeat excitation at several time scales), and boosting learns how to mix them per type
and per level of activity from the data, without assuming the kernel's shape. Measured on the
2017 validation days (benchmarks/street_risk.py) before the 2018 days were scored.

Why the target differs per type (``target_days``): a burglary at a given place is rare, so the
mean count over the next 28 days is a less noisy estimate of its daily rate than the day's own
count, and it scored better on the 2017 validation days. Theft places are busy and stable, and
their ranking at 1 % turns on the forecast day itself (weekday against weekend shops and
offices), which a 28-day mean averages away: theft learns the day's count, with day-of-week
profile features (2017 validation: PAI at 1 % 25.92 against 25.55 with the 28-day mean).

Why zero rows are subsampled: on a given day ~99 % of places have no theft and ~99.9 % no
burglary. Training keeps every place-day with a crime of the type within the longest target
horizon from the day and a random ``zero_fraction`` of the others, weighted 1/``zero_fraction``,
so the expected loss (and the Poisson level) is unchanged while the fit reads a fraction of the
rows.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "passive")

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from superdan_assets.ml.street_risk.features import FeatureBuilder, FeatureConfig, day_targets
from superdan_assets.ml.street_risk.history import CRIME_TYPES

#: LightGBM settings: common defaults for ~1 M rows, not tuned (a validation run with 500
#: trees and four years of training days was stopped unfinished for lack of time).
BOOSTING_PARAMS: dict[str, Any] = {
    "objective": "poisson",
    "n_estimators": 300,
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 200,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
    "verbose": -1,
}


def target_days_by_type(target_days: int | dict[str, int]) -> dict[str, int]:
    """Target horizon per crime type from one number (every type) or a per-type mapping."""
    if isinstance(target_days, dict):
        missing = sorted(set(CRIME_TYPES) - set(target_days))
        unknown = sorted(set(target_days) - set(CRIME_TYPES))
        if missing or unknown:
            raise ValueError(
                f"target_days needs exactly the crime types {sorted(CRIME_TYPES)}: "
                f"missing {missing}, unknown {unknown}"
            )
        horizons = {name: int(target_days[name]) for name in CRIME_TYPES}
    else:
        horizons = {name: int(target_days) for name in CRIME_TYPES}
    bad = {name: days for name, days in horizons.items() if days < 1}
    if bad:
        raise ValueError(f"target_days must be at least 1 day, got {bad}")
    return horizons


@dataclass
class StreetRiskModel:
    """Fitted boosters per crime type plus the feature settings they were trained with.

    ``target_days``: the horizon of the training target (mean daily count over that many days
    from the forecast day), one number for every type or one per type.
    """

    feature_config: FeatureConfig = field(default_factory=FeatureConfig)
    params: dict[str, Any] = field(default_factory=lambda: dict(BOOSTING_PARAMS))
    zero_fraction: float = 0.2
    target_days: int | dict[str, int] = 1
    boosters: dict[str, Any] = field(default_factory=dict)
    feature_names: dict[str, list[str]] = field(default_factory=dict)
    training_days: list[int] = field(default_factory=list)

    def fit(
        self,
        builder: FeatureBuilder,
        days: list[int],
        seed: int = 0,
        n_jobs: int | None = None,
        progress=None,
    ) -> StreetRiskModel:
        """Fit one booster per crime type on place-days of ``days`` (features before each day)."""
        import lightgbm as lgb

        rng = np.random.default_rng(seed)
        horizons = target_days_by_type(self.target_days)
        keep_days = max(horizons.values())
        self.feature_names = {name: builder.names(label) for name, label in CRIME_TYPES.items()}
        self.training_days = [int(d) for d in days]
        for name, label in CRIME_TYPES.items():
            xs, ys, ws = [], [], []
            for day in days:
                active = np.flatnonzero(builder.active(day))
                x = builder.day_features(day, label)[active]
                y = day_targets(builder.events, day, label, horizons[name])[active]
                # Kept in full: place-days with a crime within the longest horizon (so the
                # rows do not depend on the type's own horizon); the rest subsampled.
                near = day_targets(builder.events, day, label, keep_days)[active] > 0
                keep = near | (rng.random(len(y)) < self.zero_fraction)
                xs.append(x[keep])
                ys.append(y[keep])
                ws.append(np.where(near[keep], 1.0, 1.0 / self.zero_fraction))
            X = np.concatenate(xs)
            params = dict(self.params)
            params.update(random_state=seed, n_jobs=n_jobs or os.cpu_count() or 1)
            booster = lgb.LGBMRegressor(**params)
            booster.fit(X, np.concatenate(ys), sample_weight=np.concatenate(ws))
            self.boosters[name] = booster
            if progress:
                progress(f"fitted {name} on {len(X)} place-days from {len(days)} days")
        return self

    def expected_counts(self, builder: FeatureBuilder, day: int, crime_type: str) -> np.ndarray:
        """Expected count per unit of ``builder`` on ``day`` (0 for units not active yet)."""
        if crime_type not in self.boosters:
            raise ValueError(
                f"no model for crime type {crime_type!r}; have {sorted(self.boosters)}"
            )
        label = CRIME_TYPES[crime_type]
        if not isinstance(self.feature_names, dict):
            raise ValueError(
                "this street-risk model predates per-type features (one feature list for every "
                "type); retrain it with the current code"
            )
        if builder.names(label) != self.feature_names.get(crime_type):
            raise ValueError(
                f"{crime_type} feature settings differ from the ones the model was trained with"
            )
        active = builder.active(day)
        out = np.zeros(len(builder.units))
        if active.any():
            x = builder.day_features(day, label)[active]
            out[active] = self.boosters[crime_type].predict(x)
        return out

    def set_threads(self, n_jobs: int) -> None:
        for booster in self.boosters.values():
            booster.set_params(n_jobs=n_jobs)
