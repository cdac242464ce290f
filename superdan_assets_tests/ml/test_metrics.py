"""Metrics on tiny cases worked out by hand, and the threshold policy."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from superdan_assets.ml.metrics import (
    ThresholdError,
    brier_score,
    calibration,
    choose_threshold,
    evaluate,
    log_loss,
    pr_curve,
    precision_at_recall,
    threshold_metrics,
    threshold_table,
)

# The classic four-row example: ROC-AUC 0.75, average precision 0.8333.
Y = [0, 0, 1, 1]
P = [0.1, 0.4, 0.35, 0.8]


def test_ranking_metrics_of_the_known_case():
    result = evaluate(Y, P, threshold=0.5)
    assert result["roc_auc"] == pytest.approx(0.75)
    # Thresholds 0.8: P=1 R=1/2; 0.4: P=2/3 R=1/2; 0.35: P=2/3 R=1 -> AP = 1/2*1 + 1/2*2/3.
    assert result["pr_auc"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert result["precision_at_recall_0_6"] == pytest.approx(2 / 3)
    assert result["rows"] == 4
    assert result["burglary_rate"] == 0.5


def test_probability_metrics_of_the_known_case():
    expected_log_loss = -(math.log(0.9) + math.log(0.6) + math.log(0.35) + math.log(0.8)) / 4
    assert log_loss(Y, P) == pytest.approx(expected_log_loss)
    assert brier_score(Y, P) == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)


def test_threshold_metrics_and_confusion_matrix():
    at = threshold_metrics(Y, P, 0.5)
    assert at["confusion_matrix"] == [[2, 0], [1, 1]]
    assert (at["precision"], at["recall"]) == (1.0, 0.5)
    assert at["f1"] == pytest.approx(2 / 3)
    # Predict burglary when p >= threshold: the boundary row counts as positive.
    assert threshold_metrics(Y, P, 0.35)["true_positives"] == 2


def test_calibration_bins_and_ece():
    result = calibration(Y, P, n_bins=2)
    low, high = result["bins"]
    assert low["count"] == 3 and high["count"] == 1
    assert low["mean_predicted"] == pytest.approx((0.1 + 0.4 + 0.35) / 3)
    assert low["observed_rate"] == pytest.approx(1 / 3)
    assert high["observed_rate"] == 1.0
    expected = 0.75 * abs(1 / 3 - 0.85 / 3) + 0.25 * abs(1.0 - 0.8)
    assert result["expected_calibration_error"] == pytest.approx(expected)
    # p == 1.0 lands in the last bin, not outside.
    assert calibration([1], [1.0], n_bins=4)["bins"][-1]["count"] == 1


def test_threshold_table_by_hand():
    table = threshold_table([1, 1, 0, 1, 0, 0], [0.9, 0.8, 0.7, 0.6, 0.3, 0.1])
    assert table["threshold"].tolist() == [0.9, 0.8, 0.7, 0.6, 0.3, 0.1]
    assert table["precision"].tolist() == pytest.approx([1, 1, 2 / 3, 3 / 4, 3 / 5, 1 / 2])
    assert table["recall"].tolist() == pytest.approx([1 / 3, 2 / 3, 2 / 3, 1, 1, 1])


def test_tied_scores_are_one_threshold():
    table = threshold_table([1, 0, 1], [0.5, 0.5, 0.2])
    assert table["threshold"].tolist() == [0.5, 0.2]
    assert table["precision"].tolist() == [0.5, 2 / 3]


@pytest.mark.parametrize(("min_recall", "expected"), [(0.6, 0.8), (0.9, 0.6), (0.3, 0.8)])
def test_threshold_policy_on_hand_made_scores(min_recall, expected):
    y = [1, 1, 0, 1, 0, 0]
    p = [0.9, 0.8, 0.7, 0.6, 0.3, 0.1]
    # min_recall 0.6: 0.8 (precision 1, recall 2/3) beats 0.6 (3/4, 1).
    # min_recall 0.9: only thresholds <= 0.6 reach recall 1; 0.6 is the most precise.
    # min_recall 0.3: 0.9 and 0.8 both have precision 1; 0.8 catches more.
    assert choose_threshold(y, p, min_recall) == expected


def test_precision_ties_go_to_the_higher_recall():
    y = [0, 1, 1, 0, 1, 1]
    p = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    # Precision 2/3 at 0.7 (recall 1/2) and at 0.4 (recall 1): the one catching more wins.
    assert choose_threshold(y, p, min_recall=0.5) == 0.4


def test_threshold_is_deterministic_under_row_order():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    p = np.round(rng.random(500), 2)  # many ties
    order = rng.permutation(500)
    assert choose_threshold(y, p) == choose_threshold(y[order], p[order])


def test_threshold_errors_are_clear():
    with pytest.raises(ThresholdError, match="no burglaries"):
        choose_threshold([0, 0, 0], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="min_recall"):
        choose_threshold([0, 1], [0.1, 0.2], min_recall=1.5)
    with pytest.raises(ValueError, match="differ in length"):
        choose_threshold([0, 1], [0.1])
    with pytest.raises(ValueError, match="probabilities"):
        choose_threshold([0, 1], [0.1, float("nan")])


def test_precision_at_recall_of_perfect_and_random_scores():
    assert precision_at_recall([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8], 0.6) == 1.0
    # A constant score flags everything: precision is the base rate.
    assert precision_at_recall([0, 1, 0, 0], [0.3] * 4, 0.6) == 0.25


def test_single_class_rows_give_none_not_nan_and_stay_json():
    result = evaluate([0, 0, 0], [0.1, 0.2, 0.3], threshold=0.5)
    assert result["roc_auc"] is None and result["pr_auc"] is None
    json.dumps(result, allow_nan=False)


def test_pr_curve_is_thinned_and_ends_at_full_recall():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 5000)
    p = rng.random(5000)
    curve = pr_curve(y, p, max_points=100)
    assert len(curve["recall"]) <= 101
    assert curve["recall"][0] == 0.0 and curve["recall"][-1] == 1.0
    assert curve["recall"] == sorted(curve["recall"])


def test_headline_is_precision_and_recall_at_the_given_threshold():
    result = evaluate(Y, P, threshold=0.5)
    # Only the 0.8 row reaches 0.5: one burglary of two caught, no false alarm.
    assert (result["precision_at_threshold"], result["recall_at_threshold"]) == (1.0, 0.5)
    assert result["threshold"] == 0.5
    assert result["at_threshold"]["precision"] == result["precision_at_threshold"]


@pytest.mark.parametrize("min_recall", [0.5, 0.6, 0.75, 1.0])
def test_curve_statistic_at_0_6_is_defined_whatever_the_policy_recall(min_recall):
    """It used to be keyed by ``min_recall``: with 0.5, the 0.6 key was missing (NaN)."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 400)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, 400), 0, 1)
    result = evaluate(y, p, threshold=0.5, min_recall=min_recall)
    assert result["precision_at_recall_0_6"] == pytest.approx(precision_at_recall(y, p, 0.6))
    assert result["curve_precision_at_min_recall"] == pytest.approx(
        precision_at_recall(y, p, min_recall)
    )
    assert result["min_recall"] == min_recall
    if min_recall < 0.6:
        # A looser recall requirement can only allow a better best point.
        assert result["curve_precision_at_min_recall"] >= result["precision_at_recall_0_6"]
    json.dumps(result, allow_nan=False)


def test_curve_statistics_are_none_for_a_single_class():
    result = evaluate([0, 0, 0], [0.1, 0.2, 0.3], threshold=0.25, min_recall=0.5)
    assert result["precision_at_recall_0_6"] is None
    assert result["curve_precision_at_min_recall"] is None
    assert result["recall_at_threshold"] == 0.0
