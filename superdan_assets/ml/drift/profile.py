"""The reference profile: a compact, JSON-stored summary of the reference period.

Computed once at training time from the model's held-out evaluation rows (the honest choice:
in-sample predictions are over-confident) and stored with the model, so a day's report never
reloads the training set: per numeric feature its quantile function, PSI bins and scale; per
categorical feature its category shares (rare ones pooled); the prediction distribution; the
label share; the reference metrics; and each statistic's *daily null*, how far the reference
period's own days are from the whole (see the package docstring for why).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from superdan_assets.ml.drift.config import DriftConfig
from superdan_assets.ml.drift.distances import (
    bin_shares,
    floored_shares,
    jensen_shannon_distance,
    psi,
    wasserstein_between_quantiles,
)
from superdan_assets.ml.drift.features import (
    CATEGORICAL_FEATURES,
    NUMERIC_FEATURES,
    OTHER,
    checked_probabilities,
    drift_features,
    labels_of,
)
from superdan_assets.ml.drift.performance import average_precision, point_metrics, roc_auc

PROFILE_VERSION = 1
#: Quantiles of the daily statistic stored in a profile's daily null.
NULL_QUANTILES = (0.5, 0.9, 0.95, 0.99, 1.0)
#: Quantiles kept for daily outcomes (labels, metrics), whose low tail matters too.
OUTCOME_QUANTILES = (0.0, 0.005, 0.01, 0.05, 0.5, 0.95, 0.99, 0.995, 1.0)


@dataclass(frozen=True)
class NumericProfile:
    """A numeric distribution: quantile function, scale, PSI bins and their shares."""

    count: int
    missing_share: float
    mean: float
    scale: float  # std, else IQR, else 1: what a Wasserstein distance is divided by
    quantiles: list[float]  # at ``np.linspace(0, 1, len(quantiles))``
    psi_edges: list[float]  # interior edges; bins are (-inf, e0], (e0, e1], ..., (ek, inf)
    psi_shares: list[float]
    daily_null: dict[str, dict[str, float]] | None = None  # statistic -> {quantile: value}
    daily_rows: float | None = None  # median size of the reference days behind daily_null

    def wasserstein(self, quantiles: np.ndarray) -> np.ndarray:
        """W1 / scale between quantile functions on this profile's grid (last axis)."""
        return wasserstein_between_quantiles(quantiles, self.quantiles, self.scale)


@dataclass(frozen=True)
class CategoricalProfile:
    """Category shares (rare ones pooled into ``__other__``; nulls are ``__missing__``)."""

    count: int
    shares: dict[str, float]
    daily_null: dict[str, dict[str, float]] | None = None
    daily_rows: float | None = None

    def expected_shares(self) -> np.ndarray:
        return floored_shares(list(self.shares.values()))


@dataclass(frozen=True)
class ReferenceProfile:
    """Everything a daily report needs to know about the reference period (JSON round-trips)."""

    rows: int
    numeric: dict[str, NumericProfile]
    categorical: dict[str, CategoricalProfile]
    prediction: NumericProfile | None = None
    prediction_histogram: dict[str, list[float]] | None = None  # {"edges": [...], "shares": [...]}
    label_share: float | None = None
    threshold: float | None = None
    metrics: dict[str, float] | None = None
    #: How ordinary reference days vary: {"label_share" | "roc_auc" | "pr_auc": {quantile: value}}.
    daily_null: dict[str, dict[str, float]] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    version: int = PROFILE_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> ReferenceProfile:
        if doc.get("version") != PROFILE_VERSION:
            raise ValueError(
                f"reference profile version {doc.get('version')!r}; this code reads {PROFILE_VERSION}"
            )
        return cls(
            rows=doc["rows"],
            numeric={k: NumericProfile(**v) for k, v in doc["numeric"].items()},
            categorical={k: CategoricalProfile(**v) for k, v in doc["categorical"].items()},
            prediction=NumericProfile(**doc["prediction"]) if doc.get("prediction") else None,
            prediction_histogram=doc.get("prediction_histogram"),
            label_share=doc.get("label_share"),
            threshold=doc.get("threshold"),
            metrics=doc.get("metrics"),
            daily_null=doc.get("daily_null"),
            metadata=dict(doc.get("metadata") or {}),
            version=doc["version"],
        )

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1, allow_nan=False))
        return path

    @classmethod
    def load(cls, path: str | Path) -> ReferenceProfile:
        return cls.from_dict(json.loads(Path(path).read_text()))


