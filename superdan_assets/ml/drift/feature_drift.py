"""One feature's drift against its reference profile, with a noise-aware threshold.

Numeric features: Wasserstein distance divided by the reference's scale, and PSI on the
reference's quantile bins (``DriftConfig.numeric_statistic`` picks the deciding one; always
Wasserstein for predictions). Categorical features: Jensen-Shannon distance of the category
shares, unseen categories pooled into ``__other__``. Each statistic's threshold is the largest
of the configured one, the ``noise_quantile`` of the statistic over samples of today's size
drawn from the reference, and the reference days' own variation (the daily null).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from superdan_assets.ml.drift.config import DriftConfig
from superdan_assets.ml.drift.distances import bin_shares, jensen_shannon_distance, psi
from superdan_assets.ml.drift.features import OTHER
from superdan_assets.ml.drift.profile import CategoricalProfile, NumericProfile, daily_noise

NUMERIC, CATEGORICAL, PREDICTION = "numeric", "categorical", "prediction"


@dataclass(frozen=True)
class NumericDetails:
    """Both numeric statistics (whichever decided), and the means and missing shares."""

    wasserstein_std: float
    psi: float
    psi_effective_threshold: float
    psi_drifted: bool
    mean: float
    reference_mean: float
    missing_share: float
    reference_missing_share: float


@dataclass(frozen=True)
class CategoricalDetails:
    """The categories whose share moved most (signed), and values the reference never had."""

    largest_share_changes: dict[str, float] = field(default_factory=dict)
    unseen_categories: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's drift: the deciding statistic, its thresholds and the verdict.

    ``noise_threshold`` is what ordinary days of this size reach (the larger of the sampling
    noise and the reference days' own variation); ``effective_threshold`` the larger of it and
    the configured ``threshold``. ``details`` is None (with a ``note``) when the day had no
    values for the feature.
    """

    feature: str
    kind: str  # "numeric" | "categorical" | "prediction"
    statistic: str
    score: float
    threshold: float
    noise_threshold: float
    effective_threshold: float
    drifted: bool
    rows: int
    details: NumericDetails | CategoricalDetails | None = None
    note: str | None = None

    @property
    def ratio(self) -> float:
        """score / effective threshold (> 1 means drifted)."""
        return self.score / self.effective_threshold if self.effective_threshold > 0 else math.inf

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> FeatureDrift:
        """The inverse of ``dataclasses.asdict`` (stored reports turn inf into null)."""
        details = doc.get("details") or None
        note = doc.get("note")
        if details and set(details) == {"note"}:  # reports stored before the typed details
            note, details = details["note"], None
        if details:
            kind = CategoricalDetails if "unseen_categories" in details else NumericDetails
            details = kind(**details)
        inf = math.inf
        return cls(
            feature=doc["feature"],
            kind=doc["kind"],
            statistic=doc["statistic"],
            score=doc["score"],
            threshold=doc["threshold"],
            noise_threshold=inf if doc["noise_threshold"] is None else doc["noise_threshold"],
            effective_threshold=(
                inf if doc["effective_threshold"] is None else doc["effective_threshold"]
            ),
            drifted=doc["drifted"],
            rows=doc["rows"],
            details=details,
            note=note,
        )


def _no_values(feature: str, kind: str, statistic: str, threshold: float) -> FeatureDrift:
    return FeatureDrift(
        feature, kind, statistic, 0.0, threshold, math.inf, math.inf, False, 0, note="no values"
    )


