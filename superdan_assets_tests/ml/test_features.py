"""The feature transformer: each feature against a value worked out by hand, no look-ahead."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pandas as pd
import pytest

from superdan_assets.ml.features import (
    IncidentFeatures,
    daypart,
    expanding_counts,
    parse_block,
    prepare_incidents,
    time_features,
)
from superdan_assets.ml.labels import build_feature_rows
from superdan_assets.ml.schema import to_canonical
from superdan_assets_tests.ml.incidents import canonical, incident, synthetic_incidents


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        ("045XX S MARSHFIELD AVE", (4500.0, "S MARSHFIELD AVE", "S")),
        ("0000X E ONTARIO ST", (0.0, "E ONTARIO ST", "E")),
        ("001XX  n  state st", (100.0, "N STATE ST", "N")),
        ("100XX BROADWAY", (10000.0, "BROADWAY", None)),
    ],
)
def test_block_is_parsed_into_hundred_block_street_and_direction(block, expected):
    assert parse_block(block) == expected


def test_unparseable_block_keeps_the_text_as_street():
    number, street, direction = parse_block("O'HARE AIRPORT")
    assert math.isnan(number)
    assert (street, direction) == ("O'HARE AIRPORT", None)


@pytest.mark.parametrize(
    "block",
    ["1" + "X" * 400 + " S STATE ST", "9" * 5000 + "XX S STATE ST", "0" * 9 + "1" + "X" * 9 + " A"],
)
def test_a_block_number_no_street_has_is_unknown_not_an_overflow(block):
    number, street, direction = parse_block(block)
    assert math.isnan(number)
    assert direction == (None if street == "A" else "S")
    assert parse_block("0" * 400 + "45XX S STATE ST")[0] == 4500.0  # leading zeros are free


def test_coordinates_off_the_globe_are_no_place():
    prepared = prepare_incidents(
        pd.DataFrame({"latitude": [41.88, 1e308, 91.0, np.nan], "longitude": [-87.63, 0.0, 0, 0]})
    )
    assert prepared["point"][0] == "4188000:-8763000"
    assert list(prepared["point"][1:]) == [None, None, None]
    assert list(prepared["cell"][1:]) == [None, None, None]


def test_a_history_key_no_training_row_had_gives_zero_history_not_an_error():
    """A city (or a window) without blocks: the block tables are empty, scoring still works."""
    train = synthetic_incidents("2017-01-01", days=30, per_day=20, seed=3).assign(block=None)
    labels = (train["primary_type"] == "BURGLARY").astype(int)
    features = IncidentFeatures(min_category_count=1).fit(train, labels)
    assert len(features.history_["block"][1]) == 0
    scored = features.transform(train.head(3).assign(block="045XX S MARSHFIELD AVE"))
    assert (scored["history_block_per_day"] == 0).all()
    assert np.isfinite(scored["history_block_burglary_share"]).all()


def test_time_features_by_hand():
    dates = pd.Series(
        pd.to_datetime(["2017-03-05 14:30:00", "2016-01-01 00:00:00", "2018-06-01 12:00:00"])
    )
    f = time_features(dates)
    # 2017-03-05 is a Sunday (weekday 6), day 31 + 28 + 5 = 64 of a 365-day year.
    assert f["hour"].tolist() == [14, 0, 12]
    assert f["minute"].tolist() == [30, 0, 0]
    assert f["time_of_day"][0] == pytest.approx((14 * 60 + 30) / 1440)
    assert f["weekday"].tolist() == [6, 4, 4]
    assert f["month"].tolist() == [3, 1, 6]
    assert f["day_of_month"].tolist() == [5, 1, 1]
    assert f["day_of_year_sin"][0] == pytest.approx(math.sin(2 * math.pi * 63 / 365))
    assert f["day_of_year_cos"][0] == pytest.approx(math.cos(2 * math.pi * 63 / 365))
    assert (f["day_of_year_sin"][1], f["day_of_year_cos"][1]) == pytest.approx((0.0, 1.0))
    assert f["on_the_hour"].tolist() == [0, 1, 1]
    assert f["on_the_quarter_hour"].tolist() == [1, 1, 1]
    assert f["midnight"].tolist() == [0, 1, 0]
    assert f["noon"].tolist() == [0, 0, 1]
    assert f["first_of_month_midnight"].tolist() == [0, 1, 0]


def test_missing_time_gives_nan_not_a_flag():
    f = time_features(pd.Series(pd.to_datetime([None, "2017-01-01 00:00"])))
    for name, values in f.items():
        assert np.isnan(values[0]), name


def test_expanding_counts_see_only_strictly_earlier_rows():
    keys = pd.Series(["A", "A", "B", "A", "A", None], dtype="string")
    times = pd.to_datetime(
        [
            "2017-01-01 10:00",
            "2017-01-02 10:00",
            "2017-01-02 10:00",
            "2017-01-03 10:00",
            "2017-01-03 10:00",
            "2017-01-04 10:00",
        ]
    ).to_numpy()
    labels = np.array([1.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    n, s = expanding_counts(keys, times, labels)
    # Rows 3 and 4 share a moment: neither sees the other. The null key has no history.
    assert n.tolist() == [0, 1, 0, 2, 2, 0]
    assert s.tolist() == [0, 1, 0, 1, 1, 0]
    # A lag of one day hides the previous day as well.
    n_lag, _ = expanding_counts(keys, times, labels, lag_days=1.0)
    assert n_lag.tolist() == [0, 0, 0, 1, 1, 0]


def _history_rows() -> pd.DataFrame:
    a, b = "001XX N STATE ST", "002XX N STATE ST"
    rows = [
        ("2017-01-01T10:00:00", a, "BURGLARY"),
        ("2017-01-02T10:00:00", a, "THEFT"),
        ("2017-01-02T10:00:00", b, "BURGLARY"),
        ("2017-01-03T10:00:00", a, "BURGLARY"),
        ("2017-01-03T10:00:00", a, "THEFT"),
    ]
    return build_feature_rows(
        canonical([incident(date=d, block=blk, primary_type=t) for d, blk, t in rows])
    )


def _block_history_transformer() -> IncidentFeatures:
    return IncidentFeatures(history_keys=("block",), smoothing=2.0, min_history_days=1.0)


def test_training_history_by_hand():
    rows = _history_rows()
    out = _block_history_transformer().fit_transform(rows, rows["label"])
    # Overall share so far, (burglaries + 1) / (rows + 2): day 1: 1/2, day 2: 2/3, day 3: 3/5.
    # Block share with m = 2: (s + 2 * prior) / (n + 2).
    assert out["history_block_burglary_share"].tolist() == pytest.approx(
        [0.5, (1 + 2 * 2 / 3) / 3, (0 + 2 * 2 / 3) / 2, (1 + 2 * 3 / 5) / 4, (1 + 2 * 3 / 5) / 4]
    )
    # Incidents per day of history so far (at least one day): 0/1, 1/1, 0/1, 2/2, 2/2.
    assert out["history_block_per_day"].tolist() == pytest.approx([0, 1, 0, 1, 1])


def test_daypart_is_the_quarter_of_the_day_and_keys_a_places_history():
    dates = np.array(
        ["2018-05-01T00:00", "2018-05-01T05:59", "2018-05-01T06:00", "2018-05-01T23:59", "NaT"],
        dtype="datetime64[ns]",
    )
    assert daypart(dates).tolist() == ["0", "0", "1", "3", None]
    # Beat 111: two night burglaries, one afternoon theft; beat 222: one afternoon theft.
    rows = build_feature_rows(
        canonical(
            [
                incident(date="2017-01-01T02:00:00", beat="0111", primary_type="BURGLARY"),
                incident(date="2017-01-02T03:00:00", beat="111", primary_type="BURGLARY"),
                incident(date="2017-01-02T14:00:00", beat="111", primary_type="THEFT"),
                incident(date="2017-01-03T14:00:00", beat="222", primary_type="THEFT"),
            ]
        )
    )
    features = IncidentFeatures(
        history_keys=("beat_daypart",), smoothing=2.0, min_history_days=1.0
    ).fit(rows, rows["label"])
    new = canonical(
        [
            incident(date="2018-05-01T01:00:00", beat="111"),
            incident(date="2018-05-01T15:00:00", beat="111"),
            incident(date="2018-05-01T20:00:00", beat="111"),
        ]
    )
    out = features.transform(new)
    prior = 0.5  # 2 burglaries of 4
    assert out["history_beat_daypart_burglary_share"].tolist() == pytest.approx(
        [(2 + 2 * prior) / (2 + 2), (0 + 2 * prior) / (1 + 2), prior]
    )


def test_new_rows_see_the_whole_training_period():
    rows = _history_rows()
    features = _block_history_transformer().fit(rows, rows["label"])
    new = canonical(
        [
            incident(date="2018-05-01T10:00:00", block="001XX N STATE ST"),
            incident(date="2018-05-01T10:00:00", block="999XX W NOWHERE ST"),
        ]
    )
    out = features.transform(new)
    # Block A: 4 incidents, 2 burglaries; training share 3/5; window 2 days.
    assert out["history_block_burglary_share"].tolist() == pytest.approx(
        [(2 + 2 * 0.6) / (4 + 2), 0.6]
    )
    assert out["history_block_per_day"].tolist() == pytest.approx([4 / 2, 0.0])


def test_history_has_no_look_ahead():
    """Flipping the labels of later rows must not change any earlier row's features."""
    rows = build_feature_rows(synthetic_incidents("2017-01-01", days=60, per_day=40, seed=3))
    cutoff = pd.Timestamp("2017-02-01")
    later = (rows["date"] >= cutoff).to_numpy()
    flipped = rows.copy()
    flipped.loc[later, "label"] = 1 - flipped.loc[later, "label"]

    before = IncidentFeatures().fit_transform(rows, rows["label"])
    after = IncidentFeatures().fit_transform(flipped, flipped["label"])

    history = [c for c in before.columns if c.startswith("history_")]
    pd.testing.assert_frame_equal(before.loc[~later, history], after.loc[~later, history])
    # And the test has teeth: the later rows' own histories did change.
    assert not before.loc[later, history].equals(after.loc[later, history])


