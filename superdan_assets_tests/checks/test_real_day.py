"""A clean real Chicago day passes both suites, fast, with history (day volumes, known
categories, coordinate box) learnt from real days."""

from __future__ import annotations

import pandas as pd
import pytest

from superdan_assets.checks.gx_runtime import get_runtime
from superdan_assets.checks.history import PartitionStats
from superdan_assets.checks.validate import validate_crime_features, validate_raw_crimes
from superdan_assets.ml.labels import build_feature_rows
from superdan_assets_tests.checks.conftest import chicago_context, learnt_profile

DAY = pd.Timestamp("2018-06-05")


@pytest.mark.realdata
def test_a_clean_real_day_passes_both_suites_in_well_under_a_few_seconds(real_export, tmp_path):
    raw = real_export.fetch(DAY - pd.Timedelta(days=84), DAY + pd.Timedelta(days=1))
    by_day = {d: g.reset_index(drop=True) for d, g in raw.groupby(raw["date"].dt.normalize())}
    day = by_day.pop(DAY)
    raw_history = [PartitionStats.from_frame(d, f) for d, f in by_day.items()]
    feature_days = {d: build_feature_rows(f) for d, f in by_day.items()}
    feature_history = [PartitionStats.from_frame(d, f) for d, f in feature_days.items()]
    keys = {d: d.strftime("%Y-%m-%d") for d in by_day}
    # The profile the pipeline would have learnt from the 12 weeks stored before the day.
    raw_context = chicago_context(
        learnt_profile("raw_crimes", {keys[d]: f for d, f in by_day.items()})
    )
    feature_context = chicago_context(
        learnt_profile("crime_features", {keys[d]: f for d, f in feature_days.items()})
    )

    # The GX runtime is built once per process (a few seconds, cold); what is timed is a day.
    get_runtime()
    outcome = validate_raw_crimes(
        day, DAY, DAY + pd.Timedelta(days=1), raw_history, docs_dir=tmp_path, previous=day,
        **raw_context,
    )
    assert outcome.passed_error and outcome.passed_warn, [e.summary() for e in outcome.failed()]
    # History, the learnt profile and the previous fetch were all used.
    assert all(e.evaluated for e in outcome.expectations), [
        (e.name, e.note) for e in outcome.expectations if not e.evaluated
    ]
    assert 600 < outcome.row_count < 900
    assert outcome.seconds < 3.0

    features = build_feature_rows(day)
    f_outcome = validate_crime_features(
        features, DAY, DAY + pd.Timedelta(days=1), feature_history, **feature_context
    )
    assert f_outcome.passed_error and f_outcome.passed_warn, [
        e.summary() for e in f_outcome.failed()
    ]
    assert all(e.evaluated for e in f_outcome.expectations)
    assert f_outcome.seconds < 3.0
