"""Real Chicago days against both suites: different clean days pass, a corrupted copy fails.

Why both halves: a suite that passes every clean real day could simply be too loose, and one
that fails a corrupted day could be too strict for real data. Each day is validated against
twelve weeks of real history and the previously stored neighbouring days (as the daily
re-fetch does), so the learnt-bounds and id-reconciliation expectations are evaluated, not
skipped. Speed is measured by ``benchmarks/quality.py``, not asserted here.
"""

from __future__ import annotations

import pandas as pd
import pytest

from superdan_assets.checks.history import PartitionStats
from superdan_assets.checks.outcome import Severity
from superdan_assets.checks.validate import validate_crime_features, validate_raw_crimes
from superdan_assets.ml.labels import build_feature_rows
from superdan_assets_tests.checks.conftest import chicago_context, learnt_profile

ONE_DAY = pd.Timedelta(days=1)
HISTORY = pd.Timedelta(days=84)
#: A weekday, a summer holiday, a winter holiday, a Sunday: different volumes and mixes.
CLEAN_DAYS = [
    pd.Timestamp("2018-06-05"),
    pd.Timestamp("2018-07-04"),
    pd.Timestamp("2018-01-01"),
    pd.Timestamp("2018-10-07"),
]
CORRUPTED_DAY = pd.Timestamp("2018-06-05")
#: The stored history the city's profile (known categories) is learnt from: as in a real
#: deployment, everything stored before the day, here from 2016 on.
PROFILE_FROM = pd.Timestamp("2016-01-01")


@pytest.fixture(scope="module")
def real_days(real_export) -> dict[pd.Timestamp, pd.DataFrame]:
    """Every real day from the start of the profile's history to after the last clean day."""
    raw = real_export.fetch(PROFILE_FROM, max(CLEAN_DAYS) + 2 * ONE_DAY)
    return {d: g.reset_index(drop=True) for d, g in raw.groupby(raw["date"].dt.normalize())}


def _history(by_day, day, features: bool = False) -> list[PartitionStats]:
    days = [d for d in by_day if day - HISTORY <= d < day]
    return [
        PartitionStats.from_frame(d, build_feature_rows(by_day[d]) if features else by_day[d])
        for d in days
    ]


_CONTEXTS: dict[tuple[pd.Timestamp, bool], dict] = {}


def _context(by_day, day, features: bool = False) -> dict:
    """What the pipeline would have learnt from the days stored before ``day``: Chicago's
    profile (known categories, coordinate box), its spec's bounds and timezone."""
    if (day, features) not in _CONTEXTS:
        before = [d for d in by_day if d < day]
        frame = pd.concat([by_day[d] for d in before], ignore_index=True)
        rows = build_feature_rows(frame) if features else frame
        days = rows["date"].dt.strftime("%Y-%m-%d")
        asset = "crime_features" if features else "raw_crimes"
        _CONTEXTS[(day, features)] = chicago_context(
            learnt_profile(asset, {k: g for k, g in rows.groupby(days)})
        )
    return _CONTEXTS[(day, features)]


def _stored_neighbourhood(by_day, day) -> pd.DataFrame:
    """What the store held before the re-fetch: the day and its two neighbours."""
    return pd.concat([by_day[day - ONE_DAY], by_day[day], by_day[day + ONE_DAY]])


@pytest.mark.realdata
@pytest.mark.parametrize("day", CLEAN_DAYS, ids=lambda d: d.strftime("%Y-%m-%d"))
def test_clean_real_days_pass_both_suites_with_every_expectation_evaluated(real_days, day):
    frame = real_days[day]
    outcome = validate_raw_crimes(
        frame,
        day,
        day + ONE_DAY,
        _history(real_days, day),
        previous=_stored_neighbourhood(real_days, day),
        **_context(real_days, day),
    )
    assert outcome.passed_error and outcome.passed_warn, [e.summary() for e in outcome.failed()]
    assert all(e.evaluated for e in outcome.expectations), [
        (e.name, e.note) for e in outcome.expectations if not e.evaluated
    ]
    assert outcome.row_count == len(frame) > 300

    features = build_feature_rows(frame)
    f_outcome = validate_crime_features(
        features,
        day,
        day + ONE_DAY,
        _history(real_days, day, features=True),
        **_context(real_days, day, features=True),
    )
    assert f_outcome.passed_error and f_outcome.passed_warn, [
        e.summary() for e in f_outcome.failed()
    ]
    assert all(e.evaluated for e in f_outcome.expectations)


@pytest.mark.realdata
def test_a_corrupted_copy_of_a_real_day_fails_exactly_the_expectations_it_breaks(real_days):
    day = CORRUPTED_DAY
    clean = real_days[day]
    previous = _stored_neighbourhood(real_days, day)

    vanished = clean["id"].iloc[:5].astype(str).tolist()
    from_next_day = real_days[day + ONE_DAY].head(2).copy()
    from_next_day["date"] = day + pd.Timedelta(hours=12)
    corrupted = pd.concat(
        [clean.iloc[5:], clean.iloc[[10]], from_next_day], ignore_index=True
    )  # five reports vanished, one duplicated, two moved in from tomorrow
    corrupted.loc[20:, "latitude"] = 0.0  # a broken projection: most rows at (0, lon)
    corrupted.loc[30, "date"] = day + pd.Timedelta(hours=25)  # one row from another day

    outcome = validate_raw_crimes(
        corrupted,
        day,
        day + ONE_DAY,
        _history(real_days, day),
        previous=previous,
        **_context(real_days, day),
    )
    failed = {e.name: e for e in outcome.failed()}
    assert set(failed) == {
        "id_unique",
        "date_within_partition",
        "latitude_in_city_for_most_rows",
        "latitude_in_city",
        "ids_not_moved_from_other_days",
        "previously_stored_ids_present",
    }, [e.summary() for e in failed.values()]
    assert not outcome.passed_error
    assert failed["id_unique"].severity is Severity.ERROR
    assert failed["previously_stored_ids_present"].unexpected_count == len(vanished)
    assert set(map(str, failed["previously_stored_ids_present"].examples)) <= set(vanished)
    assert failed["ids_not_moved_from_other_days"].unexpected_count == len(from_next_day)
    assert failed["date_within_partition"].unexpected_count == 1

    features = build_feature_rows(clean)
    # a labelling bug: every row a burglary
    all_burglary = features.assign(label=features["label"] * 0 + 1)
    f_outcome = validate_crime_features(
        all_burglary,
        day,
        day + ONE_DAY,
        _history(real_days, day, features=True),
        **_context(real_days, day, features=True),
    )
    assert {e.name for e in f_outcome.failed()} == {"burglary_share_within_history"}


@pytest.mark.realdata
def test_half_a_real_day_is_flagged_as_a_partial_fetch(real_days):
    day = CORRUPTED_DAY
    half = real_days[day].iloc[::2].reset_index(drop=True)
    outcome = validate_raw_crimes(
        half, day, day + ONE_DAY, _history(real_days, day), **_context(real_days, day)
    )
    assert {e.name for e in outcome.failed()} == {"row_count_within_history"}
    assert outcome.passed_error  # a WARN: the day is kept, someone is told