def test_coordinates_and_rotation_by_hand():
    rows = build_feature_rows(canonical([incident(latitude=41.8, longitude=-87.6)]))
    features = IncidentFeatures(rotations=(0.0, 90.0)).fit(rows, rows["label"])
    out = features.transform(canonical([incident(latitude=41.9, longitude=-87.7)]))
    east = -87.7 * math.cos(math.radians(41.8))
    assert out["latitude"][0] == 41.9
    assert out["longitude"][0] == -87.7
    assert out["rotated_0"][0] == pytest.approx(east)
    assert out["rotated_90"][0] == pytest.approx(41.9)
    assert out["block_number"][0] == 4500.0


def test_categories_are_fixed_at_fit_and_unseen_values_are_missing():
    rows = build_feature_rows(
        canonical(
            [
                incident(location_description="STREET", district="009"),
                incident(
                    location_description="RESIDENCE-GARAGE", district="009", primary_type="BURGLARY"
                ),
            ]
        )
    )
    features = IncidentFeatures(
        min_category_count=1, categorical_columns=("location_description", "district")
    ).fit(rows, rows["label"])
    one = features.transform(canonical([incident(location_description="RESIDENCE - GARAGE")]))
    unseen = features.transform(
        canonical([incident(location_description="SPACESHIP", district="099")])
    )
    for out in (one, unseen):
        assert list(out["location_description"].cat.categories) == [
            "RESIDENCE - GARAGE",
            "STREET",
        ]
    # Old and new wording are one category.
    assert one["location_description"][0] == "RESIDENCE - GARAGE"
    assert pd.isna(unseen["location_description"][0])
    assert pd.isna(unseen["district"][0])
    assert list(one.columns) == list(unseen.columns) == list(features.get_feature_names_out())
    assert (one.dtypes == unseen.dtypes).all()


