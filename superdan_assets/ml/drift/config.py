"""Drift thresholds and knobs, and the three verdicts."""

from __future__ import annotations

from dataclasses import dataclass

OK, WARN, ALERT = "OK", "WARN", "ALERT"
#: Verdicts in order of severity.
LEVELS = {OK: 0, WARN: 1, ALERT: 2}


@dataclass(frozen=True)
class DriftConfig:
    """Thresholds and knobs. Defaults: 0.1 for every drift statistic, as Evidently uses."""

    numeric_threshold: float = 0.1  # Wasserstein / reference std
    psi_threshold: float = 0.1
    categorical_threshold: float = 0.1  # Jensen-Shannon distance (natural log)
    prediction_threshold: float = 0.1  # Wasserstein / reference std of P(burglary)
    numeric_statistic: str = "wasserstein"  # or "psi": which statistic decides numeric drift
    noise_quantile: float = 0.99
    noise_samples: int = 300
    drift_share_warn: float = 0.3
    drift_share_alert: float = 0.5
    strong_drift_ratio: float = 2.0  # score >= this x effective threshold is a strong drift
    performance_tolerance: float = 0.05  # metric drop (absolute) that matters
    label_share_tolerance: float = 0.05  # absolute change of the burglary share that matters
    label_share_alpha: float = 0.001  # and the binomial test must reject at this level
    min_rows: int = 50  # for realised performance
    min_class_rows: int = 5  # of each class, for realised performance
    bootstrap: int = 200
    confidence: float = 0.95
    seed: int = 0
    quantile_points: int = 101
    psi_bins: int = 10
    min_category_share: float = 0.0005  # rarer reference categories are pooled into __other__
    histogram_bins: int = 20
    min_daily_rows: int = 30  # reference days smaller than this are left out of the daily null

    def __post_init__(self) -> None:
        if self.numeric_statistic not in ("wasserstein", "psi"):
            raise ValueError(
                f"numeric_statistic must be 'wasserstein' or 'psi', got {self.numeric_statistic!r}"
            )
        if not 0 < self.drift_share_warn <= self.drift_share_alert <= 1:
            raise ValueError("need 0 < drift_share_warn <= drift_share_alert <= 1")
