"""Blocking expectation checks stop bad days at the door, inside a real Dagster run."""

from dagster import AssetKey, DagsterInstance, materialize

from superdan_assets.assets.features import crime_features
from superdan_assets.assets.ingestion import raw_crimes
from superdan_assets.checks.dagster_results import partitions_passing_blocking_checks
from superdan_assets.resources.io_managers import PartitionedParquetIOManager
from superdan_assets.resources.sources import CrimeSourceResource
from superdan_assets.resources.storage import StorageResource
from superdan_assets_tests.datagen import export_rows, write_export


def _resources(export_path, tmp_path):
    data = str(tmp_path / "data")
    return {
        "crime_source": CrimeSourceResource(kind="export", export_path=str(export_path)),
        "partition_io_manager": PartitionedParquetIOManager(base_dir=data),
        "storage": StorageResource(base_dir=data, cache_dir=str(tmp_path / "cache"),
                                   docs_dir=str(tmp_path / "docs")),
    }


def _checks(result):
    return {
        (e.asset_key.to_user_string(), e.check_name): (e.passed, e.severity.value)
        for e in result.get_asset_check_evaluations()
    }


def test_clean_day_passes_and_reaches_features(tmp_path):
    rows = export_rows("2018-03-01", days=1, per_day=60)
    path = write_export(tmp_path / "export.csv", rows)
    result = materialize([raw_crimes, crime_features], resources=_resources(path, tmp_path),
                         instance=DagsterInstance.ephemeral(), partition_key="2018-03-01")
    assert result.success
    checks = _checks(result)
    assert checks[("raw_crimes", "raw_crimes_blocking_quality")] == (True, "ERROR")
    assert checks[("crime_features", "crime_features_blocking_quality")] == (True, "ERROR")
    docs = list((tmp_path / "docs").rglob("*.html"))
    assert docs, "Data Docs were not built"


def test_duplicated_ids_fail_the_blocking_check_and_stop_downstream(tmp_path):
    rows = export_rows("2018-03-01", days=1, per_day=60)
    rows[5]["ID"] = rows[4]["ID"]
    path = write_export(tmp_path / "export.csv", rows)
    instance = DagsterInstance.ephemeral()
    result = materialize([raw_crimes, crime_features], resources=_resources(path, tmp_path),
                         instance=instance, partition_key="2018-03-01", raise_on_error=False)
    assert not result.success
    checks = _checks(result)
    assert checks[("raw_crimes", "raw_crimes_blocking_quality")] == (False, "ERROR")
    evaluation = next(
        e for e in result.get_asset_check_evaluations()
        if e.check_name == "raw_crimes_blocking_quality"
    )
    assert "id_unique" in str(evaluation.metadata["failed_expectations"].value)
    # crime_features never ran for the bad day, so the model cannot train on it.
    assert instance.get_latest_materialization_event(AssetKey("crime_features")) is None
    assert partitions_passing_blocking_checks(
        instance, "raw_crimes", "raw_crimes_blocking_quality", ["2018-03-01"]
    ) == []


def test_unknown_primary_type_only_warns(tmp_path):
    rows = export_rows("2018-03-01", days=1, per_day=60)
    rows[0]["Primary Type"] = "SPACE PIRACY"
    path = write_export(tmp_path / "export.csv", rows)
    result = materialize([raw_crimes, crime_features], resources=_resources(path, tmp_path),
                         instance=DagsterInstance.ephemeral(), partition_key="2018-03-01")
    assert result.success  # WARN never fails the run...
    checks = _checks(result)
    assert checks[("raw_crimes", "raw_crimes_warn_quality")] == (False, "WARN")  # ...but says so
    assert checks[("raw_crimes", "raw_crimes_blocking_quality")] == (True, "ERROR")