def test_rare_categories_are_treated_as_unseen():
    rows = build_feature_rows(
        canonical(
            [incident(location_description="STREET")] * 3
            + [incident(location_description="BOWLING ALLEY")]
        )
    )
    features = IncidentFeatures(min_category_count=2).fit(rows, rows["label"].to_numpy())
    assert features.categories_["location_description"] == ["STREET"]


def test_tolerates_missing_columns_and_nulls():
    rows = build_feature_rows(synthetic_incidents("2017-01-01", days=10, per_day=20))
    features = IncidentFeatures().fit(rows, rows["label"])
    only_date = to_canonical(
        pd.DataFrame({"date": ["2018-01-05T03:00:00"]}), "chicago", required=("date",)
    )
    bare = pd.DataFrame({"date": pd.to_datetime(["2018-01-05 03:00"])})
    for frame in (only_date, bare):
        out = features.transform(frame)
        assert list(out.columns) == list(features.get_feature_names_out())
        assert out["hour"][0] == 3
        assert np.isnan(out["latitude"][0])
        assert pd.isna(out["location_description"][0])


def test_only_model_input_columns_are_read():
    raw = canonical([incident(), incident(primary_type="BURGLARY", iucr="0610", fbi_code="05")])
    prepared = prepare_incidents(raw)
    assert not {
        "iucr",
        "description",
        "fbi_code",
        "arrest",
        "primary_type",
        "id",
        "case_number",
        "updated_on",
    } & set(prepared)


