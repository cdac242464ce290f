"""One day against the reference: the report, and the verdict OK / WARN / ALERT with reasons.

Feature drift counts as a WARN when 30 % of the features drifted or any drifted strongly, an
ALERT when half did (or 30 % strongly); prediction drift, a burglary share outside ordinary
days, and realised performance below what ordinary reference days reach add their own reasons.
The report is typed; :meth:`DriftReport.to_dict` is its stored JSON form and
:meth:`DriftReport.from_dict` reads it back (also reports stored by earlier versions).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from superdan_assets.ml.drift.config import ALERT, LEVELS, OK, WARN, DriftConfig
from superdan_assets.ml.drift.feature_drift import (
    PREDICTION,
    FeatureDrift,
    categorical_drift,
    numeric_drift,
)
from superdan_assets.ml.drift.features import (
    CATEGORICAL_FEATURES,
    NUMERIC_FEATURES,
    checked_probabilities,
    drift_features,
    labels_of,
)
from superdan_assets.ml.drift.performance import (
    DistrictPerformance,
    Performance,
    by_district,
    performance,
)
from superdan_assets.ml.drift.profile import ReferenceProfile, null_quantile


@dataclass(frozen=True)
class LabelShareDrift:
    """The day's burglary share against the reference's and the range of ordinary days."""

    current: float
    reference: float
    rows: int
    p_value: float
    ordinary_day_range: tuple[float, float] | None
    drifted: bool

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> LabelShareDrift:
        span = doc.get("ordinary_day_range")
        return cls(
            current=doc["current"],
            reference=doc["reference"],
            rows=doc["rows"],
            p_value=doc["p_value"],
            ordinary_day_range=None if span is None else (span[0], span[1]),
            drifted=bool(doc["drifted"]),
        )


@dataclass(frozen=True)
class DriftReport:
    """One day against the reference; ``verdict`` is OK, WARN or ALERT, ``reasons`` say why."""

    day: str | None
    rows: int
    verdict: str
    reasons: list[str]
    notes: list[str]
    features: list[FeatureDrift]
    drift_share: float
    prediction: FeatureDrift | None
    label_share: LabelShareDrift | None
    performance: Performance | None
    reference_metrics: dict[str, float] | None
    by_district: list[DistrictPerformance]
    seconds: float

    @property
    def drifted_features(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (NaN/inf become null)."""
        return _clean(asdict(self) | {"drifted_features": self.drifted_features})

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> DriftReport:
        """A report from its :meth:`to_dict` form (extra keys, e.g. ``model_version``, ignored)."""
        prediction = doc.get("prediction")
        label_share = doc.get("label_share")
        perf = doc.get("performance")
        return cls(
            day=doc.get("day"),
            rows=doc["rows"],
            verdict=doc["verdict"],
            reasons=list(doc.get("reasons") or []),
            notes=list(doc.get("notes") or []),
            features=[FeatureDrift.from_dict(f) for f in doc.get("features") or []],
            drift_share=doc.get("drift_share", 0.0),
            prediction=FeatureDrift.from_dict(prediction) if prediction else None,
            label_share=LabelShareDrift.from_dict(label_share) if label_share else None,
            performance=Performance.from_dict(perf) if perf else None,
            reference_metrics=doc.get("reference_metrics"),
            by_district=[DistrictPerformance.from_dict(d) for d in doc.get("by_district") or []],
            seconds=doc.get("seconds", 0.0),
        )


def drift_report(
    frame: pd.DataFrame,
    reference: ReferenceProfile,
    probabilities: Sequence[float] | np.ndarray | None = None,
    *,
    threshold: float | None = None,
    day: str | None = None,
    config: DriftConfig | None = None,
) -> DriftReport:
    """Compare one day's ``crime_features`` rows (and the model's P(burglary) for them) with
    ``reference``. ``threshold`` defaults to the reference's (the model manifest's); labels
    come from the frame's ``label`` column when present."""
    started = time.perf_counter()
    config = config or DriftConfig()
    rng = np.random.default_rng(config.seed)
    threshold = reference.threshold if threshold is None else threshold
    reasons: list[tuple[str, str]] = []
    notes: list[str] = []
    n = len(frame)
    if n == 0:
        return DriftReport(
            day=day,
            rows=0,
            verdict=WARN,
            reasons=["WARN: no labelled rows for the day: nothing to compare"],
            notes=[],
            features=[],
            drift_share=0.0,
            prediction=None,
            label_share=None,
            performance=None,
            reference_metrics=reference.metrics,
            by_district=[],
            seconds=round(time.perf_counter() - started, 4),
        )
    # The order of the random draws below is part of the result (one seeded generator).
    features = drift_features(frame)
    drifts = [
        numeric_drift(c, features[c].to_numpy(float), reference.numeric[c], config, rng)
        for c in NUMERIC_FEATURES
        if c in reference.numeric
    ]
    drifts += [
        categorical_drift(c, features[c], reference.categorical[c], config, rng)
        for c in CATEGORICAL_FEATURES
        if c in reference.categorical
    ]
    share = sum(d.drifted for d in drifts) / len(drifts) if drifts else 0.0
    _feature_verdict(drifts, config, reasons, notes)

    p = None
    prediction = None
    if probabilities is not None:
        p = checked_probabilities(probabilities, n)
        if reference.prediction is not None:
            prediction = numeric_drift(
                "p_burglary", p, reference.prediction, config, rng, kind=PREDICTION
            )
            if prediction.drifted:
                level = ALERT if prediction.score > 2 * prediction.effective_threshold else WARN
                reasons.append(
                    (
                        level,
                        f"prediction drift: P(burglary) Wasserstein {prediction.score:.3f} > "
                        f"{prediction.effective_threshold:.3f} (mean "
                        f"{prediction.details.mean:.3f} vs reference "
                        f"{prediction.details.reference_mean:.3f})",
                    )
                )

    labels = labels_of(frame)
    label_share = None
    if labels is not None and reference.label_share is not None:
        label_share = _label_share_drift(labels, reference, config)
        if label_share.drifted:
            reasons.append(
                (
                    WARN,
                    f"burglary share {label_share.current:.3f} vs reference "
                    f"{label_share.reference:.3f} (binomial p = {label_share.p_value:.2g})",
                )
            )

    perf = None
    districts: list[DistrictPerformance] = []
    if labels is not None and p is not None and threshold is not None:
        perf = performance(labels, p, threshold, config, rng)
        if perf.evaluated and reference.metrics:
            reasons += _performance_reasons(perf, reference, config)
        elif not perf.evaluated:
            notes.append(f"realised performance not computed: {perf.reason}")
        districts = by_district(frame, labels, p, threshold, config, rng)

    verdict = max((level for level, _ in reasons), key=LEVELS.get, default=OK)
    return DriftReport(
        day=day,
        rows=n,
        verdict=verdict,
        reasons=[
            f"{level}: {text}" for level, text in sorted(reasons, key=lambda r: -LEVELS[r[0]])
        ],
        notes=notes,
        features=drifts,
        drift_share=round(share, 4),
        prediction=prediction,
        label_share=label_share,
        performance=perf,
        reference_metrics=reference.metrics,
        by_district=districts,
        seconds=round(time.perf_counter() - started, 4),
    )


