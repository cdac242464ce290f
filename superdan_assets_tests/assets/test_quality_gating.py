"""Blocking expectation checks stop bad days at the door, inside a real Dagster run."""

import json

from dagster import AssetKey, DagsterInstance, materialize

from superdan_assets.assets.features import build_crime_features
from superdan_assets.assets.ingestion import build_raw_crimes
from superdan_assets_tests.assets.helpers import chicago_on_csv, local_resources
from superdan_assets_tests.datagen import export_rows, write_export

RAW = "chicago/raw_crimes"
FEATURES = "chicago/crime_features"


def _assets(export_path):
    city = chicago_on_csv(export_path)
    return [build_raw_crimes(city), build_crime_features(city)]


def _checks(result):
    return {
        (e.asset_key.to_user_string(), e.check_name): (e.passed, e.severity.value)
        for e in result.get_asset_check_evaluations()
    }


def test_clean_day_passes_and_reaches_features(tmp_path):
    rows = export_rows("2018-03-01", days=1, per_day=60)
    path = write_export(tmp_path / "export.csv", rows)
    result = materialize(
        _assets(path),
        resources=local_resources(tmp_path),
        instance=DagsterInstance.ephemeral(),
        partition_key="2018-03-01",
    )
    assert result.success
    checks = _checks(result)
    assert checks[(RAW, "raw_crimes_blocking_quality")] == (True, "ERROR")
    assert checks[(FEATURES, "crime_features_blocking_quality")] == (True, "ERROR")
    docs = list((tmp_path / "docs" / "chicago").rglob("*.html"))
    assert docs, "Data Docs were not built (below the city's folder)"


def test_duplicated_ids_fail_the_blocking_check_and_stop_downstream(tmp_path):
    rows = export_rows("2018-03-01", days=1, per_day=60)
    rows[5]["ID"] = rows[4]["ID"]
    path = write_export(tmp_path / "export.csv", rows)
    instance = DagsterInstance.ephemeral()
    result = materialize(
        _assets(path),
        resources=local_resources(tmp_path),
        instance=instance,
        partition_key="2018-03-01",
        raise_on_error=False,
    )
    assert not result.success
    checks = _checks(result)
    assert checks[(RAW, "raw_crimes_blocking_quality")] == (False, "ERROR")
    evaluation = next(
        e
        for e in result.get_asset_check_evaluations()
        if e.check_name == "raw_crimes_blocking_quality"
    )
    assert "id_unique" in str(evaluation.metadata["failed_expectations"].value)
    # crime_features never ran for the bad day, so the model cannot train on it.
    features = AssetKey(["chicago", "crime_features"])
    assert instance.get_latest_materialization_event(features) is None
    # The day is quarantined with the reason, never stored as a partition (training reads only
    # stored days, so it cannot see it).
    store = local_resources(tmp_path)["storage"].partitions("chicago")
    assert not store.exists("raw_crimes", "2018-03-01")
    assert store.is_quarantined("raw_crimes", "2018-03-01")
    record = store.quarantine_record("raw_crimes", "2018-03-01")
    assert record["rows"] == 60 and "id_unique" in " ".join(record["reasons"])
    # A blocked day teaches the city's profile nothing.
    assert not (tmp_path / "data" / "chicago" / "profile" / "raw_crimes.json").exists()


def test_unknown_primary_type_only_warns(tmp_path):
    """Known categories are learnt from the city's stored days (``profile/<asset>.json``): a
    primary type none of them had warns, and never fails the run."""
    clean = export_rows("2018-03-01", days=1, per_day=60)
    path = write_export(tmp_path / "export.csv", clean)
    instance = DagsterInstance.ephemeral()
    resources = local_resources(tmp_path)
    first = materialize(
        _assets(path), resources=resources, instance=instance, partition_key="2018-03-01"
    )
    # Nothing learnt before the first day, so nothing is unknown yet.
    assert _checks(first)[(RAW, "raw_crimes_warn_quality")] == (True, "WARN")
    profile = json.loads(
        (tmp_path / "data" / "chicago" / "profile" / "raw_crimes.json").read_bytes()
    )
    assert profile["city"] == "chicago" and profile["days"] == 1
    assert "THEFT" in profile["categories"]["primary_type"]
    assert "SPACE PIRACY" not in profile["categories"]["primary_type"]

    rows = export_rows("2018-03-02", days=1, per_day=60, seed=8)
    for row in rows:
        row["ID"] = str(int(row["ID"]) + 1_000_000)  # other reports than the first day's
    rows[0]["Primary Type"] = "SPACE PIRACY"
    write_export(path, clean + rows)
    result = materialize(
        _assets(path), resources=resources, instance=instance, partition_key="2018-03-02"
    )
    assert result.success  # WARN never fails the run...
    checks = _checks(result)
    assert checks[(RAW, "raw_crimes_warn_quality")] == (False, "WARN")  # ...but says so
    assert checks[(RAW, "raw_crimes_blocking_quality")] == (True, "ERROR")
    evaluation = next(
        e for e in result.get_asset_check_evaluations() if e.check_name == "raw_crimes_warn_quality"
    )
    failed = str(evaluation.metadata["failed_expectations"].value)
    assert "primary_type_known" in failed and "ids_not_moved" not in failed
