"""Training a street-risk model on the history before a cutoff, and the gate before deploying.

Protocol (the same in the benchmark and in the platform): the model is fitted on place-days of
the ``train_years`` before the cutoff (every ``train_step``-th day; features from the history
before each day, targets the mean daily count over the following ``target_days``, all before
the cutoff), then scored on validation days after the training days and still before the
cutoff, against the three baselines on the same days. It may be deployed only if it beats the
best baseline's PAI at 1 % for every crime type there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from superdan_assets.ml.street_risk.evaluation import Scoreboard, score_days
from superdan_assets.ml.street_risk.features import FeatureBuilder, FeatureConfig
from superdan_assets.ml.street_risk.forecast import history_before
from superdan_assets.ml.street_risk.history import Events, day_number
from superdan_assets.ml.street_risk.model import StreetRiskModel, target_days_by_type
from superdan_assets.ml.street_risk.units import build_units


@dataclass
class TrainingConfig:
    """How much history the model learns from, and its settings (chosen on 2017 days)."""

    train_years: float = 2.0
    train_step: int = 2
    # Per type (see the model's docstring): burglary the 28-day mean, theft the day's count.
    target_days: int | dict[str, int] = field(default_factory=lambda: {"burglary": 28, "theft": 1})
    zero_fraction: float = 0.05
    feature_config: FeatureConfig = field(default_factory=FeatureConfig)
    params: dict[str, Any] | None = None


def training_days(cutoff, config: TrainingConfig) -> list[int]:
    """Day numbers whose targets end before ``cutoff``, every ``train_step``-th day."""
    end = day_number(cutoff) - max(target_days_by_type(config.target_days).values())
    start = day_number(cutoff) - int(round(365.25 * config.train_years))
    return list(range(start, end + 1, config.train_step))


def train_street_risk(
    rows: pd.DataFrame,
    cutoff,
    config: TrainingConfig | None = None,
    seed: int = 0,
    n_jobs: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> StreetRiskModel:
    """Fit a model on the rows strictly before ``cutoff`` (nothing on or after it is read)."""
    config = config or TrainingConfig()
    history = history_before(rows, cutoff)
    if history.empty:
        raise ValueError(f"no history before {pd.Timestamp(cutoff).date()} to train on")
    days = [d for d in training_days(cutoff, config) if d > day_number(history["date"].min())]
    if not days:
        raise ValueError(
            f"history before {pd.Timestamp(cutoff).date()} is too short to train on: it starts "
            f"{pd.Timestamp(history['date'].min()).date()} and targets need {max(target_days_by_type(config.target_days).values())} days"
        )
    units = build_units(history)
    builder = FeatureBuilder(units, Events.from_rows(history, units), config.feature_config)
    model = StreetRiskModel(
        feature_config=config.feature_config,
        zero_fraction=config.zero_fraction,
        target_days=config.target_days,
    )
    if config.params:
        model.params.update(config.params)
    return model.fit(builder, days, seed=seed, n_jobs=n_jobs, progress=progress)


@dataclass
class GateResult:
    passed: bool
    reason: str
    summary: dict


def gate(board: Scoreboard, share_key: str = "1pct", min_ratio: float = 1.0) -> GateResult:
    """Pass when, for every crime type at ``share_key``, the model's PAI is more than
    ``min_ratio`` times the best baseline's (1.0: it must beat every baseline)."""
    summary = board.summary()
    failures = []
    for crime_type, shares in summary.items():
        entry = shares[share_key]
        ratio = entry["pai_ratio_vs_best_baseline"]
        if ratio is None or ratio <= min_ratio:
            failures.append(
                f"{crime_type}: model PAI {entry['model']['pai']} <= {entry['best_baseline']} "
                f"PAI {entry[entry['best_baseline']]['pai']} at {share_key} (ratio {ratio}, "
                f"needs more than {min_ratio})"
            )
    if failures:
        return GateResult(False, "; ".join(failures), summary)
    return GateResult(
        True, f"PAI above {min_ratio} x the best baseline's at {share_key} for every type", summary
    )


def validate(
    model: StreetRiskModel, rows: pd.DataFrame, days, min_ratio: float = 1.0, progress=None
) -> GateResult:
    """Score ``days`` (forecast each from its own history) and apply :func:`gate`."""
    return gate(score_days(model, rows, days, progress), min_ratio=min_ratio)
