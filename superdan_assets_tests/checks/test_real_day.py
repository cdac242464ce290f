"""A clean real Chicago day passes both suites, fast, with history learnt from real days."""

from __future__ import annotations

import pandas as pd
import pytest

from superdan_assets.checks.history import PartitionStats
from superdan_assets.checks.validate import validate_crime_features, validate_raw_crimes
from superdan_assets.ml.labels import build_feature_rows

DAY = pd.Timestamp("2018-06-05")


@pytest.mark.realdata
def test_a_clean_real_day_passes_both_suites_in_well_under_a_few_seconds(real_export, tmp_path):
    raw = real_export.fetch(DAY - pd.Timedelta(days=84), DAY + pd.Timedelta(days=1))
    by_day = {d: g.reset_index(drop=True) for d, g in raw.groupby(raw["date"].dt.normalize())}
    day = by_day.pop(DAY)
    raw_history = [PartitionStats.from_frame(d, f) for d, f in by_day.items()]
    feature_history = [
        PartitionStats.from_frame(d, build_feature_rows(f)) for d, f in by_day.items()
    ]

    outcome = validate_raw_crimes(
        day, DAY, DAY + pd.Timedelta(days=1), raw_history, docs_dir=tmp_path, previous=day
    )
    assert outcome.passed_error and outcome.passed_warn, [e.summary() for e in outcome.failed()]
    assert all(e.evaluated for e in outcome.expectations)  # history and previous were used
    assert 600 < outcome.row_count < 900
    assert outcome.seconds < 3.0

    features = build_feature_rows(day)
    f_outcome = validate_crime_features(features, DAY, DAY + pd.Timedelta(days=1), feature_history)
    assert f_outcome.passed_error and f_outcome.passed_warn, [
        e.summary() for e in f_outcome.failed()
    ]
    assert all(e.evaluated for e in f_outcome.expectations)
    assert f_outcome.seconds < 3.0
