"""Train the model and its baselines on one period, evaluate them on a later one.

The protocol, and why:

* **Time split, never random.** The model will score incidents after the ones it learnt from,
  and the place-history features are only honest when the past predicts the future; a random
  split would let a training row and a test row of the same day and block explain each other.
  :func:`train_and_evaluate` refuses overlapping periods.
* **The threshold is chosen on the training side, from recent realised performance.** A later
  validation slice of the training window (the last ``validation_days``) is held out, a model
  fitted on the rest scores it, and the policy of
  :func:`~superdan_assets.ml.metrics.choose_threshold` picks the threshold on its most recent
  ``threshold_days`` (:func:`choose_recent_threshold`; the choice and its evidence go to the
  manifest). The final model is then refitted on the whole training window. The test period is
  touched once, by the final models, for metrics only.
* **Baselines in the same run**, on the same rows: the class prior and the original project's
  protocol, so every registered model says how much better than them it is.
"""

from __future__ import annotations

import os

# OpenMP reads its wait policy once, when sklearn/lightgbm load it: the default (active
# spinning) made multi-threaded boosting 25-800x slower on these shared machines (GUIDE
# section 5). Set here, at import, before anything below imports sklearn or lightgbm;
# setdefault keeps an explicit choice of the caller.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from superdan_assets.ml import metrics
from superdan_assets.ml.baselines import build_prior_baseline, build_seed_protocol_baseline
from superdan_assets.ml.defaults import DEFAULT_RECALL_MARGIN, DEFAULT_THRESHOLD_DAYS
from superdan_assets.ml.labels import (
    FEATURE_ROW_COLUMNS,
    FEATURE_ROW_DTYPES,
    LABEL_COLUMN,
    MODEL_INPUT_COLUMNS,
    build_feature_rows,
    check_feature_rows,
)
from superdan_assets.ml.model import (
    default_threads,
    feature_importances,
    fit_model,
    resolve_params,
)
from superdan_assets.ml.recency import apply_window

Progress = Callable[[str], None]

#: Days at the end of the training window scored by a model fitted without them.
DEFAULT_VALIDATION_DAYS = 180
#: Slices recorded as evidence next to the chosen one (days before the holdout).
EVIDENCE_SLICES = (28, 56, 90, 180)
#: Fewer burglaries than this in the recent slice: widen it to the whole validation slice.
MIN_THRESHOLD_POSITIVES = 30
#: The validation slice never takes more than this share of the training rows (short windows).
MAX_VALIDATION_FRACTION = 0.25
MODEL_NAME = "lightgbm_place_history"


@dataclass
class TrainingResult:
    """Everything a training run produces; ``manifest`` goes to ``artifact.save_model``."""

    pipeline: Pipeline
    manifest: dict[str, Any]
    threshold: float
    #: ``{"model": {...}, "baselines": {"prior": {...}, "seed_protocol": {...}}}``, each
    #: :func:`~superdan_assets.ml.metrics.evaluate` on the test period.
    metrics: dict[str, Any]
    feature_importances: dict[str, float]
    #: ``{"pr": {name: pr_curve}, "calibration": {name: calibration}}`` for the plots, name in
    #: ``model``, ``prior``, ``seed_protocol``.
    curves: dict[str, dict[str, Any]]
    baselines: dict[str, Pipeline] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return str(self.manifest["version"])


def _noop(_: str) -> None:
    """Progress sink that drops the message."""


