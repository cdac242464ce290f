"""Dagster check results from outcomes and per-day decisions, inside real Dagster runs."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
from dagster import (
    AssetCheckSeverity,
    AssetKey,
    BackfillPolicy,
    DagsterInstance,
    DailyPartitionsDefinition,
    MaterializeResult,
    PathMetadataValue,
    asset,
    materialize,
)

from superdan_assets.checks.dagster_results import (
    asset_check_results,
    check_name,
    quality_check_specs,
)
from superdan_assets.checks.decide import decide_days
from superdan_assets.checks.outcome import ExpectationOutcome, Severity, ValidationOutcome

DAY = pd.Timestamp("2018-06-05")


def outcome_with(
    *failures: ExpectationOutcome, partition: str = "2018-06-05", docs: str | None = None
):
    passing = [
        ExpectationOutcome(
            "id_unique", Severity.ERROR, True, "expect_column_values_to_be_unique", "id"
        ),
        ExpectationOutcome(
            "primary_type_known",
            Severity.WARN,
            True,
            "expect_column_values_to_be_in_set",
            "primary_type",
        ),
    ]
    start = pd.Timestamp(partition)
    return ValidationOutcome(
        asset="raw_crimes",
        partition_key=partition,
        partition_start=start,
        partition_end=start + pd.Timedelta(days=1),
        row_count=700,
        expectations=tuple(passing + list(failures)),
        docs_url=f"file://{docs}" if docs else None,
        docs_path=docs,
    )


NEW_TYPE = ExpectationOutcome(
    "primary_type_new",
    Severity.WARN,
    False,
    "expect_column_values_to_be_in_set",
    "primary_type",
    unexpected_count=2,
    unexpected_percent=0.29,
    examples=[{"primary_type": "X", "id": "1"}],
    value_counts={"X": 2},
)
DUPLICATES = ExpectationOutcome(
    "id_unique_dup",
    Severity.ERROR,
    False,
    "expect_column_values_to_be_unique",
    "id",
    unexpected_count=4,
    unexpected_percent=0.57,
    examples=[{"id": "7"}, {"id": "7"}],
)


def test_one_result_per_severity_group_with_failures_in_metadata(tmp_path):
    page = tmp_path / "page.html"
    blocking, warn = asset_check_results(outcome_with(NEW_TYPE, docs=str(page)))
    assert blocking.check_name == "raw_crimes_blocking_quality" and blocking.passed
    assert blocking.severity == AssetCheckSeverity.ERROR
    assert warn.check_name == "raw_crimes_warn_quality" and not warn.passed
    assert warn.severity == AssetCheckSeverity.WARN
    assert warn.asset_key == AssetKey("raw_crimes")
    failed = warn.metadata["failed_expectations"].data
    assert failed[0]["expectation"] == "primary_type_new"
    assert failed[0]["unexpected_count"] == 2 and failed[0]["value_counts"] == {"X": 2}
    assert "primary_type_new (2 rows)" in warn.description
    assert isinstance(warn.metadata["data_docs"], PathMetadataValue)
    assert warn.metadata["data_docs_url"].url == f"file://{page}"
    assert "blocks" in blocking.metadata


def test_specs_declare_the_error_group_blocking():
    blocking, warn = quality_check_specs("crime_features")
    assert blocking.name == check_name("crime_features", Severity.ERROR) and blocking.blocking
    assert warn.name == "crime_features_warn_quality" and not warn.blocking


PARTITIONS = DailyPartitionsDefinition(start_date="2018-06-01", end_date="2018-06-06")
BAD_DAYS = {"2018-06-02"}


def decisions_for(outcomes: list[ValidationOutcome]):
    """The per-day decisions a step makes from its daily outcomes (700 rows a day)."""
    frame = pd.DataFrame(
        {"date": [o.partition_start + pd.Timedelta(hours=1) for o in outcomes for _ in range(700)]}
    )

    def never(day):
        raise AssertionError(f"{day} was validated again: daily outcomes decide every day")

    return decide_days(frame, [o.partition_key for o in outcomes], outcomes, never)


def daily_outcomes(keys) -> list[ValidationOutcome]:
    return [
        outcome_with(DUPLICATES, partition=key) if key in BAD_DAYS else outcome_with(partition=key)
        for key in keys
    ]


@asset(name="raw_crimes", partitions_def=PARTITIONS, check_specs=quality_check_specs("raw_crimes"))
def fake_raw_crimes(context):
    """Materializes, then reports checks from canned outcomes (one bad day has duplicates)."""
    outcomes = daily_outcomes([context.partition_key])
    yield MaterializeResult(
        check_results=asset_check_results(outcomes[0], decisions=decisions_for(outcomes))
    )


def test_a_day_that_fails_its_blocking_expectations_fails_its_single_day_step():
    instance = DagsterInstance.ephemeral()
    for key in ("2018-06-01", "2018-06-02", "2018-06-03"):
        result = materialize(
            [fake_raw_crimes], partition_key=key, instance=instance, raise_on_error=False
        )
        assert result.success == (key not in BAD_DAYS)  # the blocking ERROR check fails the run
        blocking, warn = sorted(result.get_asset_check_evaluations(), key=lambda e: e.check_name)
        assert blocking.check_name == check_name("raw_crimes", Severity.ERROR)
        assert blocking.passed == warn.passed == (key not in BAD_DAYS)
        status = "quarantined" if key in BAD_DAYS else "written"
        assert blocking.metadata["day_status"].data == {key: status}
        assert blocking.metadata["days_quarantined"].value == (1 if key in BAD_DAYS else 0)
        if key in BAD_DAYS:
            assert blocking.description.startswith("1 of 1 day(s) quarantined")
            assert "id_unique_dup" in blocking.description


@asset(
    name="raw_crimes",
    partitions_def=PARTITIONS,
    check_specs=quality_check_specs("raw_crimes"),
    backfill_policy=BackfillPolicy.single_run(),
)
def ranged_raw_crimes(context):
    """A ranged step: validates each day, decides each day, one check result per group."""
    outcomes = daily_outcomes(context.partition_keys)
    yield MaterializeResult(
        check_results=asset_check_results(outcomes, decisions=decisions_for(outcomes))
    )


def range_tags(first: str, last: str) -> dict[str, str]:
    return {
        "dagster/asset_partition_range_start": first,
        "dagster/asset_partition_range_end": last,
    }


def test_a_range_with_a_bad_day_quarantines_it_and_goes_on_with_the_good_ones():
    instance = DagsterInstance.ephemeral()
    clean = materialize(
        [ranged_raw_crimes], instance=instance, tags=range_tags("2018-06-03", "2018-06-05")
    )
    mixed = materialize(
        [ranged_raw_crimes], instance=instance, tags=range_tags("2018-06-01", "2018-06-03")
    )
    assert clean.success and mixed.success  # one good day is enough to go on
    checks = {e.check_name: e for e in mixed.get_asset_check_evaluations()}
    blocking = checks["raw_crimes_blocking_quality"]
    warn = checks["raw_crimes_warn_quality"]
    assert blocking.passed and not warn.passed  # ...and the quarantine is alerted
    assert blocking.metadata["failed_partitions"].data == ["2018-06-02"]
    assert blocking.metadata["day_status"].data == {
        "2018-06-01": "written",
        "2018-06-02": "quarantined",
        "2018-06-03": "written",
    }
    assert (
        blocking.metadata["days_written"].value,
        blocking.metadata["days_quarantined"].value,
    ) == (2, 1)
    assert blocking.description.startswith("1 of 3 day(s) quarantined")
    assert "2018-06-02 (id_unique_dup" in blocking.description
    assert "| 2018-06-02 | 700 |" in blocking.metadata["quarantined_days"].value
    assert all(e.passed for e in clean.get_asset_check_evaluations())


def test_a_range_whose_every_day_is_bad_fails_its_blocking_check():
    bad = [outcome_with(DUPLICATES, partition=k) for k in ("2018-06-01", "2018-06-02")]
    blocking, warn = asset_check_results(bad, decisions=decisions_for(bad))
    assert not blocking.passed and not warn.passed
    assert blocking.metadata["days_written"].value == 0
    assert "on 2 of 2 days" in check_result_description(bad)


def check_result_description(outcomes) -> str:
    """Without decisions (a caller that decides nothing) a group fails if any day fails."""
    blocking, _ = asset_check_results(outcomes)
    assert not blocking.passed
    return blocking.description


@pytest.mark.slow
def test_importing_the_checks_does_not_import_great_expectations():
    code = (
        "import sys\n"
        "import superdan_assets.checks.dagster_results, superdan_assets.checks.validate\n"
        "import superdan_assets.checks.suites\n"
        "assert 'great_expectations' not in sys.modules, 'GX imported eagerly'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