def test_fit_needs_labels_in_0_1():
    rows = build_feature_rows(canonical([incident()]))
    with pytest.raises(ValueError, match="needs the labels"):
        IncidentFeatures().fit(rows)
    with pytest.raises(ValueError, match="0 \\(theft\\) or 1"):
        IncidentFeatures().fit(rows, [2])
    with pytest.raises(ValueError, match="unknown history keys"):
        IncidentFeatures(history_keys=("galaxy",)).fit(rows, rows["label"])


def test_transformer_survives_pickling():
    rows = build_feature_rows(synthetic_incidents("2017-01-01", days=10, per_day=20))
    features = IncidentFeatures().fit(rows, rows["label"])
    new = synthetic_incidents("2017-02-01", days=1, per_day=20, seed=9)
    pd.testing.assert_frame_equal(
        features.transform(new), pickle.loads(pickle.dumps(features)).transform(new)
    )


def test_location_dropout_shows_some_training_rows_without_their_location():
    rows = build_feature_rows(synthetic_incidents("2017-01-01", days=30, per_day=40, seed=5))
    features = IncidentFeatures(location_dropout=0.3, history_keys=("block", "block_location"))
    out = features.fit_transform(rows, rows["label"])
    dropped = out["location_description"].isna() & rows["location_description"].notna()
    assert 0.2 < dropped.mean() < 0.4
    # Their location-keyed history is "none", as for a served incident without a location...
    assert (out.loc[dropped, "history_block_location_per_day"] == 0).all()
    # ... while the history that does not involve the location type is untouched.
    plain = IncidentFeatures(history_keys=("block", "block_location")).fit_transform(
        rows, rows["label"]
    )
    pd.testing.assert_series_equal(out["history_block_per_day"], plain["history_block_per_day"])
    # The tables learnt for serving still count every row under its real location.
    assert features.history_["block_location"][1].sum() == len(rows)
    served = features.transform(rows.drop(columns=["label"]))
    assert (
        served["location_description"].notna().sum() == rows["location_description"].notna().sum()
    )


def test_location_dropout_must_be_a_share():
    rows = _history_rows()
    with pytest.raises(ValueError, match="location_dropout must be in"):
        IncidentFeatures(location_dropout=1.0).fit_transform(rows, rows["label"])
