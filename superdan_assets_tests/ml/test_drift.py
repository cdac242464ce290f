"""Drift reports: stable days are OK, shifted days are flagged, statistics match the references."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

from superdan_assets.ml import drift
from superdan_assets.ml.drift_plots import (
    plot_performance_over_time,
    plot_top_drifted_features,
    png_markdown,
)
from superdan_assets_tests.conftest import SHARED_DATA

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

LOCATIONS = ["STREET", "RESIDENCE", "APARTMENT", "SIDEWALK", "SMALL RETAIL STORE", "ALLEY"]
LOCATION_SHARES = [0.35, 0.2, 0.2, 0.1, 0.1, 0.05]
BURGLARY_RATE = {
    "STREET": 0.03,
    "RESIDENCE": 0.45,
    "APARTMENT": 0.4,
    "SIDEWALK": 0.03,
    "SMALL RETAIL STORE": 0.1,
    "ALLEY": 0.1,
}


def synthetic_days(
    first_day: str, days: int, rows: int, seed: int
) -> tuple[pd.DataFrame, np.ndarray]:
    """Feature rows whose burglary probability depends on the location type; and that probability."""
    rng = np.random.default_rng(seed)
    n = days * rows
    day = pd.Timestamp(first_day) + pd.to_timedelta(np.repeat(np.arange(days), rows), unit="D")
    location = rng.choice(LOCATIONS, size=n, p=LOCATION_SHARES)
    probability = np.clip(
        np.array([BURGLARY_RATE[x] for x in location]) + rng.normal(0, 0.02, n), 0.001, 0.999
    )
    frame = pd.DataFrame(
        {
            "date": day + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s"),
            "block": "001XX N STATE ST",
            "location_description": location,
            "domestic": rng.random(n) < 0.1,
            "beat": [f"{b:04d}" for b in rng.integers(111, 131, n)],
            "district": [f"{d:03d}" for d in rng.integers(1, 11, n)],
            "ward": [f"{w:02d}" for w in rng.integers(1, 21, n)],
            "community_area": [f"{c:02d}" for c in rng.integers(1, 31, n)],
            "latitude": rng.normal(41.85, 0.08, n),
            "longitude": rng.normal(-87.67, 0.06, n),
            "label": (rng.random(n) < probability).astype("int8"),
        }
    )
    return frame, probability


@pytest.fixture(scope="module")
def reference() -> drift.ReferenceProfile:
    frame, probability = synthetic_days("2017-01-01", 120, 250, seed=1)
    return drift.build_reference_profile(frame, probability, threshold=0.2)


def test_a_day_from_the_reference_distribution_is_ok(reference):
    day, probability = synthetic_days("2018-06-05", 1, 250, seed=7)
    report = drift.drift_report(day, reference, probability, day="2018-06-05")
    assert report.verdict == drift.OK, report.reasons
    assert report.performance.evaluated and report.performance.metrics["roc_auc"].low > 0.6
    assert report.label_share is not None and not report.label_share.drifted
    assert {d.district for d in report.by_district} == set(day["district"])
    json.dumps(report.to_dict())


def test_a_shifted_day_is_an_alert_with_reasons(reference):
    day, probability = synthetic_days("2018-06-05", 1, 250, seed=7)
    shifted = day.assign(
        latitude=day["latitude"] + 0.1,
        longitude=day["longitude"] - 0.1,
        location_description="RESIDENCE",
        district="001",
        date=day["date"].dt.normalize() + pd.Timedelta(hours=3),
    )
    report = drift.drift_report(shifted, reference, np.clip(probability * 2, 0, 1))
    assert report.verdict == drift.ALERT
    assert {"latitude", "longitude", "location_description", "district", "time_of_day"} <= set(
        report.drifted_features
    )
    assert report.prediction.drifted
    assert any("features drifted" in r for r in report.reasons)
    assert report.drift_share >= 0.5


def test_a_model_that_stopped_working_is_an_alert(reference):
    day, _ = synthetic_days("2018-06-05", 1, 300, seed=8)
    noise = np.random.default_rng(3).permutation(reference.prediction.quantiles * 3)[:300]
    report = drift.drift_report(day, reference, noise)
    assert report.verdict == drift.ALERT
    assert any(r.startswith("ALERT: roc_auc") for r in report.reasons)


def test_label_share_drift_warns(reference):
    day, probability = synthetic_days("2018-06-05", 1, 250, seed=9)
    flipped = day.assign(
        label=np.where(np.arange(len(day)) % 2 == 0, 1, day["label"]).astype("int8")
    )
    report = drift.drift_report(flipped, reference, probability)
    assert report.label_share.drifted
    assert any("burglary share" in r for r in report.reasons)


def test_small_or_one_class_days_skip_performance_with_a_reason(reference):
    day, probability = synthetic_days("2018-06-05", 1, 20, seed=7)
    report = drift.drift_report(day, reference, probability)
    assert not report.performance.evaluated and "need >=" in report.performance.reason
    empty = drift.drift_report(day.iloc[:0], reference, np.array([]))
    assert empty.verdict == drift.WARN and empty.rows == 0


def test_profile_round_trips_through_json(reference, tmp_path):
    path = reference.save(tmp_path / "reference.json")
    loaded = drift.ReferenceProfile.load(path)
    assert loaded == reference
    assert path.stat().st_size < 100_000  # compact: no rows, only summaries
    assert loaded.daily_null["roc_auc"] and loaded.numeric["latitude"].daily_null


def test_statistics_agree_with_scipy_and_scikit_learn():
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    score = np.round(rng.random(400) * 0.5 + y * 0.3, 2)  # many ties
    assert drift.roc_auc(y, score) == pytest.approx(roc_auc_score(y, score))
    assert drift.average_precision(y, score) == pytest.approx(average_precision_score(y, score))

    p, q = rng.dirichlet(np.ones(12)), rng.dirichlet(np.ones(12))
    assert drift.jensen_shannon_distance(p, q) == pytest.approx(jensenshannon(p, q))

    ref_values, day_values = rng.normal(0, 2, 20_000), rng.normal(0.5, 2, 300)
    profile = drift.numeric_profile(ref_values, drift.DriftConfig())
    result = drift.numeric_drift("x", day_values, profile, drift.DriftConfig(), rng)
    expected = wasserstein_distance(ref_values, day_values) / ref_values.std()
    assert result.details.wasserstein_std == pytest.approx(expected, abs=0.03)


def test_plots_are_png_bytes(reference):
    reports = []
    for i, seed in enumerate((11, 12, 13)):
        day, probability = synthetic_days(f"2018-06-0{i + 1}", 1, 250, seed=seed)
        reports.append(drift.drift_report(day, reference, probability, day=f"2018-06-0{i + 1}"))
    top = plot_top_drifted_features(reports[0])
    over_time = plot_performance_over_time([reports[0], reports[1].to_dict(), reports[2]])
    assert top.startswith(PNG_MAGIC) and over_time.startswith(PNG_MAGIC)
    assert png_markdown(top).startswith("![plot](data:image/png;base64,")


# -- typed results ----------------------------------------------------------------------------


def test_a_report_is_typed_all_the_way_down(reference):
    day, probability = synthetic_days("2018-06-05", 1, 250, seed=11)
    report = drift.drift_report(day, reference, probability, day="2018-06-05")
    assert all(isinstance(f, drift.FeatureDrift) for f in report.features)
    numeric = {f.feature: f for f in report.features if f.kind == "numeric"}
    categorical = {f.feature: f for f in report.features if f.kind == "categorical"}
    assert set(numeric) == set(drift.NUMERIC_FEATURES)
    assert all(isinstance(f.details, drift.NumericDetails) for f in numeric.values())
    assert all(isinstance(f.details, drift.CategoricalDetails) for f in categorical.values())
    assert isinstance(report.label_share, drift.LabelShareDrift)
    assert isinstance(report.performance, drift.Performance) and report.performance.evaluated
    assert set(report.performance.metrics) == set(drift.METRICS)
    auc = report.performance.metrics["roc_auc"]
    assert isinstance(auc, drift.MetricInterval) and auc.low <= auc.value <= auc.high
    assert all(isinstance(d, drift.DistrictPerformance) for d in report.by_district)
    assert sum(d.rows for d in report.by_district) == len(day)
    assert report.prediction.kind == "prediction" and report.prediction.details.mean > 0


def test_a_stored_report_reads_back_as_the_same_typed_report(reference):
    day, probability = synthetic_days("2018-06-05", 1, 250, seed=12)
    report = drift.drift_report(day, reference, probability, day="2018-06-05")
    stored = json.loads(json.dumps(report.to_dict()))  # as the asset writes it
    loaded = drift.DriftReport.from_dict(stored | {"model_version": "v1"})
    assert loaded.to_dict() == report.to_dict()
    assert loaded.performance.metrics["pr_auc"] == report.performance.metrics["pr_auc"]
    assert loaded.features == report.features


def test_a_feature_without_values_survives_storage_and_plots(reference):
    """Its thresholds are infinite, stored as null: reading them back must not break ratio
    (the asset's plot of a stored report raised a TypeError on them before)."""
    day, probability = synthetic_days("2018-06-05", 1, 250, seed=13)
    day = day.assign(latitude=np.nan)
    report = drift.drift_report(day, reference, probability, day="2018-06-05")
    latitude = next(f for f in report.features if f.feature == "latitude")
    assert latitude.note == "no values" and latitude.details is None and not latitude.drifted
    stored = json.loads(json.dumps(report.to_dict()))
    assert (
        next(f for f in stored["features"] if f["feature"] == "latitude")["effective_threshold"]
        is None
    )
    loaded = drift.DriftReport.from_dict(stored)
    assert next(f for f in loaded.features if f.feature == "latitude").ratio == 0.0
    assert plot_top_drifted_features(loaded).startswith(PNG_MAGIC)


def test_reports_stored_before_the_typed_results_still_load(reference):
    """The earlier dict form: ``details`` held a ``note``, unevaluated performance had no
    ``metrics`` and districts no ``metrics`` key."""
    day, probability = synthetic_days("2018-06-05", 1, 250, seed=14)
    doc = json.loads(json.dumps(drift.drift_report(day, reference, probability).to_dict()))
    doc["features"][0] = doc["features"][0] | {"details": {"note": "no values"}}
    doc["features"][0].pop("note")
    for district in doc["by_district"]:
        if not district["evaluated"]:
            district.pop("metrics")
    doc["performance"] = {
        "rows": 30,
        "positives": 2,
        "threshold": 0.2,
        "evaluated": False,
        "reason": "30 rows with 2 burglaries; need >= 50 rows",
    }
    loaded = drift.DriftReport.from_dict(doc)
    assert loaded.features[0].note == "no values" and loaded.features[0].details is None
    assert not loaded.performance.evaluated and loaded.performance.metrics == {}
    assert plot_performance_over_time([doc]).startswith(PNG_MAGIC)


# -- real data ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_reference():
    """2017 THEFT/BURGLARY rows as the reference; a location x estimated-time burglary-rate
    table learnt on 2016 stands in for the model (no model needed to test drift)."""
    path = SHARED_DATA / "chicago"
    if not (path / "crimes_2018.csv.gz").exists():
        pytest.skip(f"real Chicago export not found at {path} (../shared/data beside the checkout)")
    from superdan_assets.ml.labels import build_feature_rows
    from superdan_assets.sources.export import ExportSource

    source = ExportSource(path, cache_dir="/tmp/superdan-export-cache")
    fit = build_feature_rows(source.fetch(pd.Timestamp("2016-01-01"), pd.Timestamp("2017-01-01")))
    ref = build_feature_rows(source.fetch(pd.Timestamp("2017-01-01"), pd.Timestamp("2018-01-01")))
    keys = drift.drift_features(fit)[["location_description", "time_on_the_hour"]]
    prior = fit["label"].mean()
    stats = (
        fit["label"]
        .groupby([keys["location_description"], keys["time_on_the_hour"]])
        .agg(["sum", "count"])
    )
    rates = (stats["sum"] + 20 * prior) / (stats["count"] + 20)

    def predict(frame: pd.DataFrame) -> np.ndarray:
        x = drift.drift_features(frame)
        index = pd.MultiIndex.from_arrays([x["location_description"], x["time_on_the_hour"]])
        return rates.reindex(index).fillna(prior).to_numpy()

    profile = drift.build_reference_profile(ref, predict(ref), threshold=0.2)
    june = build_feature_rows(source.fetch(pd.Timestamp("2018-06-05"), pd.Timestamp("2018-06-06")))
    return profile, predict, june, len(ref)


@pytest.mark.realdata
def test_a_normal_2018_day_is_ok_against_2017_and_a_shifted_one_is_not(real_reference):
    profile, predict, day, reference_rows = real_reference
    assert 70_000 < reference_rows < 90_000 and 200 < len(day) < 300
    started = time.perf_counter()
    report = drift.drift_report(day, profile, predict(day), day="2018-06-05")
    assert time.perf_counter() - started < 2.0
    assert report.verdict == drift.OK, report.reasons
    assert report.performance.evaluated

    shifted = day.assign(
        latitude=day["latitude"] + 0.05,
        longitude=day["longitude"] - 0.05,
        date=day["date"] + pd.Timedelta(hours=6),
        district=day["district"].where(np.arange(len(day)) % 3 == 0, "011"),
    )
    flagged = drift.drift_report(shifted, profile, predict(shifted))
    assert flagged.verdict == drift.ALERT, flagged.reasons
    assert {"latitude", "longitude", "district"} <= set(flagged.drifted_features)
