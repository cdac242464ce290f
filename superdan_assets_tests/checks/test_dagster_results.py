"""Dagster check results from an outcome, and which partitions' blocking checks passed."""

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
    CheckStatus,
    asset_check_results,
    blocking_check_status,
    check_name,
    partitions_passing_blocking_checks,
    quality_check_specs,
)
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


@asset(name="raw_crimes", partitions_def=PARTITIONS, check_specs=quality_check_specs("raw_crimes"))
def fake_raw_crimes(context):
    """Materializes, then reports checks from a canned outcome (one bad day has duplicates)."""
    key = context.partition_key
    outcome = (
        outcome_with(DUPLICATES, partition=key) if key in BAD_DAYS else outcome_with(partition=key)
    )
    yield MaterializeResult(check_results=asset_check_results(outcome))


@asset(name="raw_crimes", partitions_def=PARTITIONS)
def unchecked_raw_crimes():
    """The same asset materialized by code that does not run the checks."""
    return MaterializeResult()


def test_partitions_passing_blocking_checks_reads_the_instance():
    instance = DagsterInstance.ephemeral()
    for key in ("2018-06-01", "2018-06-02", "2018-06-03", "2018-06-04"):
        result = materialize(
            [fake_raw_crimes], partition_key=key, instance=instance, raise_on_error=False
        )
        assert result.success == (key not in BAD_DAYS)  # the blocking ERROR check fails the run
    # 06-04 is re-materialized without its checks: its latest data was never checked.
    materialize([unchecked_raw_crimes], partition_key="2018-06-04", instance=instance)
    keys = ["2018-06-01", "2018-06-02", "2018-06-03", "2018-06-04", "2018-06-05"]
    name = check_name("raw_crimes", Severity.ERROR)
    status = blocking_check_status(instance, "raw_crimes", name, keys)
    assert status == {
        "2018-06-01": CheckStatus.PASSED,
        "2018-06-02": CheckStatus.FAILED,
        "2018-06-03": CheckStatus.PASSED,
        "2018-06-04": CheckStatus.MISSING,
        "2018-06-05": CheckStatus.MISSING,
    }
    assert partitions_passing_blocking_checks(instance, AssetKey("raw_crimes"), name, keys) == [
        "2018-06-01",
        "2018-06-03",
    ]


@asset(
    name="raw_crimes",
    partitions_def=PARTITIONS,
    check_specs=quality_check_specs("raw_crimes"),
    backfill_policy=BackfillPolicy.single_run(),
)
def ranged_raw_crimes(context):
    """A single-run backfill step: validates each day, one check result per group."""
    outcomes = [
        outcome_with(DUPLICATES, partition=key) if key in BAD_DAYS else outcome_with(partition=key)
        for key in context.partition_keys
    ]
    yield MaterializeResult(check_results=asset_check_results(outcomes))


def range_tags(first: str, last: str) -> dict[str, str]:
    return {
        "dagster/asset_partition_range_start": first,
        "dagster/asset_partition_range_end": last,
    }


def test_a_range_run_passes_or_fails_its_partitions_together():
    instance = DagsterInstance.ephemeral()
    clean = materialize(
        [ranged_raw_crimes], instance=instance, tags=range_tags("2018-06-03", "2018-06-05")
    )
    broken = materialize(
        [ranged_raw_crimes],
        instance=instance,
        tags=range_tags("2018-06-01", "2018-06-02"),
        raise_on_error=False,
    )
    assert clean.success and not broken.success
    evaluation = next(
        e
        for e in broken.get_asset_check_evaluations()
        if e.check_name == "raw_crimes_blocking_quality"
    )
    assert evaluation.metadata["failed_partitions"].data == ["2018-06-02"]
    assert "on 1 of 2 days" in evaluation.description
    keys = ["2018-06-01", "2018-06-02", "2018-06-03", "2018-06-04", "2018-06-05"]
    name = check_name("raw_crimes", Severity.ERROR)
    assert partitions_passing_blocking_checks(instance, "raw_crimes", name, keys) == keys[2:]


@pytest.mark.slow
def test_importing_the_checks_does_not_import_great_expectations():
    code = (
        "import sys\n"
        "import superdan_assets.checks.dagster_results, superdan_assets.checks.validate\n"
        "import superdan_assets.checks.suites\n"
        "assert 'great_expectations' not in sys.modules, 'GX imported eagerly'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