def build_reference_profile(
    frame: pd.DataFrame,
    probabilities: Sequence[float] | np.ndarray | None = None,
    *,
    threshold: float | None = None,
    config: DriftConfig | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> ReferenceProfile:
    """Summarise the reference rows (``crime_features`` rows, with ``label`` when known).

    ``probabilities``: the model's P(burglary) for these rows (aligned), for prediction drift
    and the reference metrics. Pass held-out rows (the model's evaluation period): in-sample
    predictions are over-confident and would make every real day look like a degradation.
    When the rows span several days, each feature also gets its *daily null*: how far the
    reference period's own days are from the whole (see the package docstring).
    """
    config = config or DriftConfig()
    if len(frame) == 0:
        raise ValueError("the reference needs at least one row")
    features = drift_features(frame)
    numeric = {c: numeric_profile(features[c].to_numpy(float), config) for c in NUMERIC_FEATURES}
    categorical = {c: categorical_profile(features[c], config) for c in CATEGORICAL_FEATURES}
    labels = labels_of(frame)
    label_share = float(np.mean(labels)) if labels is not None else None
    prediction = histogram = metrics = None
    p = None
    if probabilities is not None:
        p = checked_probabilities(probabilities, len(frame))
        prediction = numeric_profile(p, config)
        edges = np.linspace(0, 1, config.histogram_bins + 1)
        counts, _ = np.histogram(p, bins=edges)
        histogram = {
            "edges": edges.round(6).tolist(),
            "shares": (counts / max(1, len(p))).round(6).tolist(),
        }
        if labels is not None and threshold is not None:
            metrics = point_metrics(labels, p, threshold)

    days = _reference_days(frame, config)
    daily_null = None
    if days:
        daily_null = _outcome_null(days, labels, p, config)
        sizes = float(np.median([len(ix) for ix in days]))
        for c in NUMERIC_FEATURES:
            numeric[c] = _with_numeric_null(numeric[c], features[c].to_numpy(float), days, sizes)
        for c in CATEGORICAL_FEATURES:
            categorical[c] = _with_categorical_null(
                categorical[c], features[c].to_numpy(), days, sizes
            )
        if prediction is not None:
            prediction = _with_numeric_null(prediction, p, days, sizes)
    return ReferenceProfile(
        rows=len(frame),
        numeric=numeric,
        categorical=categorical,
        prediction=prediction,
        prediction_histogram=histogram,
        label_share=label_share,
        threshold=threshold,
        metrics=metrics,
        daily_null=daily_null,
        metadata=dict(metadata or {}) | {"reference_days": len(days)},
    )


def numeric_profile(values: np.ndarray, config: DriftConfig) -> NumericProfile:
    """Quantile function, scale and PSI bins of the finite ``values``."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise ValueError("a numeric reference feature has no finite values")
    grid = np.linspace(0, 1, config.quantile_points)
    quantiles = np.quantile(finite, grid)
    std = float(np.std(finite))
    iqr = float(np.subtract(*np.quantile(finite, [0.75, 0.25])))
    scale = std if std > 0 else (iqr if iqr > 0 else 1.0)
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, config.psi_bins + 1)[1:-1]))
    shares = bin_shares(finite, edges)
    return NumericProfile(
        count=int(finite.size),
        missing_share=float(1 - finite.size / max(1, values.size)),
        mean=float(finite.mean()),
        scale=scale,
        quantiles=[float(q) for q in quantiles],
        psi_edges=[float(e) for e in edges],
        psi_shares=[float(s) for s in shares],
    )


def categorical_profile(values: pd.Series, config: DriftConfig) -> CategoricalProfile:
    """Category shares of ``values``, those under ``min_category_share`` pooled into OTHER."""
    shares = values.value_counts(normalize=True)
    kept = shares[shares >= config.min_category_share]
    pooled = float(shares[shares < config.min_category_share].sum())
    out = {str(k): float(v) for k, v in kept.items()}
    out[OTHER] = out.get(OTHER, 0.0) + pooled
    return CategoricalProfile(count=int(len(values)), shares=out)


def null_quantile(null: Mapping[str, float] | None, q: float) -> float | None:
    """Interpolate a stored ``{quantile: value}`` summary at ``q`` (None without one)."""
    if not null:
        return None
    qs = np.array([float(k) for k in null])
    return float(np.interp(q, qs, [null[k] for k in null]))


def daily_noise(
    ref: NumericProfile | CategoricalProfile, statistic: str, n: int, config: DriftConfig
) -> float:
    """The reference days' ``noise_quantile`` of ``statistic``, rescaled to ``n`` rows (0 if none)."""
    value = null_quantile((ref.daily_null or {}).get(statistic), config.noise_quantile)
    if value is None or not ref.daily_rows or n <= 0:
        return 0.0
    return value * math.sqrt(ref.daily_rows / n)


def _reference_days(frame: pd.DataFrame, config: DriftConfig) -> list[np.ndarray]:
    """Row positions of each reference day with at least ``min_daily_rows`` rows."""
    if "date" not in frame.columns:
        return []
    day = pd.to_datetime(frame["date"]).dt.normalize().to_numpy()
    groups = pd.Series(np.arange(len(frame))).groupby(day).indices
    days = [np.asarray(ix) for ix in groups.values() if len(ix) >= config.min_daily_rows]
    return days if len(days) >= 7 else []


def _null_summary(
    values: list[float], quantiles: Sequence[float] = NULL_QUANTILES
) -> dict[str, float]:
    arr = np.asarray(values, float)
    return {str(q): round(float(np.quantile(arr, q)), 6) for q in quantiles}


def _outcome_null(days, labels, p, config: DriftConfig) -> dict[str, dict[str, float]] | None:
    """Daily label share and ROC-AUC / PR-AUC of the reference period's own days."""
    if labels is None:
        return None
    out = {"label_share": _null_summary([labels[ix].mean() for ix in days], OUTCOME_QUANTILES)}
    if p is not None:
        aucs, aps = [], []
        for ix in days:
            y = labels[ix]
            if (
                len(y) >= config.min_rows
                and min(y.sum(), len(y) - y.sum()) >= config.min_class_rows
            ):
                aucs.append(roc_auc(y, p[ix]))
                aps.append(average_precision(y, p[ix]))
        if len(aucs) >= 7:
            out["roc_auc"] = _null_summary(aucs, OUTCOME_QUANTILES)
            out["pr_auc"] = _null_summary(aps, OUTCOME_QUANTILES)
    return out


def _with_numeric_null(
    ref: NumericProfile, values: np.ndarray, days, sizes: float
) -> NumericProfile:
    grid = np.linspace(0, 1, len(ref.quantiles))
    w, p = [], []
    for ix in days:
        day = values[ix]
        day = day[np.isfinite(day)]
        if day.size:
            w.append(float(ref.wasserstein(np.quantile(day, grid))))
            p.append(float(psi(ref.psi_shares, bin_shares(day, np.asarray(ref.psi_edges)))))
    if not w:
        return ref
    return replace(
        ref, daily_null={"wasserstein": _null_summary(w), "psi": _null_summary(p)}, daily_rows=sizes
    )


def _with_categorical_null(
    ref: CategoricalProfile, values: np.ndarray, days, sizes: float
) -> CategoricalProfile:
    categories = list(ref.shares)
    codes = pd.Index(categories).get_indexer(values)
    codes = np.where(codes < 0, categories.index(OTHER), codes)
    expected = ref.expected_shares()
    js = [
        float(
            jensen_shannon_distance(
                np.bincount(codes[ix], minlength=len(categories)) / len(ix), expected
            )
        )
        for ix in days
    ]
    return replace(ref, daily_null={"jensen_shannon": _null_summary(js)}, daily_rows=sizes)
