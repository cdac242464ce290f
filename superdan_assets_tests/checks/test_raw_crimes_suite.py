"""The raw_crimes suite: each injected fault fails the right expectation with the right severity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from superdan_assets.checks.history import PartitionStats
from superdan_assets.checks.outcome import Severity
from superdan_assets.checks.suites import raw_crimes_specs
from superdan_assets.checks.validate import validate_raw_crimes
from superdan_assets.ml.schema import empty_frame
from superdan_assets_tests.checks.conftest import DAY, NEXT_DAY, make_raw_day


def failed_names(outcome, severity):
    return {e.name for e in outcome.failed(severity)}


def test_clean_day_passes_every_expectation(raw_day, chicago):
    outcome = validate_raw_crimes(raw_day, DAY, NEXT_DAY, **chicago)
    assert outcome.passed_error and outcome.passed_warn, [e.summary() for e in outcome.failed()]
    assert [e.name for e in outcome.expectations] == [s.name for s in raw_crimes_specs()]
    assert outcome.partition_key == "2018-06-05" and outcome.row_count == len(raw_day)
    # Nothing to compare with: these pass but say they were not evaluated, and why.
    skipped = {e.name: e.note for e in outcome.expectations if not e.evaluated}
    assert set(skipped) == {
        "row_count_within_history",
        "ids_not_moved_from_other_days",
        "previously_stored_ids_present",
    }
    assert all(skipped.values())
    json.dumps(outcome.to_dict())  # the whole outcome is JSON-serialisable


def test_nulls_in_required_fields_are_blocking_errors(raw_day, chicago):
    bad = raw_day.copy()
    bad.loc[3, "id"] = pd.NA
    bad.loc[[4, 5], "date"] = pd.NaT
    bad.loc[6, "primary_type"] = pd.NA
    outcome = validate_raw_crimes(bad, DAY, NEXT_DAY, **chicago)
    assert not outcome.passed_error
    assert {"id_not_null", "date_not_null", "primary_type_not_null"} <= failed_names(
        outcome, Severity.ERROR
    )
    assert outcome.get("date_not_null").unexpected_count == 2
    assert outcome.get("date_not_null").examples[0]["id"] == bad.loc[4, "id"]


def test_duplicated_ids_are_a_blocking_error_with_the_ids(raw_day, chicago):
    dup = pd.concat([raw_day, raw_day.iloc[[7, 8]]], ignore_index=True)
    outcome = validate_raw_crimes(dup, DAY, NEXT_DAY, **chicago)
    unique = outcome.get("id_unique")
    assert not unique.success and unique.severity is Severity.ERROR
    assert unique.unexpected_count == 4  # both copies of each duplicated id
    assert {ex["id"] for ex in unique.examples} == {raw_day.loc[7, "id"], raw_day.loc[8, "id"]}


def test_a_few_out_of_city_coordinates_warn_but_a_majority_blocks(raw_day, chicago):
    few = raw_day.copy()
    few.loc[0, ["latitude", "longitude", "x_coordinate", "y_coordinate"]] = [
        36.619,
        -91.687,
        0.0,
        0.0,
    ]
    outcome = validate_raw_crimes(few, DAY, NEXT_DAY, **chicago)
    assert outcome.passed_error
    assert {
        "latitude_in_city",
        "longitude_in_city",
        "x_coordinate_in_city",
        "y_coordinate_in_city",
    } == failed_names(outcome, Severity.WARN)
    assert outcome.get("latitude_in_city").examples == [
        {"latitude": 36.619, "id": few.loc[0, "id"]}
    ]

    swapped = raw_day.copy()  # a feed that swapped latitude and longitude
    swapped[["latitude", "longitude"]] = raw_day[["longitude", "latitude"]].to_numpy()
    outcome = validate_raw_crimes(swapped, DAY, NEXT_DAY, **chicago)
    assert {"latitude_in_city_for_most_rows", "longitude_in_city_for_most_rows"} <= failed_names(
        outcome, Severity.ERROR
    )


def test_missing_coordinates_warn_when_unusual_and_block_when_most_are_missing(raw_day, chicago):
    some = raw_day.copy()
    some.loc[:5, ["latitude", "longitude"]] = np.nan  # 6 of 60 = 10 %
    outcome = validate_raw_crimes(some, DAY, NEXT_DAY, **chicago)
    assert outcome.passed_error
    assert failed_names(outcome, Severity.WARN) == {
        "latitude_present_as_usual",
        "longitude_present_as_usual",
    }

    most = raw_day.copy()
    most.loc[:29, ["latitude", "longitude"]] = np.nan  # half
    outcome = validate_raw_crimes(most, DAY, NEXT_DAY, **chicago)
    assert {"latitude_present_for_most_rows", "longitude_present_for_most_rows"} <= failed_names(
        outcome, Severity.ERROR
    )


def test_a_new_primary_type_is_reported_with_counts_not_dropped(raw_day, chicago):
    new = raw_day.copy()
    new.loc[[1, 2], "primary_type"] = "DRONE NUISANCE"
    new.loc[3, "district"] = "099"
    new.loc[4, "location_description"] = "RESIDENCE - GARAGE"  # rare, but on a stored day
    outcome = validate_raw_crimes(new, DAY, NEXT_DAY, **chicago)
    assert outcome.passed_error
    known = outcome.get("primary_type_known")
    assert known.severity is Severity.WARN and not known.success
    assert known.value_counts == {"DRONE NUISANCE": 2}
    assert outcome.get("district_known").value_counts == {"099": 1}
    assert outcome.get("location_description_known").success
    assert outcome.row_count == len(new)  # reported, not removed


def test_a_city_without_history_learns_from_the_batch_and_says_so(raw_day):
    """A new city's first day: no profile, no spec bounds. Known-category checks cannot judge
    and say why; the coordinate box comes from the batch itself, wide, and still catches a
    placeholder far away."""
    placeholder = raw_day.copy()
    placeholder.loc[0, ["latitude", "longitude"]] = [0.0, 0.0]
    outcome = validate_raw_crimes(placeholder, DAY, NEXT_DAY)
    assert outcome.passed_error
    known = {e.name: e for e in outcome.expectations if e.name.endswith("_known")}
    assert set(known) == {
        "primary_type_known",
        "location_description_known",
        "district_known",
        "beat_known",
        "ward_known",
        "community_area_known",
    }
    assert all(not e.evaluated and "no stored history" in e.note for e in known.values())
    assert "from this batch" in outcome.extras["coordinate_boxes"]["latitude"]
    assert {"latitude_in_city", "longitude_in_city"} <= failed_names(outcome, Severity.WARN)


def test_the_spec_bounds_win_over_the_learnt_box(raw_day, chicago, raw_profile):
    outcome = validate_raw_crimes(raw_day, DAY, NEXT_DAY, **chicago)
    boxes = outcome.extras["coordinate_boxes"]
    assert boxes["latitude"] == "[41.6, 42.05] from the city spec's [bounds]"
    assert boxes["x_coordinate"].endswith(f"from {raw_profile.days} stored days of history")


def test_renamed_column_breaks_the_schema_expectation(raw_day, chicago):
    renamed = raw_day.rename(columns={"primary_type": "primary_category"})
    outcome = validate_raw_crimes(renamed, DAY, NEXT_DAY, **chicago)
    columns = outcome.get("columns_match_schema")
    assert not columns.success and columns.severity is Severity.ERROR
    assert {
        "Expected": "primary_type",
        "Found": "primary_category",
        "Expected Column Position": 6,
    } in columns.examples
    # The expectations on the vanished column cannot run: they fail, they do not pass silently.
    assert not outcome.get("primary_type_not_null").success


def test_wrong_dtype_breaks_the_dtype_expectation(raw_day, chicago):
    wrong = raw_day.copy()
    wrong["beat"] = wrong["beat"].astype(int)  # codes lose their leading zeros
    wrong["arrest"] = wrong["arrest"].astype(bool)  # nullable boolean became numpy bool
    outcome = validate_raw_crimes(wrong, DAY, NEXT_DAY, **chicago)
    dtypes = outcome.get("dtypes_match_schema")
    assert not dtypes.success and dtypes.severity is Severity.ERROR
    assert dtypes.unit == "columns" and dtypes.unexpected_count == 2
    assert {"column": "beat", "expected": "string", "found": "int64"} in dtypes.examples
    assert outcome.get("columns_match_schema").success


def test_times_outside_the_day_are_a_blocking_error(raw_day, chicago):
    shifted = raw_day.copy()
    shifted.loc[0, "date"] = DAY - pd.Timedelta(minutes=1)
    shifted.loc[1, "date"] = NEXT_DAY  # the end is exclusive
    outcome = validate_raw_crimes(shifted, DAY, NEXT_DAY, **chicago)
    within = outcome.get("date_within_partition")
    assert not within.success and within.severity is Severity.ERROR and within.unexpected_count == 2
    assert {ex["id"] for ex in within.examples} == {shifted.loc[0, "id"], shifted.loc[1, "id"]}


def test_an_empty_raw_day_is_only_a_warning(chicago):
    outcome = validate_raw_crimes(empty_frame(), DAY, NEXT_DAY, **chicago)
    assert outcome.passed_error
    assert "row_count_not_zero" in failed_names(outcome, Severity.WARN)


def test_row_count_outside_learnt_weekday_bounds_warns(chicago):
    history = [
        PartitionStats(day=(DAY - pd.Timedelta(days=d)).date(), rows=60 + (d % 3))
        for d in range(1, 57)
    ]
    normal = validate_raw_crimes(make_raw_day(60), DAY, NEXT_DAY, history, **chicago)
    assert normal.get("row_count_within_history").evaluated
    assert normal.get("row_count_within_history").success
    assert "Tuesdays" in normal.extras["row_count_bounds"]

    partial = validate_raw_crimes(make_raw_day(20), DAY, NEXT_DAY, history, **chicago)
    assert partial.passed_error
    assert failed_names(partial, Severity.WARN) == {"row_count_within_history"}
    assert partial.get("row_count_within_history").observed_value == 20


def test_ids_that_moved_days_or_vanished_are_reported(raw_day, chicago):
    yesterday = make_raw_day(10, DAY - pd.Timedelta(days=1), first_id=19_000_000)
    moved = raw_day["id"].iloc[0]
    yesterday.loc[0, "id"] = moved  # stored yesterday, dated today now
    stored_today = pd.concat([raw_day.iloc[1:], make_raw_day(2, DAY, first_id=21_000_000)])
    previous = pd.concat([yesterday, stored_today], ignore_index=True)

    outcome = validate_raw_crimes(raw_day, DAY, NEXT_DAY, previous=previous, **chicago)
    assert outcome.passed_error
    assert failed_names(outcome, Severity.WARN) == {
        "ids_not_moved_from_other_days",
        "previously_stored_ids_present",
    }
    assert outcome.get("ids_not_moved_from_other_days").examples == [{"id": moved}]
    vanished = outcome.get("previously_stored_ids_present")
    assert vanished.unexpected_count == 2 and vanished.unit == "ids"
    assert sorted(outcome.id_reconciliation.vanished) == ["21000000", "21000001"]
    assert list(outcome.id_reconciliation.moved_in) == [moved]


def test_tz_aware_partition_window_is_read_as_chicago_local_time(raw_day, chicago):
    start = pd.Timestamp("2018-06-05", tz="America/Chicago")
    outcome = validate_raw_crimes(
        raw_day,
        start.tz_convert("UTC"),
        (start + pd.Timedelta(days=1)).tz_convert("UTC"),
        **chicago,
    )
    assert outcome.partition_start == DAY and outcome.get("date_within_partition").success


def test_data_docs_are_built_to_the_folder_and_linked(raw_day, tmp_path, chicago):
    docs = tmp_path / "data_docs"
    outcome = validate_raw_crimes(raw_day, DAY, NEXT_DAY, docs_dir=docs, **chicago)
    assert outcome.docs_url.startswith("file://")
    page = outcome.docs_path
    assert page.endswith(".html") and page.startswith(str(docs.resolve()))
    assert "raw_crimes-2018-06-05" in Path(page).read_text()
    index = (docs / "index.html").read_text()
    assert "raw_crimes" in index


def test_rejects_an_inverted_partition(raw_day, chicago):
    with pytest.raises(ValueError, match="after partition_start"):
        validate_raw_crimes(raw_day, NEXT_DAY, DAY, **chicago)
