"""The pipeline, training protocol, baselines, artifact round trip and plots, on small data."""

from __future__ import annotations

import base64
import json
import re
import statistics
import time
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from superdan_assets.ml import plots
from superdan_assets.ml.artifact import load_model, save_model
from superdan_assets.ml.baselines import (
    SeedProtocolFeatures,
    build_prior_baseline,
    build_seed_protocol_baseline,
)
from superdan_assets.ml.labels import LABEL_COLUMN, build_feature_rows, label_incidents
from superdan_assets.ml.model import (
    DEFAULT_PARAMS,
    build_pipeline,
    feature_importances,
    resolve_params,
    set_threads,
)
from superdan_assets.ml.schema import to_canonical
from superdan_assets.ml.training import (
    as_feature_rows,
    model_version,
    split_holdout,
    train_and_evaluate,
    validation_split,
)
from superdan_assets_tests.ml.incidents import (
    FAST_PARAMS,
    canonical,
    incident,
    synthetic_incidents,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def raw_train() -> pd.DataFrame:
    return synthetic_incidents("2017-01-01", days=90, per_day=40, seed=1)


@pytest.fixture(scope="module")
def raw_test() -> pd.DataFrame:
    return synthetic_incidents("2017-04-01", days=20, per_day=40, seed=2)


@pytest.fixture(scope="module")
def fitted(raw_train):
    labelled = label_incidents(raw_train)
    return build_pipeline(FAST_PARAMS).fit(labelled, labelled[LABEL_COLUMN])


@pytest.fixture(scope="module")
def result(raw_train, raw_test):
    return train_and_evaluate(raw_train, raw_test, params=FAST_PARAMS, validation_days=20)


def test_unknown_params_are_refused():
    with pytest.raises(ValueError, match="num_leafs"):
        build_pipeline({"num_leafs": 7})
    assert resolve_params()["learning_rate"] == DEFAULT_PARAMS["learning_rate"]


def test_leak_columns_do_not_change_predictions(raw_train, raw_test, fitted):
    """Scrambling every leak column, at training and at prediction, changes nothing."""

    def scrambled(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.copy()
        n = len(out)
        out["iucr"] = "0486"
        out["description"] = "SOMETHING ELSE"
        out["fbi_code"] = "08B"
        out["arrest"] = ~out["arrest"].fillna(False)
        out["id"] = [str(10**6 + i) for i in range(n)]
        out["case_number"] = "XX000000"
        out["updated_on"] = pd.Timestamp("2030-01-01")
        return out

    expected = fitted.predict_proba(raw_test)[:, 1]
    np.testing.assert_array_equal(fitted.predict_proba(scrambled(raw_test))[:, 1], expected)
    # primary_type is the label itself: flipping it at prediction time changes nothing either.
    flipped = raw_test.copy()
    flipped["primary_type"] = np.where(flipped["primary_type"] == "THEFT", "BURGLARY", "THEFT")
    np.testing.assert_array_equal(fitted.predict_proba(flipped)[:, 1], expected)

    labelled = label_incidents(raw_train)
    refit = build_pipeline(FAST_PARAMS).fit(scrambled(labelled), labelled[LABEL_COLUMN])
    np.testing.assert_array_equal(refit.predict_proba(raw_test)[:, 1], expected)


def test_pipeline_accepts_raw_frames_feature_rows_and_bare_incidents(raw_test, fitted):
    rows = build_feature_rows(raw_test)
    by_raw = fitted.predict_proba(label_incidents(raw_test))[:, 1]
    by_rows = fitted.predict_proba(rows.drop(columns=[LABEL_COLUMN]))[:, 1]
    np.testing.assert_allclose(np.sort(by_raw), np.sort(by_rows))
    bare = to_canonical(
        pd.DataFrame({"date": ["2017-05-01T02:00:00"]}), "chicago", required=("date",)
    )
    p = fitted.predict_proba(bare)[:, 1]
    assert p.shape == (1,) and 0 < p[0] < 1


def test_fit_is_reproducible(raw_train, raw_test, fitted):
    labelled = label_incidents(raw_train)
    again = build_pipeline(FAST_PARAMS).fit(labelled, labelled[LABEL_COLUMN])
    np.testing.assert_array_equal(
        again.predict_proba(raw_test)[:, 1], fitted.predict_proba(raw_test)[:, 1]
    )


def test_artifact_round_trip_gives_identical_predictions(tmp_path, raw_test, fitted):
    manifest = {"version": "20180101T000000-abcdef12", "threshold": 0.4}
    save_model(fitted, manifest, tmp_path / "model")
    loaded = load_model(tmp_path / "model")
    np.testing.assert_array_equal(
        loaded.predict_proba(raw_test), fitted.predict_proba(raw_test)[:, 1]
    )
    set_threads(loaded.pipeline, 1)
    assert loaded.pipeline.named_steps["model"].get_params()["n_jobs"] == 1


def test_feature_importances_are_shares_over_named_features(fitted):
    importances = feature_importances(fitted)
    assert set(importances) == set(fitted.named_steps["features"].get_feature_names_out())
    assert sum(importances.values()) == pytest.approx(1.0)
    assert list(importances.values()) == sorted(importances.values(), reverse=True)


def test_prior_baseline_predicts_the_training_share(raw_train, raw_test):
    rows = build_feature_rows(raw_train)
    prior = build_prior_baseline().fit(rows, rows[LABEL_COLUMN])
    p = prior.predict_proba(raw_test)[:, 1]
    assert np.allclose(p, rows[LABEL_COLUMN].mean())


def test_seed_protocol_features_by_hand():
    places = ["STREET"] * 3 + ["RESIDENCE"] * 2 + ["APARTMENT"] * 2 + ["ALLEY"]
    rows = build_feature_rows(canonical([incident(location_description=p) for p in places]))
    # Two most frequent: STREET, then the RESIDENCE/APARTMENT tie broken by name.
    features = SeedProtocolFeatures(n_locations=2).fit(rows)
    assert features.locations_ == ["STREET", "APARTMENT"]
    new = canonical(
        [
            incident(
                date="2018-01-01T00:00:10",
                location_description="APARTMENT",
                latitude=41.9,
                longitude=-87.6,
            )
        ]
    )
    assert features.transform(new).tolist() == [[1514764810.0, 41.9, -87.6, 0.0, 1.0]]
    assert list(features.get_feature_names_out()) == [
        "epoch_seconds",
        "latitude",
        "longitude",
        "location=STREET",
        "location=APARTMENT",
    ]


def test_seed_protocol_baseline_learns_something(raw_train, raw_test):
    rows = build_feature_rows(raw_train)
    forest = build_seed_protocol_baseline(n_estimators=20, n_jobs=1).fit(rows, rows[LABEL_COLUMN])
    test = build_feature_rows(raw_test)
    p = forest.predict_proba(test)[:, 1]
    assert roc_auc_score(test[LABEL_COLUMN], p) > 0.6


def test_train_and_evaluate_returns_a_complete_result(result, raw_test):
    manifest = result.manifest
    assert re.fullmatch(r"\d{8}T\d{6}-[0-9a-f]{8}", manifest["version"])
    assert manifest["threshold"] == result.threshold
    assert set(result.metrics) == {"model", "baselines"}
    assert set(result.metrics["baselines"]) == {"prior", "seed_protocol"}
    assert result.metrics["model"]["pr_auc"] > result.metrics["baselines"]["prior"]["pr_auc"]
    assert manifest["rows"]["test"] == len(build_feature_rows(raw_test))
    assert manifest["training_window"]["end"] < manifest["test_window"]["start"]
    assert manifest["features"] == list(result.pipeline[0].get_feature_names_out())
    assert manifest["params"]["n_estimators"] == FAST_PARAMS["n_estimators"]
    assert set(result.curves["pr"]) == {"model", "prior", "seed_protocol"}
    # The threshold was chosen inside the training window.
    assert (
        manifest["threshold_policy"]["validation_window"]["end"]
        <= (manifest["training_window"]["end"])
    )
    # The headline is the deployed threshold's precision and recall on the test period.
    at = result.metrics["model"]["at_threshold"]
    assert manifest["headline"]["threshold"] == result.threshold
    assert manifest["headline"]["precision_at_threshold"] == at["precision"]
    assert manifest["headline"]["recall_at_threshold"] == at["recall"]
    assert manifest["headline"]["period"] == manifest["test_window"]
    json.dumps(manifest, allow_nan=False)


def test_a_different_policy_recall_keeps_every_metric_defined(raw_train, raw_test):
    other = train_and_evaluate(
        raw_train,
        raw_test,
        params=FAST_PARAMS,
        validation_days=20,
        min_recall=0.5,
        include_seed_protocol=False,
    )
    model = other.metrics["model"]
    assert model["precision_at_recall_0_6"] is not None
    assert model["curve_precision_at_min_recall"] == model["precision_at_recall_0_5"]
    assert other.manifest["headline"]["min_recall"] == 0.5
    json.dumps(other.manifest, allow_nan=False)


def test_artifact_of_a_training_run_loads(tmp_path, result, raw_test):
    saved = save_model(result.pipeline, result.manifest, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert loaded.version == saved["version"] == result.version
    assert loaded.threshold == result.threshold
    np.testing.assert_array_equal(
        loaded.predict_proba(raw_test), result.pipeline.predict_proba(raw_test)[:, 1]
    )


def test_threshold_and_model_do_not_depend_on_test_labels(raw_train, raw_test, result):
    flipped = raw_test.copy()
    flipped["primary_type"] = np.where(flipped["primary_type"] == "THEFT", "BURGLARY", "THEFT")
    other = train_and_evaluate(
        raw_train, flipped, params=FAST_PARAMS, validation_days=20, include_seed_protocol=False
    )
    assert other.threshold == result.threshold
    np.testing.assert_array_equal(
        other.pipeline.predict_proba(raw_test)[:, 1],
        result.pipeline.predict_proba(raw_test)[:, 1],
    )


def test_overlapping_periods_are_refused(raw_train):
    with pytest.raises(ValueError, match="overlap"):
        train_and_evaluate(raw_train, raw_train.tail(50), params=FAST_PARAMS)


def test_feature_rows_are_accepted_as_training_input(raw_train):
    rows = build_feature_rows(raw_train)
    pd.testing.assert_frame_equal(as_feature_rows(rows), rows)
    pd.testing.assert_frame_equal(as_feature_rows(raw_train), rows)
    with pytest.raises(ValueError, match="lack column"):
        as_feature_rows(rows.drop(columns=["beat"]))


def test_split_holdout_cuts_at_midnight():
    frame = pd.DataFrame(
        {
            "date": pd.to_datetime(
                ["2018-01-01 10:00", "2018-01-02 23:59", "2018-01-03 00:00", "2018-01-04 08:00"]
            )
        }
    )
    train, holdout = split_holdout(frame, holdout_days=2)
    assert train["date"].dt.day.tolist() == [1, 2]
    assert holdout["date"].dt.day.tolist() == [3, 4]
    with pytest.raises(ValueError, match="no training rows"):
        split_holdout(frame, holdout_days=10)


def test_validation_split_keeps_most_rows_for_fitting():
    rows = pd.DataFrame({"date": pd.date_range("2018-01-01", periods=100, freq="D")})
    fit, validation = validation_split(rows, validation_days=20)
    assert (len(fit), len(validation)) == (80, 20)
    # A window shorter than the validation days: at most a quarter goes to validation.
    fit, validation = validation_split(rows, validation_days=365)
    assert len(validation) == 25
    assert fit["date"].max() < validation["date"].min()


def test_model_version_is_stable_for_same_data_and_params():
    now = datetime(2018, 1, 2, 3, 4, 5, tzinfo=UTC)
    a = model_version("abc", {"x": 1}, now)
    assert a.startswith("20180102T030405-")
    assert a == model_version("abc", {"x": 1}, now)
    assert a != model_version("abc", {"x": 2}, now)


def test_plots_are_png_and_embed_as_markdown(result):
    for png in (
        plots.pr_curve_png(result),
        plots.calibration_png(result),
        plots.feature_importance_png(result),
    ):
        assert png.startswith(PNG_MAGIC)
    markdown = plots.png_to_markdown(plots.pr_curve_png(result), "PR [test]")
    match = re.fullmatch(r"!\[(.*)\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", markdown)
    assert match and match.group(1) == "PR (test)"
    assert base64.b64decode(match.group(2)).startswith(PNG_MAGIC)
    with pytest.raises(ValueError, match="PNG"):
        plots.png_to_markdown(b"GIF89a", "x")


def test_single_incident_scoring_stays_fast(raw_test, fitted):
    """Serving scores one incident per request: guard against per-call overheads creeping in.

    The bound is ten times the ~5 ms measured on a busy 2-core machine, so only a real
    regression (e.g. pandas string operations per call) fails it, not a slow neighbour.
    """
    set_threads(fitted, 1)
    rows = [raw_test.iloc[[i]] for i in range(25)]
    fitted.predict_proba(rows[0])
    timings = []
    for row in rows:
        start = time.perf_counter()
        fitted.predict_proba(row)
        timings.append(time.perf_counter() - start)
    assert statistics.median(timings) < 0.05


def _scored_days(days: int, per_day: int, seed: int, shift_from: int | None = None):
    """Rows over ``days`` days with scores; from day ``shift_from`` on, burglaries score lower
    (the recent days behave differently from the older ones)."""
    rng = np.random.default_rng(seed)
    dates = (
        pd.to_datetime("2017-01-01")
        + pd.to_timedelta(np.repeat(np.arange(days), per_day), unit="D")
        + pd.Timedelta(hours=12)
    )
    label = rng.integers(0, 2, len(dates))
    lift = np.where(np.arange(len(dates)) // per_day >= (shift_from or days), 0.15, 0.35)
    scores = np.clip(rng.uniform(0, 0.65, len(dates)) + label * lift, 0, 1)
    return pd.DataFrame({"date": dates, LABEL_COLUMN: label}), scores


def test_recent_threshold_is_the_policy_on_the_last_days_only():
    from superdan_assets.ml.metrics import choose_threshold
    from superdan_assets.ml.training import choose_recent_threshold

    rows, scores = _scored_days(days=120, per_day=40, seed=5, shift_from=92)
    choice = choose_recent_threshold(rows, scores, 0.6, threshold_days=28, recall_margin=0.0)
    recent = (rows["date"] >= "2017-04-03").to_numpy()
    assert choice["slice_rows"] == int(recent.sum()) == 28 * 40
    assert choice["threshold"] == choose_threshold(rows[LABEL_COLUMN][recent], scores[recent], 0.6)
    # The recent days score burglaries lower, so the whole slice's threshold would be higher
    # and miss the policy's recall on the recent days.
    whole = choose_recent_threshold(rows, scores, 0.6, threshold_days=120, recall_margin=0.0)
    assert whole["threshold"] > choice["threshold"]
    assert choice["at_threshold_on_slice"]["recall"] >= 0.6
    assert choice["slice_window"]["start"].startswith("2017-04-03")
    assert set(choice["candidate_slices"]) == {"28d", "56d", "90d"}
    assert choice["candidate_slices"]["28d"]["threshold"] == choice["threshold"]


def test_recall_margin_raises_the_target_and_lowers_the_threshold():
    from superdan_assets.ml.training import choose_recent_threshold

    rows, scores = _scored_days(days=60, per_day=40, seed=6)
    plain = choose_recent_threshold(rows, scores, 0.6, threshold_days=56, recall_margin=0.0)
    margin = choose_recent_threshold(rows, scores, 0.6, threshold_days=56, recall_margin=0.05)
    assert margin["target_recall"] == pytest.approx(0.65)
    assert margin["threshold"] <= plain["threshold"]
    assert margin["at_threshold_on_slice"]["recall"] >= 0.65
    with pytest.raises(ValueError, match="recall_margin"):
        choose_recent_threshold(rows, scores, 0.6, recall_margin=-0.1)


def test_a_recent_slice_with_too_few_burglaries_widens_to_the_validation_slice():
    from superdan_assets.ml.training import MIN_THRESHOLD_POSITIVES, choose_recent_threshold

    rows, scores = _scored_days(days=30, per_day=4, seed=7)
    choice = choose_recent_threshold(rows, scores, 0.6, threshold_days=3)
    assert rows[LABEL_COLUMN].tail(12).sum() < MIN_THRESHOLD_POSITIVES
    assert choice["widened_to_validation_slice"] is True
    assert choice["slice_rows"] == len(rows)


def test_manifest_records_the_threshold_choice(result):
    policy = result.manifest["threshold_policy"]
    assert policy["threshold_days"] > 0 and policy["target_recall"] >= policy["min_recall"]
    assert policy["slice_window"]["end"] <= result.manifest["training_window"]["end"]
    assert policy["at_threshold_on_slice"]["threshold"] == result.threshold
