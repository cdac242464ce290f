"""Recency options: a sliding training window and exponential recency weights.

They change which rows a fit learns from and how much each counts, relative to the last
training row, so the validation fit and the final fit apply the same rule.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from superdan_assets.ml.labels import build_feature_rows
from superdan_assets.ml.model import DEFAULT_PARAMS, fit_model, resolve_params
from superdan_assets.ml.recency import apply_window, recency_weights, training_rows
from superdan_assets.ml.training import train_and_evaluate
from superdan_assets_tests.ml.incidents import synthetic_incidents

SMALL = {"n_estimators": 15, "num_leaves": 7, "min_child_samples": 5, "n_jobs": 1}


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return build_feature_rows(synthetic_incidents("2016-01-01", 300, 12, seed=3))


def test_window_keeps_the_last_n_calendar_days(rows):
    kept = apply_window(rows, 30)
    last_day = rows["date"].max().normalize()
    assert kept["date"].min() >= last_day - pd.Timedelta(days=29)
    assert (kept["date"].dt.normalize() == last_day - pd.Timedelta(days=29)).any()
    # Every row of those 30 days, nothing else.
    expected = rows[rows["date"] >= last_day - pd.Timedelta(days=29)]
    assert len(kept) == len(expected) == 30 * 12
    assert apply_window(rows, None) is rows


def test_weights_halve_every_half_life_and_average_one():
    dates = pd.Series(pd.to_datetime(["2017-01-01", "2017-01-11", "2017-01-21", "2017-01-31"]))
    weights = recency_weights(dates, 10)
    assert weights.mean() == pytest.approx(1.0)
    assert weights / weights[-1] == pytest.approx([0.125, 0.25, 0.5, 1.0])
    assert recency_weights(dates, None) is None


def test_a_row_without_a_date_gets_the_oldest_weight():
    dates = pd.Series(pd.to_datetime(["2017-01-01", None, "2017-01-31"]))
    weights = recency_weights(dates, 30)
    assert weights[1] == pytest.approx(weights[0])
    assert weights[0] < weights[2]


@pytest.mark.parametrize("bad", [0, -5, float("nan"), "soon"])
def test_nonsense_recency_values_are_refused(rows, bad):
    with pytest.raises(ValueError, match="window_days must be a positive number"):
        apply_window(rows, bad)
    with pytest.raises(ValueError, match="recency_half_life_days must be a positive number"):
        recency_weights(rows["date"], bad)


def test_training_rows_apply_both(rows):
    kept, weights = training_rows(rows, {"window_days": 60, "recency_half_life_days": 15})
    assert len(kept) == 60 * 12
    assert len(weights) == len(kept) and weights[-1] > weights[0]


def test_recency_is_off_by_default_only_if_selection_said_so():
    from superdan_assets.ml.selected import selected_params

    selected = selected_params()
    assert DEFAULT_PARAMS["window_days"] == selected["window_days"]
    assert DEFAULT_PARAMS["recency_half_life_days"] == selected["recency_half_life_days"]


def test_the_window_drops_rows_from_the_fit_history_included(rows):
    model = fit_model(rows, {**SMALL, "window_days": 45})
    features = model.named_steps["features"]
    first_kept = rows["date"].max().normalize() - pd.Timedelta(days=44)
    assert pd.Timestamp(features.window_start_) >= first_kept
    full = fit_model(rows, SMALL).named_steps["features"]
    assert pd.Timestamp(full.window_start_) == rows["date"].min()


def test_recency_weights_reach_the_booster(rows):
    plain = fit_model(rows, SMALL)
    weighted = fit_model(rows, {**SMALL, "recency_half_life_days": 20.0})
    sample = rows.tail(200)
    assert not np.allclose(plain.predict_proba(sample), weighted.predict_proba(sample))
    # Same options, same model: the weights are deterministic.
    again = fit_model(rows, {**SMALL, "recency_half_life_days": 20.0})
    assert np.allclose(weighted.predict_proba(sample), again.predict_proba(sample))


def test_a_window_with_one_class_left_is_refused(rows):
    thefts_last = rows.copy()
    last_days = thefts_last["date"] >= thefts_last["date"].max().normalize()
    thefts_last.loc[last_days, "label"] = 0
    with pytest.raises(ValueError, match="one class only"):
        fit_model(thefts_last, {**SMALL, "window_days": 1})


def test_training_records_the_rows_the_window_left(rows):
    train = rows[rows["date"] < "2016-09-01"]
    test = rows[rows["date"] >= "2016-09-01"]
    result = train_and_evaluate(
        train, test, params={**SMALL, "window_days": 90}, include_seed_protocol=False
    )
    assert result.manifest["rows"]["train"] == len(train)
    assert result.manifest["rows"]["fitted"] == len(apply_window(train, 90)) < len(train)
    assert result.manifest["params"]["window_days"] == 90
    assert resolve_params({"recency_half_life_days": 10})["recency_half_life_days"] == 10
