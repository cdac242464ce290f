"""The model: one scikit-learn pipeline from a raw canonical incident frame to P(burglary).

Why one pipeline: the artifact pickles it whole, so training, the benchmark and the endpoint
compute the features with the very same fitted object and cannot disagree.

Why LightGBM: with the same features and comparable settings (600 trees, 127 leaves) it and
scikit-learn's HistGradientBoosting ranked equally well (PR-AUC 0.719 vs 0.718; that comparison
was scored on 2018 before selection was honest, and the learner was not re-selected since), but
HistGradientBoosting took 85 s to fit against 41-59 s on 2 shared cores, and it caps categorical
columns at 255 categories.

Where the settings come from: the winner of the rolling-origin selection on 2012-2017
(:mod:`superdan_assets.ml.selection`, record ``ml/selections/chicago.json``, read by
:mod:`superdan_assets.ml.selected`). Settings the selection did not search (its
``not_searched`` list) keep the values they had before it, set by hand.
"""

from __future__ import annotations

import os

# OpenMP reads its wait policy once, when sklearn/lightgbm load it: the default (active
# spinning) made multi-threaded boosting 25-800x slower on these shared machines (GUIDE
# section 5). setdefault keeps an explicit choice of the caller.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

from typing import Any

import lightgbm as lgb
from sklearn.pipeline import Pipeline

from superdan_assets.ml.features import (
    DEFAULT_CATEGORICAL_COLUMNS,
    DEFAULT_HISTORY_KEYS,
    IncidentFeatures,
)
from superdan_assets.ml.labels import LABEL_COLUMN
from superdan_assets.ml.recency import RECENCY_PARAMS, training_rows
from superdan_assets.ml.selected import selected_params

#: The selection's winner (history keys, categorical columns, boosting and recency settings).
_SELECTED: dict[str, Any] = selected_params()

#: The drift defences (ml/vocabulary.py, ml/areas.py), measured by benchmarks/vocabulary.py.
#: ``location_dropout`` was chosen on 2017 (trained 2012-2016): the rate that best serves
#: incidents without a location type (PR-AUC 0.414 vs 0.325 at 0) among those that cost complete
#: incidents at most 0.002 (0.7444 vs 0.7446). The second selection round starts from them.
DRIFT_DEFENCES: dict[str, Any] = {
    "learn_location_vocabulary": True,
    "location_dropout": 0.1,
    "map_unseen_areas": True,
}

#: Feature-transformer settings (see :class:`IncidentFeatures`), from the selection.
FEATURE_PARAMS: dict[str, Any] = {
    "history_keys": list(DEFAULT_HISTORY_KEYS),
    **{
        key: _SELECTED[key]
        for key in (
            "smoothing",
            "min_category_count",
            "max_categories",
            "rotations",
            "min_history_days",
        )
    },
    "categorical_columns": list(DEFAULT_CATEGORICAL_COLUMNS),
    "history_lag_days": _SELECTED["history_lag_days"],
    # A selection record made with the drift defences holds them; the first round's did not.
    **{key: _SELECTED.get(key, value) for key, value in DRIFT_DEFENCES.items()},
}

#: LightGBM settings, from the selection.
BOOSTING_PARAMS: dict[str, Any] = {
    key: _SELECTED[key]
    for key in (
        "n_estimators",
        "learning_rate",
        "num_leaves",
        "min_child_samples",
        "subsample",
        "subsample_freq",
        "colsample_bytree",
        "reg_lambda",
    )
}

#: Everything ``build_pipeline`` accepts, with defaults. ``n_jobs`` is the training thread
#: count (``None``: all CPUs); ``random_state`` fixes subsampling so a fit is reproducible.
#: ``window_days``/``recency_half_life_days`` (:mod:`superdan_assets.ml.recency`) act on the
#: training rows, not on the pipeline.
DEFAULT_PARAMS: dict[str, Any] = {
    **FEATURE_PARAMS,
    **BOOSTING_PARAMS,
    **{key: _SELECTED.get(key, off) for key, off in RECENCY_PARAMS.items()},
    "random_state": 0,
    "n_jobs": None,
}

_TUPLE_PARAMS = ("history_keys", "rotations", "categorical_columns")


