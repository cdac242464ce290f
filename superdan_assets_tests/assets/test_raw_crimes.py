"""raw_crimes through a real (ephemeral) Dagster instance, on generated and real export files."""

import boto3
import pandas as pd
import pytest
from dagster import AssetKey, DagsterInstance, materialize
from moto import mock_aws

from superdan_assets.assets.ingestion import build_raw_crimes
from superdan_assets.ml.schema import CANONICAL_COLUMNS, check_canonical
from superdan_assets.resources.storage import StorageResource
from superdan_assets.storage.blobstore import LocalBlobStore
from superdan_assets.storage.partitions import PartitionStore
from superdan_assets_tests.assets.helpers import chicago_on_csv, local_resources
from superdan_assets_tests.datagen import export_rows, write_export

#: The op of Chicago's raw_crimes (assets of every city sit side by side: ``<city>__<asset>``).
NODE = "chicago__raw_crimes"
KEY = AssetKey(["chicago", "raw_crimes"])


def _range_tags(start: str, end: str) -> dict[str, str]:
    return {
        "dagster/asset_partition_range_start": start,
        "dagster/asset_partition_range_end": end,
    }


@pytest.fixture
def export_file(tmp_path):
    rows = export_rows("2018-03-01", days=4, per_day=25)
    return write_export(tmp_path / "export" / "crimes_2018.csv.gz", rows), rows


def _assets(export_path):
    """Chicago's raw_crimes reading the export files at ``export_path``."""
    return [build_raw_crimes(chicago_on_csv(export_path))]


def _resources(data_dir, **io):
    return local_resources(data_dir.parent, data_dir, **io)


def _store(data_dir) -> PartitionStore:
    """Chicago's partitions: everything of a city is stored below its name."""
    return PartitionStore(LocalBlobStore(data_dir / "chicago"))


def test_backfill_range_is_one_run_with_one_file_per_day(export_file, tmp_path):
    path, rows = export_file
    instance = DagsterInstance.ephemeral()
    result = materialize(
        _assets(path),
        resources=_resources(tmp_path / "data"),
        instance=instance,
        tags=_range_tags("2018-02-28", "2018-03-05"),
    )
    assert result.success
    store = _store(tmp_path / "data")
    assert (tmp_path / "data" / "chicago" / "raw_crimes" / "2018-03-02.parquet").is_file()
    # 2018-02-28 and 2018-03-05 had no crimes in the file: stored as empty days, not missing.
    assert store.list_partitions("raw_crimes") == [
        "2018-02-28",
        "2018-03-01",
        "2018-03-02",
        "2018-03-03",
        "2018-03-04",
        "2018-03-05",
    ]
    assert [len(store.read("raw_crimes", d)) for d in store.list_partitions("raw_crimes")] == [
        0,
        25,
        25,
        25,
        25,
        0,
    ]
    day = store.read("raw_crimes", "2018-03-02")
    check_canonical(day, "stored partition")
    assert day["date"].dt.strftime("%Y-%m-%d").eq("2018-03-02").all()
    expected_ids = {r["ID"] for r in rows if r["Date"].startswith("03/02/2018")}
    assert set(day["id"]) == expected_ids
    mats = result.asset_materializations_for_node(NODE)
    assert sorted(m.partition for m in mats)[0] == "2018-02-28" and len(mats) == 6
    meta = mats[0].metadata
    assert meta["run_row_count"].value == 100
    assert meta["rows_per_day"].value == {
        "2018-02-28": 0,
        "2018-03-01": 25,
        "2018-03-02": 25,
        "2018-03-03": 25,
        "2018-03-04": 25,
        "2018-03-05": 0,
    }
    assert meta["source"].value == "chicago_csv"
    assert "THEFT" in meta["rows_per_primary_type"].value
    assert meta["first_occurrence"].value.startswith("2018-03-01")


def test_rematerializing_a_day_replaces_it_without_duplicates(export_file, tmp_path):
    path, _ = export_file
    assets, resources = _assets(path), _resources(tmp_path / "data")
    instance = DagsterInstance.ephemeral()
    for _ in range(2):
        assert materialize(
            assets, resources=resources, instance=instance, partition_key="2018-03-03"
        ).success
    day = _store(tmp_path / "data").read("raw_crimes", "2018-03-03")
    assert len(day) == 25 and day["id"].is_unique
    last = instance.get_latest_materialization_event(KEY)
    assert last.asset_materialization.metadata["row_count"].value == 25