def _feature_verdict(
    drifts: Sequence[FeatureDrift], config: DriftConfig, reasons: list, notes: list[str]
) -> None:
    """ALERT when half the features drifted (or 30 % strongly); WARN when 30 % drifted or any
    strongly (score >= ``strong_drift_ratio`` x threshold); otherwise only a note."""
    drifted = [d for d in drifts if d.drifted]
    if not drifted:
        return
    strong = [d for d in drifted if d.ratio >= config.strong_drift_ratio]
    share, strong_share = len(drifted) / len(drifts), len(strong) / len(drifts)
    listed = "; ".join(
        f"{d.feature} {d.statistic} {d.score:.3f} > {d.effective_threshold:.3f}"
        for d in sorted(drifted, key=lambda d: -d.ratio)
    )
    text = (
        f"{len(drifted)} of {len(drifts)} features drifted ({share:.0%}, "
        f"{len(strong)} strongly): {listed}"
    )
    if share >= config.drift_share_alert or strong_share >= config.drift_share_warn:
        reasons.append((ALERT, text))
    elif share >= config.drift_share_warn or strong:
        reasons.append((WARN, text))
    else:
        notes.append(text)


def _label_share_drift(
    labels: np.ndarray, reference: ReferenceProfile, config: DriftConfig
) -> LabelShareDrift:
    """Burglary share vs the reference: drifted when the change is material (> tolerance),
    statistically clear (binomial test) and outside the range of ordinary reference days."""
    k, n = int(labels.sum()), len(labels)
    ref = float(reference.label_share)
    p_value = float(stats.binomtest(k, n, min(max(ref, 1e-9), 1 - 1e-9)).pvalue)
    current = k / n
    null = (reference.daily_null or {}).get("label_share")
    tail = (1 - config.noise_quantile) / 2
    low, high = null_quantile(null, tail), null_quantile(null, 1 - tail)
    ordinary = low is not None and low <= current <= high
    drifted = (
        abs(current - ref) > config.label_share_tolerance
        and p_value < config.label_share_alpha
        and not ordinary
    )
    return LabelShareDrift(
        current=round(current, 6),
        reference=round(ref, 6),
        rows=n,
        p_value=p_value,
        ordinary_day_range=None if low is None else (low, high),
        drifted=bool(drifted),
    )


def _performance_reasons(
    perf: Performance, reference: ReferenceProfile, config: DriftConfig
) -> list[tuple[str, str]]:
    """WARN when a metric is below what ordinary reference days reach (their 1 - noise_quantile
    quantile, and at least ``performance_tolerance`` below the reference); ALERT when even the
    top of its bootstrap interval is."""
    out = []
    tol = config.performance_tolerance
    for metric in ("roc_auc", "pr_auc"):
        ref = (reference.metrics or {}).get(metric)
        m = perf.metrics[metric]
        if ref is None or m.value is None or m.high is None or not math.isfinite(ref):
            continue
        floor = ref - tol
        bad_day = null_quantile((reference.daily_null or {}).get(metric), 1 - config.noise_quantile)
        if bad_day is not None:
            floor = min(floor, bad_day)
        interval = f"{m.value:.3f} [{m.low:.3f}, {m.high:.3f}]"
        text = (
            f"{metric} {interval} is below {floor:.3f} "
            f"(reference {ref:.3f}; the worst ordinary reference days)"
        )
        if m.high < floor:
            out.append((ALERT, f"{text}, even at the top of its {config.confidence:.0%} interval"))
        elif m.value < floor:
            out.append((WARN, text))
    return out


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
