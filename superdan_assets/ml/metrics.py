"""Held-out metrics for a burglary probability, and the decision-threshold policy.

All functions take ``y`` (1 = burglary, 0 = theft) and ``p`` (predicted P(burglary)) for the
same rows, and return plain Python numbers/lists so the result goes straight into a JSON
manifest or Dagster metadata.

Why PR-AUC and the metrics at the deployed threshold lead: burglaries are the minority (about
15 %), so ROC-AUC looks good for weak models; the original project's question was "if we must
catch at least 60 % of burglaries, how many of our alerts are right?". That question is answered
by precision and recall *at the threshold chosen before the period* (``at_threshold``), which is
what the deployed model does. "Precision at recall >= 0.6" read off a period's own curve picks
its best point with that period's labels: it is a statistic of the ranking, kept under the
``curve_`` keys and labelled as such, never an operating point anyone can deploy.
"""

from __future__ import annotations

import os

# Before sklearn loads its OpenMP runtime, which reads this once (why: see ml/model.py).
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

#: The original project's decision policy: catch at least this share of burglaries.
DEFAULT_MIN_RECALL = 0.6
_EPSILON = 1e-15


class ThresholdError(ValueError):
    """No threshold satisfies the policy (e.g. no burglaries at all in the rows)."""


def _validate(y, p) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype="float64").ravel()
    p = np.asarray(p, dtype="float64").ravel()
    if y.shape != p.shape:
        raise ValueError(f"y and p differ in length: {len(y)} vs {len(p)}")
    if len(y) == 0:
        raise ValueError("no rows to evaluate")
    if np.isnan(y).any() or not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("y must hold only 0 (theft) and 1 (burglary)")
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError("p must be probabilities in [0, 1] with no missing values")
    return y.astype(np.int64), p


def threshold_table(y, p) -> dict[str, np.ndarray]:
    """Precision and recall for every distinct score used as threshold (predict 1 if p >= t).

    Thresholds are in descending order. Computed directly (not through
    ``precision_recall_curve``) so every candidate threshold, its counts and the tie rules are
    explicit.
    """
    y, p = _validate(y, p)
    positives = int(y.sum())
    order = np.argsort(-p, kind="stable")
    sorted_p = p[order]
    sorted_y = y[order]
    # The last position of each run of equal scores: a threshold admits all rows with p >= t.
    last_of_run = np.r_[np.flatnonzero(np.diff(sorted_p) != 0), len(sorted_p) - 1]
    true_pos = np.cumsum(sorted_y)[last_of_run].astype("float64")
    predicted = (last_of_run + 1).astype("float64")
    recall = true_pos / positives if positives else np.full(len(true_pos), np.nan)
    return {
        "threshold": sorted_p[last_of_run],
        "precision": true_pos / predicted,
        "recall": recall,
        "true_positives": true_pos,
        "predicted_positives": predicted,
    }


def choose_threshold(y, p, min_recall: float = DEFAULT_MIN_RECALL) -> float:
    """The threshold with the highest precision among those with recall >= ``min_recall``.

    A row is predicted burglary when ``p >= threshold``. Ties in precision go to the higher
    recall (same share of right alerts, more burglaries caught), then to the higher threshold;
    so the result depends only on the data. Raises :class:`ThresholdError` when no threshold
    reaches ``min_recall`` (only possible when there are no burglaries in ``y``).
    """
    if not 0.0 < min_recall <= 1.0:
        raise ValueError(f"min_recall must be in (0, 1]; got {min_recall}")
    table = threshold_table(y, p)
    if np.isnan(table["recall"]).all():
        raise ThresholdError(
            "cannot choose a threshold: the rows contain no burglaries, so recall is undefined"
        )
    eligible = np.flatnonzero(table["recall"] >= min_recall - 1e-12)
    if len(eligible) == 0:
        raise ThresholdError(f"no threshold reaches recall >= {min_recall}")
    # lexsort: last key is primary. Highest precision, then highest recall, then threshold.
    best = eligible[
        np.lexsort(
            (
                -table["threshold"][eligible],
                -table["recall"][eligible],
                -table["precision"][eligible],
            )
        )[0]
    ]
    return float(table["threshold"][best])


def precision_at_recall(y, p, min_recall: float = DEFAULT_MIN_RECALL) -> float:
    """The best precision on the precision-recall curve among points with recall >= min_recall.

    This is a property of the ranking (which threshold is best is read off the same rows);
    the precision at a threshold chosen beforehand is in :func:`threshold_metrics`.
    """
    table = threshold_table(y, p)
    eligible = table["recall"] >= min_recall - 1e-12
    if not eligible.any():
        raise ThresholdError(f"no threshold reaches recall >= {min_recall}")
    return float(table["precision"][eligible].max())


