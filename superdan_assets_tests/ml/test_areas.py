"""Unseen police areas are replaced by the known area whose incidents lie nearest the point."""

from __future__ import annotations

import numpy as np
import pandas as pd

from superdan_assets.ml.areas import AreaCentres
from superdan_assets.ml.features import IncidentFeatures
from superdan_assets.ml.labels import build_feature_rows
from superdan_assets_tests.ml.incidents import canonical, incident


def _training(seed: int = 0):
    """Two beats 5 km apart, 100 points each within ~300 m; one rare beat with 3 points."""
    rng = np.random.default_rng(seed)
    codes, lat, lon = [], [], []
    for code, (la, lo), n in (
        ("111", (41.80, -87.70), 100),
        ("222", (41.85, -87.70), 100),
        ("333", (41.90, -87.60), 3),
    ):
        codes += [code] * n
        lat += list(la + rng.normal(0, 0.002, n))
        lon += list(lo + rng.normal(0, 0.002, n))
    return np.asarray(codes, dtype=object), np.asarray(lat), np.asarray(lon)


def test_an_unseen_area_becomes_the_nearest_known_one_within_reach():
    centres = AreaCentres.learn(*_training())
    codes = np.asarray(["999", "999", "999", "333", None, "999"], dtype=object)
    lat = np.asarray([41.801, 41.849, 43.5, 41.80, 41.80, np.nan])
    lon = np.asarray([-87.701, -87.699, -87.7, -87.70, -87.70, np.nan])
    out = centres.map_values(codes, lat, lon)
    # near 111, near 222, far from every area, a rare but known code, no code, no point
    assert out.tolist() == ["111", "222", "999", "333", None, "999"]


def test_no_located_training_rows_means_nothing_is_mapped():
    centres = AreaCentres.learn(
        np.asarray(["1"], dtype=object), np.asarray([np.nan]), np.asarray([np.nan])
    )
    assert centres.map_values(
        np.asarray(["2"], dtype=object), np.asarray([41.8]), np.asarray([-87.7])
    ).tolist() == ["2"]


def test_the_model_gives_a_redrawn_beat_the_history_of_the_beat_it_lies_in():
    codes, lat, lon = _training()
    rows = build_feature_rows(
        canonical(
            [
                incident(
                    date=f"2017-0{1 + i % 9}-{1 + i % 27:02d}T10:00:00",
                    beat=c,
                    latitude=la,
                    longitude=lo,
                    primary_type="BURGLARY" if (c == "111" and i % 2) else "THEFT",
                )
                for i, (c, la, lo) in enumerate(zip(codes, lat, lon, strict=True))
            ]
        )
    )
    asked = canonical(
        [
            incident(
                date="2018-03-01T10:00:00",
                beat=b,
                latitude=41.801,
                longitude=-87.701,
                location_description="STREET",
            )
            for b in ("111", "0999")
        ]
    )
    features = IncidentFeatures(history_keys=("beat_location",), min_history_days=1.0)
    out = features.fit(rows, rows["label"]).transform(asked)
    share = out["history_beat_location_burglary_share"]
    assert share[0] == share[1] != features.prior_
    plain = IncidentFeatures(history_keys=("beat_location",), map_unseen_areas=False)
    plain_share = plain.fit(rows, rows["label"]).transform(asked)[
        "history_beat_location_burglary_share"
    ]
    assert plain_share[1] == plain.prior_ != plain_share[0]
    assert isinstance(out, pd.DataFrame)