def as_feature_rows(frame: pd.DataFrame, where: str = "frame") -> pd.DataFrame:
    """``crime_features`` rows from either a canonical raw frame or feature rows.

    A frame with a ``label`` column is taken as already-labelled feature rows (the
    ``crime_features`` asset; columns beyond the schema are dropped, dtypes enforced); any
    other frame is a canonical raw frame and is labelled and filtered here
    (:func:`~superdan_assets.ml.labels.build_feature_rows`). Rows come back sorted by date.
    """
    if LABEL_COLUMN not in frame.columns:
        return build_feature_rows(frame)
    missing = [c for c in FEATURE_ROW_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{where}: labelled rows lack column(s) {missing}")
    if frame[LABEL_COLUMN].isna().any():
        raise ValueError(f"{where}: {int(frame[LABEL_COLUMN].isna().sum())} row(s) have no label")
    rows = frame[FEATURE_ROW_COLUMNS].astype(FEATURE_ROW_DTYPES)
    check_feature_rows(rows, where)
    return rows.sort_values("date", kind="stable").reset_index(drop=True)


def split_holdout(frame: pd.DataFrame, holdout_days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(train, holdout)``: the last ``holdout_days`` calendar days of ``frame`` are held out.

    The cut is at midnight, so a day is never split. For "train on everything except the last
    weeks" (the container's ``train`` command). Both parts must be non-empty.
    """
    if holdout_days < 1:
        raise ValueError(f"holdout_days must be at least 1; got {holdout_days}")
    dates = pd.to_datetime(frame["date"])
    if dates.isna().all():
        raise ValueError("cannot split: no row has a date")
    cutoff = dates.max().normalize() + pd.Timedelta(days=1) - pd.Timedelta(days=holdout_days)
    later = (dates >= cutoff).to_numpy()
    train, holdout = frame.loc[~later], frame.loc[later]
    if train.empty:
        raise ValueError(
            f"holdout of {holdout_days} days from {cutoff.date()} leaves no training rows "
            f"(data spans {dates.min()} .. {dates.max()})"
        )
    return train.reset_index(drop=True), holdout.reset_index(drop=True)


def validation_split(
    rows: pd.DataFrame, validation_days: int = DEFAULT_VALIDATION_DAYS
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(fit, validation)``: the last ``validation_days`` of the training rows, at most
    :data:`MAX_VALIDATION_FRACTION` of them (so a short window still has rows to fit)."""
    dates = rows["date"]
    by_days = dates.max().normalize() + pd.Timedelta(days=1) - pd.Timedelta(days=validation_days)
    by_share = dates.quantile(1 - MAX_VALIDATION_FRACTION)
    cutoff = max(by_days, by_share)
    later = (dates >= cutoff).to_numpy()
    fit, validation = rows.loc[~later], rows.loc[later]
    if fit.empty or validation.empty:
        raise ValueError(
            f"cannot hold out a validation slice of {len(rows)} training rows spanning "
            f"{dates.min()} .. {dates.max()}: need rows on more than one date"
        )
    return fit.reset_index(drop=True), validation.reset_index(drop=True)


def example_incidents(rows: pd.DataFrame, n: int = 2) -> list[dict[str, Any]]:
    """A few held-out incidents of the city as a client would send them (the model's input
    fields, nulls left out): the deployment smoke-tests the endpoint with the city's own
    data and shows one in its "how to call" example."""
    located = rows[rows["latitude"].notna()] if rows["latitude"].notna().any() else rows
    picked = pd.concat(
        [located[located["label"] == 1].head(1), located[located["label"] == 0].head(n - 1)]
    )
    out = []
    for record in picked[list(MODEL_INPUT_COLUMNS)].to_dict("records"):
        incident = {}
        for key, value in record.items():
            if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
                continue
            if isinstance(value, pd.Timestamp):
                value = value.strftime("%Y-%m-%dT%H:%M:%S")
            elif isinstance(value, np.generic):
                value = value.item()
            incident[key] = value
        out.append(incident)
    return out


def _last_days(dates: pd.Series, days: int) -> np.ndarray:
    start = dates.max().normalize() + pd.Timedelta(days=1) - pd.Timedelta(days=days)
    return (dates >= start).to_numpy()


def choose_recent_threshold(
    rows: pd.DataFrame,
    scores: np.ndarray,
    min_recall: float = metrics.DEFAULT_MIN_RECALL,
    threshold_days: int = DEFAULT_THRESHOLD_DAYS,
    recall_margin: float = DEFAULT_RECALL_MARGIN,
) -> dict[str, Any]:
    """The policy's threshold on the most recent ``threshold_days`` of scored labelled rows.

    ``rows``/``scores``: the validation slice (the last days before the holdout) and the scores
    of a model fitted without it. The policy (highest precision among recall >= target) runs on
    the last ``threshold_days`` of them with target ``min_recall + recall_margin``; when that
    slice holds fewer than :data:`MIN_THRESHOLD_POSITIVES` burglaries, on the whole slice.
    Returns the threshold and the evidence for the manifest: the slice, the metrics at the
    threshold on it and on the whole validation slice, and the thresholds the other candidate
    slices would have given.
    """
    if recall_margin < 0:
        raise ValueError(f"recall_margin must be >= 0; got {recall_margin}")
    y = _labels(rows)
    target = min(1.0, min_recall + recall_margin)
    recent = _last_days(rows["date"], threshold_days)
    widened = int(y[recent].sum()) < MIN_THRESHOLD_POSITIVES
    if widened:
        recent = np.ones(len(rows), dtype=bool)
    threshold = metrics.choose_threshold(y[recent], scores[recent], target)
    candidates = {}
    span = (rows["date"].max().normalize() - rows["date"].min().normalize()).days + 1
    for days in EVIDENCE_SLICES:
        mask = _last_days(rows["date"], days)
        # A slice longer than the validation span would repeat the whole slice.
        if days <= span and int(y[mask].sum()) >= MIN_THRESHOLD_POSITIVES:
            candidates[f"{days}d"] = {
                "threshold": metrics.choose_threshold(y[mask], scores[mask], target),
                "rows": int(mask.sum()),
            }
    return {
        "threshold": threshold,
        "rule": "highest precision among thresholds with recall >= target_recall",
        "min_recall": min_recall,
        "recall_margin": recall_margin,
        "target_recall": target,
        "threshold_days": threshold_days,
        "widened_to_validation_slice": widened,
        "slice_window": _window(rows.loc[recent]),
        "slice_rows": int(recent.sum()),
        "slice_burglaries": int(y[recent].sum()),
        "at_threshold_on_slice": metrics.threshold_metrics(y[recent], scores[recent], threshold),
        "at_threshold_on_validation": metrics.threshold_metrics(y, scores, threshold),
        "candidate_slices": candidates,
    }


def data_fingerprint(rows: pd.DataFrame) -> str:
    """sha256 over the feature rows' content (order included): same data, same hash."""
    hashed = pd.util.hash_pandas_object(rows, index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()


def model_version(data_hash: str, params: dict[str, Any], now: datetime | None = None) -> str:
    """``YYYYMMDDTHHMMSS-<8 hex>``: when it was trained (UTC), and on what data and settings.

    The hash part is identical for identical training data and parameters, so two runs that
    should produce the same model are recognisable at a glance.
    """
    now = now or datetime.now(UTC)
    digest = hashlib.sha256(
        (data_hash + json.dumps(params, sort_keys=True, default=str)).encode()
    ).hexdigest()
    return f"{now:%Y%m%dT%H%M%S}-{digest[:8]}"


def _window(rows: pd.DataFrame) -> dict[str, str]:
    return {"start": rows["date"].min().isoformat(), "end": rows["date"].max().isoformat()}


def _labels(rows: pd.DataFrame) -> np.ndarray:
    return rows[LABEL_COLUMN].to_numpy(dtype="int64")


def _require_both_classes(rows: pd.DataFrame, what: str) -> None:
    labels = _labels(rows)
    if labels.min() == labels.max():
        only = "burglaries" if labels[0] == 1 else "thefts"
        raise ValueError(f"{what} has only {only} ({len(labels)} rows); need both classes")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _timed_fit(pipeline: Pipeline, rows: pd.DataFrame) -> float:
    start = time.perf_counter()
    pipeline.fit(rows, _labels(rows))
    return time.perf_counter() - start


def _timed_fit_model(rows: pd.DataFrame, params: dict[str, Any]) -> tuple[Pipeline, float]:
    """The model fitted on ``rows`` with its recency options (:func:`fit_model`), and seconds."""
    start = time.perf_counter()
    pipeline = fit_model(rows, params)
    return pipeline, time.perf_counter() - start


def _seed_protocol_threshold(pipeline: Pipeline, rows: pd.DataFrame, min_recall: float) -> float:
    """The forest's threshold from its out-of-bag scores: training-side, and no second fit.

    Why not the validation refit used for the main model: the forest is the slowest fit of the
    run and only a reference; its out-of-bag scores are honest predictions for the training
    rows (each from trees that did not see the row).
    """
    oob = pipeline.named_steps["model"].oob_decision_function_[:, 1]
    seen = ~np.isnan(oob)
    return metrics.choose_threshold(_labels(rows)[seen], oob[seen], min_recall)


def train_and_evaluate(
    train_raw: pd.DataFrame,
    test_raw: pd.DataFrame,
    params: dict[str, Any] | None = None,
    min_recall: float = metrics.DEFAULT_MIN_RECALL,
    seed: int = 0,
    progress: Progress | None = None,
    validation_days: int = DEFAULT_VALIDATION_DAYS,
    include_seed_protocol: bool = True,
    city: str | None = None,
    threshold_days: int = DEFAULT_THRESHOLD_DAYS,
    recall_margin: float = DEFAULT_RECALL_MARGIN,
) -> TrainingResult:
    """Fit the model (and the baselines) on ``train_raw``, evaluate on the later ``test_raw``.

    ``train_raw`` / ``test_raw``: canonical raw frames (any crime types; labelled and filtered
    here) or ``crime_features`` rows (with ``label``); see :func:`as_feature_rows`. Every
    training row must be earlier than every test row. ``params`` overrides
    :data:`~superdan_assets.ml.model.DEFAULT_PARAMS`; ``seed`` is the random state unless
    ``params`` sets one. ``include_seed_protocol=False`` skips the random-forest baseline
    (the slowest fit) for quick runs. ``city``: recorded in the manifest (the endpoint writes
    it into the incidents it scores; default: the rows' own ``city`` when they have one).
    """
    say = progress or _noop
    if city is None and "city" in train_raw.columns and train_raw["city"].nunique() == 1:
        city = str(train_raw["city"].iloc[0])
    train = as_feature_rows(train_raw, "training data")
    test = as_feature_rows(test_raw, "test data")
    if train.empty or test.empty:
        raise ValueError(
            f"need theft/burglary rows in both periods; got {len(train)} training and "
            f"{len(test)} test rows"
        )
    if not train["date"].max() < test["date"].min():
        raise ValueError(
            "training and test periods overlap: the last training row is at "
            f"{train['date'].max()}, the first test row at {test['date'].min()}; evaluate on a "
            "later period, never on a random split"
        )
    _require_both_classes(train, "the training period")
    resolved = resolve_params({"random_state": seed, **(params or {})})
    if resolved["n_jobs"] is None:
        resolved["n_jobs"] = default_threads()
    say(
        f"training on {len(train)} rows {_window(train)}, testing on {len(test)} rows "
        f"{_window(test)}"
    )
    timings: dict[str, float] = {}

    # 1. Threshold on the training side: fit on the earlier part, choose on the later slice.
    fit_rows, validation_rows = validation_split(train, validation_days)
    say(
        f"choosing the threshold on {len(validation_rows)} validation rows "
        f"{_window(validation_rows)}"
    )
    validation_model, timings["validation_fit_seconds"] = _timed_fit_model(fit_rows, resolved)
    validation_scores = validation_model.predict_proba(validation_rows)[:, 1]
    threshold_choice = choose_recent_threshold(
        validation_rows, validation_scores, min_recall, threshold_days, recall_margin
    )
    threshold = threshold_choice["threshold"]
    validation_metrics = threshold_choice["at_threshold_on_validation"]
    del validation_model

    # 2. The final model on the whole training window.
    say("fitting the final model on the whole training window")
    pipeline, timings["fit_seconds"] = _timed_fit_model(train, resolved)

    # 3. Baselines on the same rows, thresholds also from the training side.
    baselines: dict[str, Pipeline] = {"prior": build_prior_baseline()}
    timings["prior_fit_seconds"] = _timed_fit(baselines["prior"], train)
    # The prior scores every row the same, so its policy threshold is that score: it flags
    # every row (recall 1, precision = burglary rate).
    baseline_thresholds = {"prior": float(baselines["prior"].predict_proba(train.head(1))[0, 1])}
    if include_seed_protocol:
        say("fitting the original project's random-forest baseline")
        forest = build_seed_protocol_baseline(
            random_state=resolved["random_state"], n_jobs=resolved["n_jobs"], oob_score=True
        )
        timings["seed_protocol_fit_seconds"] = _timed_fit(forest, train)
        baselines["seed_protocol"] = forest
        baseline_thresholds["seed_protocol"] = _seed_protocol_threshold(forest, train, min_recall)

    # 4. The test period, once, for metrics only.
    say("scoring the test period")
    y_test = _labels(test)
    start = time.perf_counter()
    scores = {"model": pipeline.predict_proba(test)[:, 1]}
    timings["predict_seconds"] = time.perf_counter() - start
    for name, baseline in baselines.items():
        scores[name] = baseline.predict_proba(test)[:, 1]
    thresholds = {"model": threshold, **baseline_thresholds}
    evaluated = {
        name: metrics.evaluate(y_test, p, thresholds[name], min_recall)
        for name, p in scores.items()
    }
    results = {
        "model": evaluated["model"],
        "baselines": {name: evaluated[name] for name in baselines},
    }
    curves = {
        "pr": {name: metrics.pr_curve(y_test, p) for name, p in scores.items()},
        "calibration": {name: evaluated[name]["calibration"] for name in scores},
    }
    importances = feature_importances(pipeline)
    data_hash = data_fingerprint(train)
    manifest = {
        "version": model_version(data_hash, resolved),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model_name": MODEL_NAME,
        "city": city,
        "task": "P(burglary) for a theft-or-burglary incident",
        "threshold": threshold,
        "threshold_policy": {
            **{k: v for k, v in threshold_choice.items() if k != "threshold"},
            "chosen_on": f"the last {threshold_days} labelled days before the holdout "
            "(or the whole validation slice when they hold too few burglaries), scored by a "
            "model fitted without the validation slice",
            "validation_window": _window(validation_rows),
            "validation_rows": len(validation_rows),
            "validation_at_threshold": validation_metrics,
            "defaults": {
                "threshold_days": DEFAULT_THRESHOLD_DAYS,
                "recall_margin": DEFAULT_RECALL_MARGIN,
                "measured_by": "benchmarks/threshold_window.py on the validation years 2016 "
                "and 2017 (benchmarks/README.md)",
            },
        },
        "training_window": _window(train),
        "test_window": _window(test),
        "rows": {
            "train": len(train),
            # What the final model learnt from after ``window_days`` (all of them without one).
            "fitted": len(apply_window(train, resolved["window_days"])),
            "test": len(test),
            "validation": len(validation_rows),
        },
        "burglary_rate": {
            "train": float(_labels(train).mean()),
            "test": float(y_test.mean()),
        },
        # What the deployed threshold does on the test period: the numbers to quote.
        "headline": {
            "threshold": threshold,
            "precision_at_threshold": evaluated["model"]["precision_at_threshold"],
            "recall_at_threshold": evaluated["model"]["recall_at_threshold"],
            "min_recall": min_recall,
            "period": _window(test),
            "pr_auc": evaluated["model"]["pr_auc"],
        },
        "metrics": results,
        "input_columns": list(MODEL_INPUT_COLUMNS),
        "features": [str(n) for n in pipeline.named_steps["features"].get_feature_names_out()],
        "feature_importances": importances,
        "params": resolved,
        "seed": resolved["random_state"],
        "data_sha256": data_hash,
        "example_incidents": example_incidents(test),
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }
    say(
        "test PR-AUC: "
        + ", ".join(f"{name} {_fmt(evaluated[name]['pr_auc'])}" for name in evaluated)
    )
    return TrainingResult(
        pipeline=pipeline,
        manifest=manifest,
        threshold=threshold,
        metrics=results,
        feature_importances=importances,
        curves=curves,
        baselines=baselines,
        timings=timings,
    )