def test_late_reports_are_picked_up_by_refetching(tmp_path):
    rows = export_rows("2018-03-01", days=1, per_day=10)
    path = write_export(tmp_path / "export" / "crimes.csv", rows)
    assets, resources = _assets(path), _resources(tmp_path / "data")
    instance = DagsterInstance.ephemeral()
    materialize(assets, resources=resources, instance=instance, partition_key="2018-03-01")
    late = export_rows("2018-03-01", days=1, per_day=3, seed=99)
    for row in late:
        row["ID"] = str(int(row["ID"]) + 5_000_000)
    write_export(path, rows + late)
    materialize(assets, resources=resources, instance=instance, partition_key="2018-03-01")
    day = _store(tmp_path / "data").read("raw_crimes", "2018-03-01")
    assert len(day) == 13 and day["id"].is_unique


def test_bad_input_fails_clearly_and_keeps_the_stored_day(export_file, tmp_path):
    path, rows = export_file
    assets, resources = _assets(path), _resources(tmp_path / "data")
    instance = DagsterInstance.ephemeral()
    materialize(assets, resources=resources, instance=instance, partition_key="2018-03-01")
    broken = [dict(r) for r in rows]
    broken[3]["Date"] = "not a date"
    write_export(path, broken)
    result = materialize(
        assets,
        resources=resources,
        instance=instance,
        partition_key="2018-03-01",
        raise_on_error=False,
    )
    assert not result.success
    error = result.failure_data_for_node(NODE).error.to_string()
    # Names the file, its column (as the file spells it), the row and the value.
    assert str(path) in error and "'Date'" in error and "row 3: 'not a date'" in error
    day = _store(tmp_path / "data").read("raw_crimes", "2018-03-01")
    assert len(day) == 25  # the last good partition is untouched


def test_missing_export_folder_names_the_setting(tmp_path):
    result = materialize(
        _assets(tmp_path / "nowhere"),
        resources=_resources(tmp_path / "data"),
        instance=DagsterInstance.ephemeral(),
        partition_key="2018-03-01",
        raise_on_error=False,
    )
    assert not result.success
    assert "SUPERDAN_EXPORT_PATH" in result.failure_data_for_node(NODE).error.to_string()
    assert not (tmp_path / "data").exists()


def test_partitions_on_s3(export_file, tmp_path):
    path, _ = export_file
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="superdan-data")
        resources = _resources(
            tmp_path / "unused", storage="s3", s3_bucket="superdan-data", s3_prefix="dev"
        )
        result = materialize(
            _assets(path),
            resources=resources,
            instance=DagsterInstance.ephemeral(),
            tags=_range_tags("2018-03-01", "2018-03-02"),
        )
        assert result.success
        keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket="superdan-data")["Contents"])
        # Everything of the city below its name: the days and the profile its checks learnt.
        assert keys == [
            "dev/chicago/profile/raw_crimes.json",
            "dev/chicago/raw_crimes/2018-03-01.parquet",
            "dev/chicago/raw_crimes/2018-03-02.parquet",
        ]
        frame = resources["storage"].partitions("chicago").read("raw_crimes", "2018-03-02")
        assert len(frame) == 25 and list(frame.columns) == CANONICAL_COLUMNS
    assert not (tmp_path / "unused").exists()


@pytest.mark.realdata
def test_real_2018_days_match_the_file(chicago_export_dir, export_cache_dir, tmp_path):
    resources = _resources(tmp_path / "data")
    # The run-wide parse cache, so the real file is parsed once per test run.
    resources["storage"] = StorageResource(
        base_dir=str(tmp_path / "data"),
        cache_dir=str(export_cache_dir),
        docs_dir=str(tmp_path / "docs"),
    )
    assert materialize(
        _assets(chicago_export_dir / "crimes_2018.csv.gz"),
        resources=resources,
        instance=DagsterInstance.ephemeral(),
        tags=_range_tags("2018-07-03", "2018-07-05"),
    ).success
    # Independent count straight from the CSV with pandas.
    dates = pd.read_csv(chicago_export_dir / "crimes_2018.csv.gz", usecols=["Date"])["Date"]
    days = pd.to_datetime(dates, format="%m/%d/%Y %I:%M:%S %p").dt.strftime("%Y-%m-%d")
    store = _store(tmp_path / "data")
    for day in ("2018-07-03", "2018-07-04", "2018-07-05"):
        assert len(store.read("raw_crimes", day)) == int((days == day).sum()) > 500
