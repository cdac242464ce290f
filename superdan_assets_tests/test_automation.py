"""The daily schedule fills the right partitions; the alert sensors and jobs are wired."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from dagster import DefaultScheduleStatus, DefaultSensorStatus, build_schedule_context

from superdan_assets.automation import daily_drift_schedule, refetch_window

CHICAGO = ZoneInfo("America/Chicago")


@pytest.mark.parametrize(
    ("scheduled", "days", "expected"),
    [
        (datetime(2018, 6, 15, 6, 0, tzinfo=CHICAGO), 7, ("2018-06-08", "2018-06-14")),
        (datetime(2018, 3, 1, 6, 0, tzinfo=CHICAGO), 1, ("2018-02-28", "2018-02-28")),
        # Never before the first partition.
        (datetime(2012, 1, 3, 6, 0, tzinfo=CHICAGO), 7, ("2012-01-01", "2012-01-02")),
    ],
)
def test_refetch_window(scheduled, days, expected):
    assert refetch_window(scheduled, days) == expected


def test_refetch_window_rejects_nonsense():
    with pytest.raises(ValueError, match="at least 1"):
        refetch_window(datetime(2018, 1, 1, tzinfo=CHICAGO), 0)


def test_each_tick_requests_the_last_days_as_one_range_run(monkeypatch):
    monkeypatch.setenv("SUPERDAN_REFETCH_DAYS", "3")
    context = build_schedule_context(
        scheduled_execution_time=datetime(2018, 11, 13, 6, 0, tzinfo=CHICAGO)
    )
    request = daily_drift_schedule(context)
    assert request.run_key == "daily-2018-11-12"
    assert request.tags["dagster/asset_partition_range_start"] == "2018-11-10"
    assert request.tags["dagster/asset_partition_range_end"] == "2018-11-12"


def test_schedule_runs_by_default_in_chicago_time():
    assert daily_drift_schedule.default_status == DefaultScheduleStatus.RUNNING
    assert daily_drift_schedule.execution_timezone == "America/Chicago"
    assert daily_drift_schedule.job_name == "daily_job"


def test_definitions_wire_schedule_sensors_and_jobs():
    from superdan_assets.definitions import defs

    repo = defs.get_repository_def()
    assert {"ingest_job", "training_job", "train_and_deploy_job", "drift_job", "daily_job"} <= set(
        repo.job_names
    )
    sensors = repo.sensor_defs
    assert sensors and all(s.default_status == DefaultSensorStatus.RUNNING for s in sensors)
    daily = repo.get_job("daily_job")
    selected = {key.to_user_string() for key in daily.asset_layer.executable_asset_keys}
    assert selected == {"raw_crimes", "crime_features", "drift_report"}
