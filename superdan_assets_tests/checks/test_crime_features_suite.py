"""The crime_features suite: an empty day blocks; label share and categories are judged."""

from __future__ import annotations

import pandas as pd

from superdan_assets.checks.history import PartitionStats
from superdan_assets.checks.outcome import Severity
from superdan_assets.checks.validate import validate_crime_features
from superdan_assets.ml.labels import empty_feature_rows
from superdan_assets_tests.checks.conftest import DAY, NEXT_DAY


def share_history(share: float, rows: int = 36, days: int = 28) -> list[PartitionStats]:
    wobble = (-0.02, 0.0, 0.02, 0.01)
    return [
        PartitionStats(
            day=(DAY - pd.Timedelta(days=d)).date(), rows=rows, burglary_share=share + wobble[d % 4]
        )
        for d in range(1, days + 1)
    ]


def test_clean_feature_day_passes(feature_day, chicago_features):
    outcome = validate_crime_features(
        feature_day, DAY, NEXT_DAY, share_history(feature_day["label"].mean()), **chicago_features
    )
    assert outcome.passed_error and outcome.passed_warn, [e.summary() for e in outcome.failed()]
    assert outcome.get("burglary_share_within_history").evaluated


def test_an_empty_feature_day_is_a_blocking_error(chicago_features):
    outcome = validate_crime_features(empty_feature_rows(), DAY, NEXT_DAY, **chicago_features)
    empty = outcome.get("row_count_not_zero")
    assert not empty.success and empty.severity is Severity.ERROR
    assert not outcome.passed_error


def test_burglary_share_outside_learnt_bounds_warns(feature_day, chicago_features):
    all_burglary = feature_day.assign(label=pd.Series(1, index=feature_day.index, dtype="int8"))
    outcome = validate_crime_features(
        all_burglary, DAY, NEXT_DAY, share_history(0.15), **chicago_features
    )
    assert outcome.passed_error
    share = outcome.get("burglary_share_within_history")
    assert not share.success and share.severity is Severity.WARN and share.observed_value == 1.0
    assert "days" in outcome.extras["burglary_share_bounds"]


def test_bad_labels_and_null_labels_block(feature_day, chicago_features):
    bad = feature_day.copy()
    bad["label"] = bad["label"].astype("Int8")
    bad.loc[0, "label"] = 2
    bad.loc[1, "label"] = pd.NA
    outcome = validate_crime_features(bad, DAY, NEXT_DAY, **chicago_features)
    assert {"label_is_binary", "label_not_null", "dtypes_match_schema"} <= {
        e.name for e in outcome.failed(Severity.ERROR)
    }
    assert outcome.get("label_is_binary").examples == [0]  # row position: feature rows have no id


def test_unknown_normalised_location_is_a_warning(feature_day, chicago_features):
    odd = feature_day.copy()
    odd.loc[0, "location_description"] = "SPACEPORT"
    outcome = validate_crime_features(odd, DAY, NEXT_DAY, **chicago_features)
    assert outcome.passed_error
    assert outcome.get("location_description_known").value_counts == {"SPACEPORT": 1}