def numeric_drift(
    feature: str,
    values: np.ndarray,
    ref: NumericProfile,
    config: DriftConfig,
    rng,
    *,
    kind: str = NUMERIC,
) -> FeatureDrift:
    """Wasserstein/std and PSI of ``values`` against ``ref``; ``config.numeric_statistic`` decides
    (always Wasserstein for predictions)."""
    values = np.asarray(values, float)
    finite = values[np.isfinite(values)]
    n = finite.size
    threshold = config.prediction_threshold if kind == PREDICTION else config.numeric_threshold
    if n == 0:
        return _no_values(feature, kind, "wasserstein", threshold)
    grid = np.linspace(0, 1, len(ref.quantiles))
    edges = np.asarray(ref.psi_edges)
    w = float(ref.wasserstein(np.quantile(finite, grid)))
    p = float(psi(ref.psi_shares, bin_shares(finite, edges)))

    # Sampling noise: ``noise_samples`` days of size n drawn from the reference's quantiles.
    samples = np.interp(rng.random((config.noise_samples, n)), grid, ref.quantiles)
    sampled_w = ref.wasserstein(np.quantile(samples, grid, axis=1).T)
    idx = np.searchsorted(edges, samples, side="left")
    offsets = idx + np.arange(samples.shape[0])[:, None] * (len(edges) + 1)
    counts = np.bincount(offsets.ravel(), minlength=samples.shape[0] * (len(edges) + 1))
    sampled_psi = psi(ref.psi_shares, counts.reshape(samples.shape[0], -1) / n)
    noise_w = max(
        float(np.quantile(sampled_w, config.noise_quantile)),
        daily_noise(ref, "wasserstein", n, config),
    )
    noise_psi = max(
        float(np.quantile(sampled_psi, config.noise_quantile)), daily_noise(ref, "psi", n, config)
    )
    effective_w = max(threshold, noise_w)
    effective_psi = max(config.psi_threshold, noise_psi)

    if config.numeric_statistic == "psi" and kind != PREDICTION:
        statistic, score, thr, noise, effective = (
            "psi",
            p,
            config.psi_threshold,
            noise_psi,
            effective_psi,
        )
    else:
        statistic, score, thr, noise, effective = "wasserstein", w, threshold, noise_w, effective_w
    return FeatureDrift(
        feature=feature,
        kind=kind,
        statistic=statistic,
        score=round(score, 6),
        threshold=thr,
        noise_threshold=round(noise, 6),
        effective_threshold=round(effective, 6),
        drifted=bool(score > effective),
        rows=int(n),
        details=NumericDetails(
            wasserstein_std=round(w, 6),
            psi=round(p, 6),
            psi_effective_threshold=round(effective_psi, 6),
            psi_drifted=bool(p > effective_psi),
            mean=round(float(finite.mean()), 6),
            reference_mean=round(ref.mean, 6),
            missing_share=round(float(1 - n / max(1, values.size)), 6),
            reference_missing_share=round(ref.missing_share, 6),
        ),
    )


def categorical_drift(
    feature: str, values: pd.Series, ref: CategoricalProfile, config: DriftConfig, rng
) -> FeatureDrift:
    """Jensen-Shannon distance of the day's category shares to ``ref`` (unseen -> ``__other__``)."""
    categories = list(ref.shares)
    known = set(categories)
    mapped = values.where(values.isin(known), OTHER)
    counts = mapped.value_counts().reindex(categories, fill_value=0).to_numpy(float)
    n = int(counts.sum())
    if n == 0:
        return _no_values(feature, CATEGORICAL, "jensen_shannon", config.categorical_threshold)
    expected = ref.expected_shares()
    current = counts / n
    score = float(jensen_shannon_distance(current, expected))
    simulated = rng.multinomial(n, expected, size=config.noise_samples) / n
    noise = max(
        float(np.quantile(jensen_shannon_distance(simulated, expected), config.noise_quantile)),
        daily_noise(ref, "jensen_shannon", n, config),
    )
    effective = max(config.categorical_threshold, noise)
    unseen = values[~values.isin(known)].value_counts()
    change = pd.Series(current - expected, index=categories)
    movers = change.reindex(change.abs().sort_values(ascending=False).index)[:5]
    return FeatureDrift(
        feature=feature,
        kind=CATEGORICAL,
        statistic="jensen_shannon",
        score=round(score, 6),
        threshold=config.categorical_threshold,
        noise_threshold=round(noise, 6),
        effective_threshold=round(effective, 6),
        drifted=bool(score > effective),
        rows=n,
        details=CategoricalDetails(
            largest_share_changes={k: round(float(v), 4) for k, v in movers.items()},
            unseen_categories={str(k): int(v) for k, v in unseen.head(10).items()},
        ),
    )
