"""Street-risk model package: units, strict history, the NIJ measures, baselines, model, artifact."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from superdan_assets.ml.artifact import ModelIntegrityError, save_model
from superdan_assets.ml.street_risk.artifact import load_street_risk, save_street_risk
from superdan_assets.ml.street_risk.baselines import BaselineScorer
from superdan_assets.ml.street_risk.evaluation import day_scores, score_days
from superdan_assets.ml.street_risk.features import (
    FeatureBuilder,
    FeatureConfig,
    KernelConfig,
    weekday_of,
)
from superdan_assets.ml.street_risk.forecast import FORECAST_COLUMNS, forecast_day
from superdan_assets.ml.street_risk.history import Events, day_number
from superdan_assets.ml.street_risk.maps import risk_map_html, risk_map_png, top_table_markdown
from superdan_assets.ml.street_risk.metrics import HitTally, flagged_count, top_units
from superdan_assets.ml.street_risk.model import target_days_by_type
from superdan_assets.ml.street_risk.training import TrainingConfig, gate, train_street_risk
from superdan_assets.ml.street_risk.units import build_units
from superdan_assets_tests.ml.street_risk_data import generate_rows

SMALL = TrainingConfig(
    train_years=0.6,
    train_step=5,
    target_days=7,
    zero_fraction=0.3,
    params={"n_estimators": 40, "num_leaves": 15, "min_child_samples": 20},
)


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return generate_rows(days=420, n_blocks=400)


@pytest.fixture(scope="module")
def model(rows):
    return train_street_risk(rows, "2016-12-01", SMALL, n_jobs=1)


def _rows(records):
    frame = pd.DataFrame(records, columns=["date", "block", "latitude", "longitude", "label"])
    return frame.astype({"date": "datetime64[ns]", "block": "string", "label": "int8"})


def test_block_location_is_the_median_of_its_incidents():
    frame = _rows(
        [
            ("2018-01-01", "001XX A ST", 41.0, -87.0, 0),
            ("2018-01-02", "001XX A ST", 41.1, -87.1, 1),
            ("2018-01-03", "001XX A ST", 45.0, -80.0, 0),  # one mis-geocoded report
            ("2018-01-03", "002XX B ST", np.nan, np.nan, 0),
        ]
    )
    units = build_units(frame)
    assert units.kind == "block"
    assert list(units.keys) == ["001XX A ST", "002XX B ST"]
    assert units.latitude[0] == pytest.approx(41.1)
    assert np.isnan(units.latitude[1])


def test_a_city_without_blocks_gets_150_m_cells():
    frame = _rows(
        [
            ("2018-01-01", None, 41.8000, -87.7000, 0),
            ("2018-01-01", None, 41.8001, -87.7001, 0),  # ~14 m away: same cell
            ("2018-01-01", None, 41.8100, -87.7000, 0),  # ~1.1 km north: another cell
        ]
    )
    units = build_units(frame)
    assert units.kind == "cell"
    assert len(units) == 2
    events = Events.from_rows(frame, units)
    assert sorted(np.bincount(events.unit)) == [1, 2]


def test_nearest_refuses_points_far_from_every_unit():
    units = build_units(generate_rows(days=5, n_blocks=16))
    index, distance = units.nearest([units.latitude[3], 10.0], [units.longitude[3], 10.0], 300.0)
    assert index[0] == 3 and distance[0] < 1.0
    assert index[1] == -1


def test_top_units_breaks_ties_by_the_secondary_key():
    scores = np.array([1.0, 2.0, 1.0, 1.0])
    tie = np.array([5.0, 0.0, 9.0, 5.0])
    assert list(top_units(scores, 3, tie)) == [1, 2, 0]


def test_hit_rate_pai_and_pei_on_a_hand_example():
    tally = HitTally()
    actual = np.array([3.0, 0.0, 1.0, 0.0] + [0.0] * 96)  # 100 units
    k = flagged_count(100, 0.02)
    assert k == 2
    tally.add(np.array([2, 1]), actual, unplaced=1.0, k=k, n=100)  # hits 1 of 5 crimes
    summary = tally.summary()
    assert summary["hit_rate"] == pytest.approx(0.2)
    assert summary["pai"] == pytest.approx(10.0)
    assert summary["pei"] == pytest.approx(1 / 4)  # best two units hold 4 crimes


def test_baselines_count_only_days_before_the_forecast_day():
    frame = _rows(
        [
            ("2018-01-01", "A", 41.0, -87.0, 1),
            ("2018-01-20", "A", 41.0, -87.0, 1),
            ("2018-01-30", "B", 41.0, -87.01, 1),
            ("2018-02-01", "B", 41.0, -87.01, 1),  # the forecast day itself: never counted
        ]
    )
    units = build_units(frame)
    events = Events.from_rows(frame, units).of_type(1)
    scores = BaselineScorer(units, events, KernelConfig()).scores(day_number("2018-02-01"))
    assert list(scores["last_28_days"][0]) == [1.0, 1.0]  # Jan 1 is 31 days before
    assert list(scores["all_history"][0]) == [2.0, 1.0]
    # prospective (8 weeks): B's crime 2 days ago (week 0) weighs 1; A's 12 days ago (week 1)
    # 1/2 and 31 days ago (week 4) 1/5; A and B are ~840 m apart, beyond the 400 m radius.
    assert scores["prospective"][0] == pytest.approx([0.7, 1.0])
    near = _rows([("2018-01-30", "A", 41.0, -87.0, 1), ("2018-01-30", "B", 41.0, -87.001, 1)])
    near_units = build_units(near)
    near_scores = BaselineScorer(near_units, Events.from_rows(near, near_units)).scores(
        day_number("2018-02-01")
    )
    # ~84 m apart: each gets its own crime (1) plus the other's at 1/(1 + 84/50)
    assert near_scores["prospective"][0] == pytest.approx([1 + 1 / (1 + 83.9 / 50)] * 2, rel=1e-2)


def test_features_never_read_the_forecast_day(rows):
    day = pd.Timestamp("2016-09-01")
    units = build_units(rows)
    extra = rows[rows["date"].dt.normalize() == day].copy()
    busier = pd.concat([rows, extra, extra], ignore_index=True).sort_values("date")
    base = FeatureBuilder(units, Events.from_rows(rows, units)).day_features(day_number(day), 1)
    more = FeatureBuilder(units, Events.from_rows(busier, units)).day_features(day_number(day), 1)
    np.testing.assert_array_equal(base, more)


def test_theft_features_never_read_the_forecast_day(rows):
    # Theft has the day-of-week profile too: the same guarantee for it.
    day = pd.Timestamp("2016-09-03")
    units = build_units(rows)
    extra = rows[rows["date"].dt.normalize() == day].copy()
    busier = pd.concat([rows, extra, extra], ignore_index=True).sort_values("date")
    base = FeatureBuilder(units, Events.from_rows(rows, units)).day_features(day_number(day), 0)
    more = FeatureBuilder(units, Events.from_rows(busier, units)).day_features(day_number(day), 0)
    np.testing.assert_array_equal(base, more)


def test_weekday_profile_of_a_weekend_place_and_a_weekday_place():
    # Shop A has thefts on Saturdays only, office B on Mondays only (2018-01-06 a Saturday).
    saturdays = pd.date_range("2018-01-06", periods=10, freq="7D")
    mondays = pd.date_range("2018-01-01", periods=10, freq="7D")
    frame = _rows(
        [(str(d.date()), "A", 41.0, -87.0, 0) for d in saturdays]
        + [(str(d.date()), "B", 41.0, -87.01, 0) for d in mondays]
    )
    units = build_units(frame)
    builder = FeatureBuilder(units, Events.from_rows(frame, units))
    assert list(weekday_of([day_number("2018-01-06"), day_number("2018-01-08")])) == [5, 0]
    names = builder.names(0)
    assert "same_weekday_share" in names and "same_weekday_share" not in builder.names(1)

    def profile(day):
        x = builder.day_features(day_number(day), 0)
        return {n: list(x[:, names.index(n)]) for n in names}

    saturday = profile("2018-03-17")  # after both places' ten weeks
    assert saturday["same_weekday_52w"] == [10.0, 0.0]
    assert saturday["same_weekday_share"] == [1.0, 0.0]
    assert saturday["weekend_share"] == [1.0, 0.0]
    assert saturday["forecast_weekday"] == [5.0, 5.0]
    monday = profile("2018-03-19")
    assert monday["same_weekday_share"] == [0.0, 1.0]
    assert monday["same_weekday_52w"] == [0.0, 10.0]
    # Before A's last Saturday (2018-03-10) is counted: only days strictly before the forecast.
    assert profile("2018-03-10")["same_weekday_52w"] == [9.0, 0.0]


def test_target_days_per_type_are_checked():
    assert target_days_by_type(7) == {"burglary": 7, "theft": 7}
    assert target_days_by_type({"burglary": 28, "theft": 1}) == {"burglary": 28, "theft": 1}
    with pytest.raises(ValueError, match="missing \\['theft'\\]"):
        target_days_by_type({"burglary": 28})
    with pytest.raises(ValueError, match="at least 1 day"):
        target_days_by_type({"burglary": 28, "theft": 0})


def test_per_type_targets_train_on_their_own_horizon(rows):
    # Theft's target is the day's count; burglary's the 28-day mean: each booster learns a
    # daily rate, and the training days end where the longest horizon still fits the cutoff.
    config = TrainingConfig(
        train_years=0.6,
        train_step=5,
        target_days={"burglary": 28, "theft": 1},
        zero_fraction=0.3,
        params={"n_estimators": 40, "num_leaves": 15, "min_child_samples": 20},
    )
    fitted = train_street_risk(rows, "2016-12-01", config, n_jobs=1)
    assert max(fitted.training_days) <= day_number("2016-12-01") - 28
    assert fitted.feature_names["theft"][-1] == "forecast_weekday"
    assert "forecast_weekday" not in fitted.feature_names["burglary"]
    forecast = forecast_day(fitted, rows, "2016-12-10")
    for crime_type, label in (("burglary", 1), ("theft", 0)):
        past = rows[(rows["label"] == label) & (rows["date"] < "2016-12-10")]
        daily = len(past[past["date"] >= "2016-06-01"]) / 192  # the last half year's daily total
        total = forecast.loc[forecast.crime_type == crime_type, "expected_count"].sum()
        assert 0.5 * daily < total < 2.0 * daily


def test_forecast_ignores_rows_on_and_after_its_day(model, rows):
    day = pd.Timestamp("2017-01-15")
    before = rows[rows["date"] < day]
    one = forecast_day(model, before, day)
    burst = _rows([(day + pd.Timedelta(hours=2), before["block"].iloc[0], 41.85, -87.7, 1)] * 50)
    two = forecast_day(model, pd.concat([rows, burst], ignore_index=True), day)
    pd.testing.assert_frame_equal(one, two)
    assert dict(one.dtypes.astype(str)) == FORECAST_COLUMNS


def test_forecast_probability_is_one_minus_exp_of_the_expected_count(model, rows):
    forecast = forecast_day(model, rows, "2017-01-15")
    np.testing.assert_allclose(forecast["probability"], 1 - np.exp(-forecast["expected_count"]))
    for _crime_type, one in forecast.groupby("crime_type"):
        assert sorted(one["rank"]) == list(range(1, len(one) + 1))
        assert one["flagged_1pct"].sum() == flagged_count(len(one), 0.01)
        best = one.sort_values("rank")["expected_count"].to_numpy()
        assert np.all(np.diff(best) <= 1e-12)


def test_model_finds_the_hot_spots_it_was_trained_on(model, rows):
    days = pd.date_range("2016-12-05", "2017-02-20", freq="3D")
    summary = score_days(model, rows, days).summary()
    for crime_type in ("burglary", "theft"):
        # flagging 5 % of blocks at random would hit 5 % of crimes (PAI 1)
        assert summary[crime_type]["5pct"]["model"]["pai"] > 3.0
        assert 0 < summary[crime_type]["5pct"]["model"]["pei"] <= 1.0


def test_day_scores_match_a_direct_count(model, rows):
    day = pd.Timestamp("2017-01-20")
    forecast = forecast_day(model, rows, day)
    day_rows = rows[rows["date"].dt.normalize() == day]
    scores = day_scores(forecast, day_rows)
    flagged = set(forecast[(forecast.crime_type == "theft") & forecast.flagged_5pct]["unit"])
    thefts = day_rows[day_rows["label"] == 0]
    expected = thefts["block"].isin(flagged).mean()
    assert scores["theft"]["model"]["5pct"] == pytest.approx(expected)


def test_gate_fails_when_a_baseline_is_at_least_as_good(model, rows):
    board = score_days(model, rows, pd.date_range("2016-12-05", "2016-12-20", freq="5D"))
    tally = board.tallies["burglary"]["all_history"][0.01]
    tally.hits = tally.crimes  # an all-knowing baseline
    result = gate(board)
    assert not result.passed
    assert "burglary" in result.reason


def test_artifact_round_trip_and_refusals(model, tmp_path):
    target = tmp_path / "sr"
    manifest = save_street_risk(model, target, "2016-12-01", {"x": 1}, True, "ok")
    assert manifest["kind"] == "street_risk"
    assert manifest["version"].startswith("sr-20161201-")
    loaded, loaded_manifest = load_street_risk(target)
    assert loaded_manifest["sha256"] == manifest["sha256"]
    assert loaded.feature_names == model.feature_names

    (target / "model.joblib").write_bytes(b"tampered")
    with pytest.raises(ModelIntegrityError, match="sha256"):
        load_street_risk(target)

    classifier = tmp_path / "classifier"
    save_model({"not": "a street model"}, {"version": "v1", "threshold": 0.5}, classifier)
    with pytest.raises(ModelIntegrityError, match="not a 'street_risk'"):
        load_street_risk(classifier)
    assert json.loads((classifier / "model.json").read_text())["version"] == "v1"


def test_maps_show_the_flagged_places(model, rows):
    forecast = forecast_day(model, rows, "2017-01-15")
    png = risk_map_png(forecast, title="2017-01-15")
    assert png.startswith(b"\x89PNG")
    top = forecast[(forecast.crime_type == "burglary") & (forecast["rank"] == 1)]["unit"].iloc[0]
    html = risk_map_html(forecast, title="2017-01-15")
    assert top in html and "leaflet" in html.lower()
    # One self-contained file: Leaflet and jQuery inlined, no script or stylesheet from a CDN
    # (only the basemap tiles are fetched, when there is a network).
    import re

    assert not re.findall(r'<(?:script|link)[^>]+(?:src|href)="https?://', html)
    assert "L.circleMarker" in html and "jQuery" in html
    table = top_table_markdown(forecast, 20)
    assert table.count("\n| burglary |") == 20 and top in table


def test_feature_config_changes_are_refused_at_prediction(model, rows):
    units = build_units(rows)
    builder = FeatureBuilder(units, Events.from_rows(rows, units), FeatureConfig(location=True))
    with pytest.raises(ValueError, match="feature settings differ"):
        model.expected_counts(builder, day_number("2017-01-15"), "theft")


def test_a_city_without_blocks_is_forecast_and_scored_on_cells(model, rows):
    no_blocks = rows.assign(block=pd.Series(pd.NA, index=rows.index, dtype="string"))
    day = pd.Timestamp("2017-01-20")
    forecast = forecast_day(model, no_blocks, day)
    assert forecast["unit"].str.startswith("cell:").all()
    day_rows = no_blocks[no_blocks["date"].dt.normalize() == day]
    scores = day_scores(forecast, day_rows)
    flagged = forecast[(forecast.crime_type == "theft") & forecast.flagged_5pct]
    units = build_units(no_blocks[no_blocks["date"] < day])
    thefts = day_rows[day_rows["label"] == 0]
    keys = units.keys_of(thefts)
    assert scores["theft"]["model"]["5pct"] == pytest.approx(keys.isin(set(flagged["unit"])).mean())
    assert 0 < scores["theft"]["model"]["5pct"] <= 1
