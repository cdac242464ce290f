"""Quality is decided per day, in a real Dagster run: a bad day is quarantined with the reason,
its good neighbours are written and reach their features, and nothing good is lost."""

from __future__ import annotations

from dagster import DagsterInstance, materialize

from superdan_assets.assets.features import build_crime_features
from superdan_assets.assets.ingestion import build_raw_crimes
from superdan_assets_tests.assets.helpers import chicago_on_csv, local_resources
from superdan_assets_tests.datagen import export_rows, write_export

DAYS = ["2018-03-01", "2018-03-02", "2018-03-03"]


def _run(tmp_path, export, days=DAYS, resources=None):
    city = chicago_on_csv(export)
    result = materialize(
        [build_raw_crimes(city), build_crime_features(city)],
        resources=resources or local_resources(tmp_path),
        instance=DagsterInstance.ephemeral(),
        tags={
            "dagster/asset_partition_range_start": days[0],
            "dagster/asset_partition_range_end": days[-1],
        },
        raise_on_error=False,
    )
    checks = {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in result.get_asset_check_evaluations()
    }
    return result, checks


def _break_day(rows, day_prefix: str):
    """Move most of one day's incidents off the globe's side of Chicago (a projection bug)."""
    for row in rows:
        if row["Date"].startswith(day_prefix):
            row["Latitude"], row["Longitude"] = "-33.9", "151.2"
    return rows


def test_a_bad_day_is_quarantined_and_its_neighbours_go_on(tmp_path):
    rows = _break_day(export_rows(DAYS[0], days=3, per_day=80), "03/02/2018")
    export = write_export(tmp_path / "export" / "crimes.csv", rows)
    result, checks = _run(tmp_path, export)

    assert result.success
    store = local_resources(tmp_path)["storage"].partitions("chicago")
    assert store.list_partitions("raw_crimes") == [DAYS[0], DAYS[2]]
    assert store.list_partitions("crime_features") == [DAYS[0], DAYS[2]]
    assert store.quarantined("raw_crimes") == [DAYS[1]]
    record = store.quarantine_record("raw_crimes", DAYS[1])
    assert record["rows"] == 80
    assert any("in_city_for_most_rows" in reason for reason in record["reasons"])

    blocking = checks[("chicago/raw_crimes", "raw_crimes_blocking_quality")]
    assert blocking.passed  # the step went on with the good days
    assert blocking.metadata["days_quarantined"].value == 1
    assert blocking.metadata["day_status"].value == {
        DAYS[0]: "written",
        DAYS[1]: "quarantined",
        DAYS[2]: "written",
    }
    assert DAYS[1] in blocking.description
    warn = checks[("chicago/raw_crimes", "raw_crimes_warn_quality")]
    assert not warn.passed  # the quarantine is alerted


def test_a_bad_refetch_keeps_the_last_good_version(tmp_path):
    good = export_rows(DAYS[0], days=3, per_day=80)
    export = write_export(tmp_path / "export" / "crimes.csv", good)
    resources = local_resources(tmp_path)
    result, _ = _run(tmp_path, export, resources=resources)
    assert result.success
    store = resources["storage"].partitions("chicago")
    before = store.read("raw_crimes", DAYS[1])

    bad = _break_day(export_rows(DAYS[0], days=3, per_day=80), "03/02/2018")
    export = write_export(tmp_path / "export" / "crimes.csv", bad)
    result, checks = _run(tmp_path, export, resources=resources)
    assert result.success
    assert store.quarantined("raw_crimes") == [DAYS[1]]
    after = store.read("raw_crimes", DAYS[1])
    assert after.equals(before)  # the last good version is still what features read

    # The source is fixed: the day is written again and its quarantine released.
    export = write_export(tmp_path / "export" / "crimes.csv", good)
    result, checks = _run(tmp_path, export, resources=resources)
    assert result.success and store.quarantined("raw_crimes") == []


def test_a_step_whose_every_day_is_bad_fails_its_blocking_check(tmp_path):
    rows = export_rows(DAYS[0], days=1, per_day=80)
    for row in rows:
        row["Latitude"], row["Longitude"] = "-33.9", "151.2"
    export = write_export(tmp_path / "export" / "crimes.csv", rows)
    result, checks = _run(tmp_path, export, days=[DAYS[0]])
    blocking = checks[("chicago/raw_crimes", "raw_crimes_blocking_quality")]
    assert not blocking.passed
    assert not result.success  # a blocking ERROR check fails the step: features never ran
    store = local_resources(tmp_path)["storage"].partitions("chicago")
    assert store.list_partitions("raw_crimes") == []
    assert store.quarantined("raw_crimes") == [DAYS[0]]
    assert store.list_partitions("crime_features") == []


def test_a_long_range_decides_the_days_a_one_pass_failure_points_at(tmp_path):
    days = [f"2018-03-{d:02d}" for d in range(1, 41 - 9)]  # 31 days + 9 of April below
    rows = export_rows("2018-03-01", days=40, per_day=30)
    rows = _break_day(rows, "03/15/2018")
    export = write_export(tmp_path / "export" / "crimes.csv", rows)
    all_days = days + [f"2018-04-{d:02d}" for d in range(1, 10)]
    result, checks = _run(tmp_path, export, days=all_days)
    assert result.success
    store = local_resources(tmp_path)["storage"].partitions("chicago")
    assert store.quarantined("raw_crimes") == ["2018-03-15"]
    assert len(store.list_partitions("raw_crimes")) == 39
    blocking = checks[("chicago/raw_crimes", "raw_crimes_blocking_quality")]
    assert blocking.passed and blocking.metadata["days_quarantined"].value == 1
