"""Realised performance of a day's predictions, with seeded bootstrap intervals.

ROC-AUC and PR-AUC are computed here with numpy/scipy (equal to scikit-learn's, tested), so
the drift report needs no scikit-learn import.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from superdan_assets.ml.drift.config import DriftConfig
from superdan_assets.ml.drift.features import MISSING

METRICS = ("roc_auc", "pr_auc", "precision", "recall")


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC-AUC via the Mann-Whitney statistic with average ranks for ties (= scikit-learn)."""
    y = np.asarray(y, bool)
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return math.nan
    ranks = stats.rankdata(score)
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


def average_precision(y: np.ndarray, score: np.ndarray) -> float:
    """PR-AUC as scikit-learn's ``average_precision_score``: sum of (R_k - R_k-1) * P_k."""
    y = np.asarray(y, float)
    if y.sum() == 0:
        return math.nan
    order = np.argsort(-np.asarray(score, float), kind="mergesort")
    y, s = y[order], np.asarray(score, float)[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tps = np.cumsum(y)[last]
    precision = tps / (last + 1)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def precision_recall(y: np.ndarray, score: np.ndarray, threshold: float) -> tuple[float, float]:
    y = np.asarray(y, bool)
    predicted = np.asarray(score) >= threshold
    tp = int((predicted & y).sum())
    precision = tp / predicted.sum() if predicted.sum() else math.nan
    recall = tp / y.sum() if y.sum() else math.nan
    return float(precision), float(recall)


def point_metrics(y: np.ndarray, score: np.ndarray, threshold: float) -> dict[str, float]:
    """The four metrics at ``threshold`` plus rows and positives (the reference profile's form)."""
    precision, recall = precision_recall(y, score, threshold)
    return {
        "roc_auc": roc_auc(y, score),
        "pr_auc": average_precision(y, score),
        "precision": precision,
        "recall": recall,
        "rows": int(len(y)),
        "positives": int(np.sum(y)),
    }


@dataclass(frozen=True)
class MetricInterval:
    """A metric's point value and percentile bootstrap interval (None where undefined)."""

    value: float | None
    low: float | None
    high: float | None

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> MetricInterval:
        return cls(doc.get("value"), doc.get("low"), doc.get("high"))


@dataclass(frozen=True)
class Performance:
    """Realised metrics of a day (or a district), or why they were not computed."""

    rows: int
    positives: int
    threshold: float
    evaluated: bool
    reason: str | None = None
    metrics: dict[str, MetricInterval] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Performance:
        return cls(
            rows=doc["rows"],
            positives=doc["positives"],
            threshold=doc["threshold"],
            evaluated=bool(doc["evaluated"]),
            reason=doc.get("reason"),
            metrics={m: MetricInterval.from_dict(v) for m, v in (doc.get("metrics") or {}).items()},
        )


def performance(
    y: np.ndarray, score: np.ndarray, threshold: float, config: DriftConfig, rng
) -> Performance:
    """Realised metrics with percentile bootstrap intervals, or why they were not computed."""
    y = np.asarray(y, int)
    score = np.asarray(score, float)
    n, positives = len(y), int(y.sum())
    if n < config.min_rows or min(positives, n - positives) < config.min_class_rows:
        return Performance(
            n,
            positives,
            threshold,
            evaluated=False,
            reason=(
                f"{n} rows with {positives} burglaries; need >= {config.min_rows} rows and "
                f">= {config.min_class_rows} of each class"
            ),
        )
    point = point_metrics(y, score, threshold)
    samples = {m: [] for m in METRICS}
    idx = rng.integers(0, n, size=(config.bootstrap, n))
    for row in idx:
        yb, sb = y[row], score[row]
        if yb.min() == yb.max():
            continue
        metrics = point_metrics(yb, sb, threshold)
        for m in METRICS:
            samples[m].append(metrics[m])
    alpha = (1 - config.confidence) / 2
    intervals = {}
    for m in METRICS:
        values = np.asarray(samples[m], float)
        values = values[np.isfinite(values)]
        low, high = np.quantile(values, [alpha, 1 - alpha]) if values.size else (math.nan, math.nan)
        intervals[m] = MetricInterval(rounded(point[m]), rounded(low), rounded(high))
    return Performance(n, positives, threshold, evaluated=True, metrics=intervals)


@dataclass(frozen=True)
class DistrictPerformance:
    """One police district's day: volume, burglary share, mean score, metrics when evaluable."""

    district: str
    rows: int
    burglary_share: float | None
    mean_p_burglary: float | None
    evaluated: bool
    metrics: dict[str, MetricInterval] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> DistrictPerformance:
        return cls(
            district=doc["district"],
            rows=doc["rows"],
            burglary_share=doc.get("burglary_share"),
            mean_p_burglary=doc.get("mean_p_burglary"),
            evaluated=bool(doc.get("evaluated")),
            metrics={m: MetricInterval.from_dict(v) for m, v in (doc.get("metrics") or {}).items()},
        )


def by_district(
    frame: pd.DataFrame, labels: np.ndarray, p: np.ndarray, threshold: float, config, rng
) -> list[DistrictPerformance]:
    """Per police district, with a quarter of the bootstrap samples (at least 50)."""
    if "district" not in frame.columns:
        return []
    district = frame["district"].astype("string").fillna(MISSING).to_numpy()
    small = replace(config, bootstrap=max(50, config.bootstrap // 4))
    out = []
    for name in sorted(set(district)):
        mask = district == name
        y, s = labels[mask], p[mask]
        perf = performance(y, s, threshold, small, rng)
        out.append(
            DistrictPerformance(
                district=str(name),
                rows=int(mask.sum()),
                burglary_share=rounded(float(y.mean())),
                mean_p_burglary=rounded(float(s.mean())),
                evaluated=perf.evaluated,
                metrics=perf.metrics,
            )
        )
    return out


def rounded(value: float, digits: int = 6) -> float | None:
    """``value`` rounded, or None when it is NaN or infinite (JSON has neither)."""
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None