def threshold_metrics(y, p, threshold: float) -> dict[str, Any]:
    """Precision, recall, F1 and the confusion matrix when predicting burglary at p >= t."""
    y, p = _validate(y, p)
    predicted = p >= threshold
    tp = int(np.sum(predicted & (y == 1)))
    fp = int(np.sum(predicted & (y == 0)))
    fn = int(np.sum(~predicted & (y == 1)))
    tn = int(np.sum(~predicted & (y == 0)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "threshold": float(threshold),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        # Rows are the truth, columns the prediction, order [theft, burglary] (sklearn's).
        "confusion_matrix": [[tn, fp], [fn, tp]],
        "true_negatives": tn,
        "false_positives": fp,
        "false_negatives": fn,
        "true_positives": tp,
    }


def calibration(y, p, n_bins: int = 10) -> dict[str, Any]:
    """Reliability bins (equal width on [0, 1]) and the expected calibration error.

    ECE = sum over bins of (rows in bin / rows) * |observed burglary rate - mean prediction|:
    how far, on average over rows, the probabilities are from what actually happened.
    """
    y, p = _validate(y, p)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Bin i holds edges[i] <= p < edges[i+1]; p == 1 goes into the last bin.
    index = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, n_bins - 1)
    bins = []
    ece = 0.0
    for i in range(n_bins):
        in_bin = index == i
        count = int(in_bin.sum())
        mean_predicted = float(p[in_bin].mean()) if count else None
        observed = float(y[in_bin].mean()) if count else None
        if count:
            ece += count / len(y) * abs(observed - mean_predicted)
        bins.append(
            {
                "lower": float(edges[i]),
                "upper": float(edges[i + 1]),
                "count": count,
                "mean_predicted": mean_predicted,
                "observed_rate": observed,
            }
        )
    return {"bins": bins, "expected_calibration_error": float(ece)}


def log_loss(y, p) -> float:
    """Mean negative log-likelihood, probabilities clipped away from 0 and 1."""
    y, p = _validate(y, p)
    q = np.clip(p, _EPSILON, 1 - _EPSILON)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))


def brier_score(y, p) -> float:
    """Mean squared error of the probability."""
    y, p = _validate(y, p)
    return float(np.mean((p - y) ** 2))


def _both_classes(y: np.ndarray) -> bool:
    return 0 < int(y.sum()) < len(y)


def evaluate(
    y, p, threshold: float, min_recall: float = DEFAULT_MIN_RECALL, n_bins: int = 10
) -> dict[str, Any]:
    """Every held-out metric of one model on one set of rows, JSON-ready.

    Headline: ``precision_at_threshold`` / ``recall_at_threshold``, at the ``threshold`` chosen
    before these rows were seen. ``curve_precision_at_min_recall`` and
    ``precision_at_recall_0_6`` are curve statistics (best point of these rows' own curve, at
    ``min_recall`` and at 0.6). Ranking metrics (ROC-AUC, PR-AUC, the curve statistics) are
    ``None`` when the rows hold a single class: they are undefined there, and NaN is not valid
    JSON.
    """
    y, p = _validate(y, p)
    both = _both_classes(y)
    at_threshold = threshold_metrics(y, p, threshold)
    curve_at_policy = precision_at_recall(y, p, min_recall) if both else None
    result = {
        "rows": len(y),
        "burglary_rate": float(y.mean()),
        # The headline: what the deployed threshold does on these rows.
        "threshold": float(threshold),
        "precision_at_threshold": at_threshold["precision"],
        "recall_at_threshold": at_threshold["recall"],
        "min_recall": float(min_recall),
        "roc_auc": float(roc_auc_score(y, p)) if both else None,
        "pr_auc": float(average_precision_score(y, p)) if both else None,
        # Curve statistics: the best point of these rows' own precision-recall curve.
        "curve_precision_at_min_recall": curve_at_policy,
        # Always at recall 0.6, whatever ``min_recall`` is, so the name never lies (it used to
        # follow ``min_recall``, and readers of the 0.6 key got nothing -> NaN).
        "precision_at_recall_0_6": (
            curve_at_policy
            if min_recall == DEFAULT_MIN_RECALL
            else precision_at_recall(y, p, DEFAULT_MIN_RECALL)
            if both
            else None
        ),
        "log_loss": log_loss(y, p),
        "brier": brier_score(y, p),
        "at_threshold": at_threshold,
        "calibration": calibration(y, p, n_bins),
    }
    if min_recall != DEFAULT_MIN_RECALL:
        result[f"precision_at_recall_{_key(min_recall)}"] = curve_at_policy
    return result


def _key(value: float) -> str:
    """0.6 -> "0_6": a metric-name-safe spelling of a number."""
    return f"{value:g}".replace(".", "_").replace("-", "m")


def pr_curve(y, p, max_points: int = 200) -> dict[str, list[float]]:
    """Precision-recall points for plotting, thinned to about ``max_points`` along recall."""
    table = threshold_table(y, p)
    recall = np.r_[0.0, table["recall"]]
    precision = np.r_[1.0, table["precision"]]
    if len(recall) > max_points:
        keep = np.unique(
            np.searchsorted(recall, np.linspace(0, recall[-1], max_points), side="left")
        )
        keep = np.unique(np.r_[keep, len(recall) - 1]).clip(0, len(recall) - 1)
        recall, precision = recall[keep], precision[keep]
    return {"recall": recall.tolist(), "precision": precision.tolist()}
