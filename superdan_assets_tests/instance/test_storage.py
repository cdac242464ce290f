"""The embedded instance's batching SQLite storage records exactly what Dagster's own does."""

import os

import pytest
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    DailyPartitionsDefinition,
    EventRecordsFilter,
    MaterializeResult,
    asset,
    materialize,
)

from superdan_assets.instance.home import EMBEDDED_DAGSTER_YAML, ensure_embedded_home
from superdan_assets.instance.storage import (
    BATCH_SIZE_ENV,
    BatchingSqliteEventLogStorage,
)

DAYS = 40
KEY = AssetKey(["testcity", "days"])


@asset(
    key=KEY,
    partitions_def=DailyPartitionsDefinition(start_date="2018-01-01"),
    check_specs=[AssetCheckSpec("rows_ok", asset=KEY)],
)
def days(context):
    yield MaterializeResult(metadata={"run_days": len(context.partition_keys)})
    yield AssetCheckResult(check_name="rows_ok", passed=True)


@pytest.fixture
def instance(tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    ensure_embedded_home(home)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv(BATCH_SIZE_ENV, "16")  # several batches per step, one partial
    with DagsterInstance.get() as inst:
        assert isinstance(inst.event_log_storage, BatchingSqliteEventLogStorage)
        yield inst


def _range_run(instance):
    last = f"2018-02-{DAYS - 31:02d}"
    return materialize(
        [days],
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": "2018-01-01",
            "dagster/asset_partition_range_end": last,
        },
    )


def _records(instance, event_type):
    return instance.event_log_storage.get_event_records(
        EventRecordsFilter(event_type, asset_key=KEY)
    )


def _count_batches(storage, monkeypatch):
    sizes = []
    real = storage.store_event_batch

    def spy(events):
        sizes.append(len(events))
        return real(events)

    monkeypatch.setattr(storage, "store_event_batch", spy)
    return sizes


def test_a_range_run_records_every_partition_once(instance, monkeypatch):
    batches = _count_batches(instance.event_log_storage, monkeypatch)
    result = _range_run(instance)
    assert result.success
    # planned events (40 + the check's) and the 40 materializations, 16 at a time
    assert max(batches) == 16 and sum(batches) >= 2 * DAYS
    materialized = instance.get_materialized_partitions(KEY)
    assert len(materialized) == DAYS
    for event_type in (
        DagsterEventType.ASSET_MATERIALIZATION,
        DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
    ):
        partitions = [r.partition_key for r in _records(instance, event_type)]
        assert sorted(partitions) == sorted(materialized), event_type
    # The run's own log (the run page) holds them too, once each.
    run_log = instance.all_logs(result.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
    assert len(run_log) == DAYS
    status = instance.event_log_storage.get_asset_check_summary_records(
        [next(iter(days.check_keys))]
    )
    assert status[next(iter(days.check_keys))].last_check_execution_record.status.value == (
        "SUCCEEDED"
    )


def test_a_failing_batch_is_rolled_back_and_stored_once_by_the_fallback(instance, monkeypatch):
    storage = instance.event_log_storage
    real = storage._store_asset_event
    failures = []

    def flaky(conn, event, event_id):
        in_batch = getattr(storage._batch, "connections", None) is not None
        if in_batch and not failures:
            failures.append(event)
            raise RuntimeError("disk hiccup")
        return real(conn, event, event_id)

    monkeypatch.setattr(storage, "_store_asset_event", flaky)
    result = _range_run(instance)
    assert result.success and failures
    partitions = [
        r.partition_key for r in _records(instance, DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
    ]
    assert len(partitions) == DAYS == len(set(partitions))
    run_log = instance.all_logs(result.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
    assert len(run_log) == DAYS


def test_a_dagster_yaml_with_content_is_left_alone(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    ensure_embedded_home(home)
    assert (home / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"
    (home / "dagster.yaml").write_text("  \n")  # what scripts used to touch
    ensure_embedded_home(home)
    assert (home / "dagster.yaml").read_text() == EMBEDDED_DAGSTER_YAML
    assert os.environ.get(BATCH_SIZE_ENV) != "0"