def resolve_params(params: dict[str, Any] | None = None) -> dict[str, Any]:
    """``DEFAULT_PARAMS`` updated with ``params``; unknown keys are an error, not ignored.

    Why strict: a misspelt key ("num_leafs") silently falling back to the default would make
    a tuning run measure something else than it says.
    """
    params = dict(params or {})
    unknown = sorted(set(params) - set(DEFAULT_PARAMS))
    if unknown:
        raise ValueError(f"unknown model parameter(s) {unknown}; known: {sorted(DEFAULT_PARAMS)}")
    resolved = {**DEFAULT_PARAMS, **params}
    for key in _TUPLE_PARAMS:
        resolved[key] = list(resolved[key])
    return resolved


def default_threads() -> int:
    """Training threads: ``SUPERDAN_TRAIN_THREADS`` if set, else the CPU count."""
    configured = os.environ.get("SUPERDAN_TRAIN_THREADS")
    if configured:
        return max(1, int(configured))
    return os.cpu_count() or 1


def build_pipeline(params: dict[str, Any] | None = None) -> Pipeline:
    """An unfitted pipeline: canonical incident frame -> ``predict_proba[:, 1]`` = P(burglary).

    ``params`` overrides :data:`DEFAULT_PARAMS` (a JSON-friendly flat dict, stored in the
    manifest as is).
    """
    p = resolve_params(params)
    features = IncidentFeatures(
        **{key: tuple(p[key]) if key in _TUPLE_PARAMS else p[key] for key in FEATURE_PARAMS}
    )
    classifier = lgb.LGBMClassifier(
        objective="binary",
        **{key: p[key] for key in BOOSTING_PARAMS},
        random_state=p["random_state"],
        n_jobs=p["n_jobs"] if p["n_jobs"] is not None else default_threads(),
        # Same trees whatever the thread count, so a retrain reproduces its model.
        deterministic=True,
        force_row_wise=True,
        verbose=-1,
    )
    return Pipeline([("features", features), ("model", classifier)])


def fit_model(rows, params: dict[str, Any] | None = None) -> Pipeline:
    """A pipeline built from ``params`` and fitted on labelled ``rows`` with their recency.

    The one place a model is fitted (training, its validation fit, selection), so the training
    window and the recency weights (:mod:`superdan_assets.ml.recency`) apply the same way
    everywhere.
    """
    p = resolve_params(params)
    pipeline = build_pipeline(p)
    kept, weights = training_rows(rows, p)
    labels = kept[LABEL_COLUMN].to_numpy(dtype="int64")
    if labels.min() == labels.max():
        raise ValueError(
            f"the training rows left by window_days={p['window_days']} hold one class only "
            f"({len(kept)} rows); widen the window"
        )
    fit_params = {} if weights is None else {"model__sample_weight": weights}
    pipeline.fit(kept, labels, **fit_params)
    return pipeline


def set_threads(pipeline: Pipeline, n_threads: int) -> Pipeline:
    """Set the prediction threads of a fitted pipeline (the endpoint: one per worker).

    Why: LightGBM uses its own thread setting, not ``OMP_NUM_THREADS``; several workers each
    using all cores would fight over them and every request would slow down.
    """
    model = pipeline.named_steps["model"]
    if "n_jobs" in model.get_params():
        model.set_params(n_jobs=n_threads)
    return pipeline


def feature_importances(pipeline: Pipeline) -> dict[str, float]:
    """Share of total split gain per model input (sums to 1), largest first.

    Gain rather than split counts: a feature split often but with little gain (a fine-grained
    coordinate) says less about what the model relies on.
    """
    model = pipeline.named_steps["model"]
    names = list(pipeline.named_steps["features"].get_feature_names_out())
    if isinstance(model, lgb.LGBMClassifier):
        raw = model.booster_.feature_importance(importance_type="gain")
    else:
        raw = getattr(model, "feature_importances_", None)
        if raw is None:
            return {}
    total = float(sum(raw)) or 1.0
    pairs = sorted(zip(names, raw, strict=True), key=lambda kv: (-kv[1], kv[0]))
    return {name: float(value) / total for name, value in pairs}
