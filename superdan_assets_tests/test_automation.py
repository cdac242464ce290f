"""Each city's daily schedule fills the right partitions; the alert sensors and jobs are wired."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from dagster import DefaultScheduleStatus, DefaultSensorStatus, build_schedule_context

from superdan_assets.assets import City
from superdan_assets.automation import build_city_automation, refetch_window
from superdan_assets.cities import resolve_spec

CHICAGO = ZoneInfo("America/Chicago")
JOBS = (
    "ingest_job",
    "training_job",
    "train_and_deploy_job",
    "drift_job",
    "daily_job",
    "street_risk_job",
)


@pytest.fixture(scope="module")
def chicago():
    return build_city_automation(City(resolve_spec("chicago")))


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
    assert refetch_window(scheduled, days, "2012-01-01") == expected


def test_refetch_window_starts_at_the_city_s_own_first_day():
    first_day = resolve_spec("rochester").city.first_day
    assert refetch_window(datetime(2019, 1, 3, 6, 0), 7, first_day) == ("2019-01-01", "2019-01-02")


def test_refetch_window_rejects_nonsense():
    with pytest.raises(ValueError, match="at least 1"):
        refetch_window(datetime(2018, 1, 1, tzinfo=CHICAGO), 0, "2012-01-01")


def test_each_tick_requests_the_last_days_as_one_range_run(monkeypatch, chicago):
    monkeypatch.setenv("SUPERDAN_REFETCH_DAYS", "3")
    context = build_schedule_context(
        scheduled_execution_time=datetime(2018, 11, 13, 6, 0, tzinfo=CHICAGO)
    )
    request = chicago.schedule(context)
    assert request.run_key == "chicago-daily-2018-11-12"
    assert request.tags["dagster/asset_partition_range_start"] == "2018-11-10"
    assert request.tags["dagster/asset_partition_range_end"] == "2018-11-12"
    assert request.tags["superdan/city"] == "chicago"


def test_schedule_runs_by_default_in_chicago_time(chicago):
    schedule = chicago.schedule
    assert schedule.name == "chicago__daily_schedule"
    assert schedule.default_status == DefaultScheduleStatus.RUNNING
    assert schedule.cron_schedule == "0 6 * * *"
    assert schedule.execution_timezone == "America/Chicago"
    assert schedule.job_name == "chicago__daily_job"


def test_a_city_s_jobs_select_only_its_own_assets(chicago):
    assert sorted(job.name for job in chicago.jobs) == sorted(f"chicago__{j}" for j in JOBS)
    for job in chicago.jobs:
        assert job.tags["superdan/city"] == "chicago"


def test_definitions_wire_schedule_sensors_and_jobs():
    from superdan_assets.definitions import defs

    repo = defs.get_repository_def()
    assert {f"chicago__{job}" for job in JOBS} <= set(repo.job_names)
    assert [s.name for s in repo.schedule_defs] == ["chicago__daily_schedule"]
    sensors = repo.sensor_defs
    assert sensors and all(s.default_status == DefaultSensorStatus.RUNNING for s in sensors)
    selected = {
        name: {
            key.to_user_string()
            for key in repo.get_job(f"chicago__{name}").asset_layer.executable_asset_keys
        }
        for name in JOBS
    }
    assert selected == {
        "ingest_job": {"chicago/raw_crimes", "chicago/crime_features"},
        "training_job": {"chicago/crime_model"},
        "train_and_deploy_job": {"chicago/crime_model", "chicago/model_endpoint"},
        "drift_job": {"chicago/drift_report"},
        "daily_job": {"chicago/raw_crimes", "chicago/crime_features", "chicago/drift_report"},
        "street_risk_job": {"chicago/street_risk"},
    }


def test_street_risk_is_forecast_for_the_day_after_the_daily_refetch():
    from dagster import (
        DagsterEvent,
        DagsterEventType,
        DagsterInstance,
        DagsterRun,
        build_run_status_sensor_context,
    )

    from superdan_assets.assets import City
    from superdan_assets.automation import build_city_automation, forecast_day
    from superdan_assets.cities import resolve_spec

    tags = {
        "dagster/asset_partition_range_start": "2018-03-01",
        "dagster/asset_partition_range_end": "2018-03-07",
    }
    assert forecast_day(tags, "America/Chicago") == "2018-03-08"
    assert forecast_day({"dagster/partition": "2018-03-07"}, "America/Chicago") == "2018-03-08"

    automation = build_city_automation(City(resolve_spec("chicago")))
    (sensor,) = automation.sensors
    assert sensor.name == "chicago__street_risk_after_daily"
    run = DagsterRun(job_name="chicago__daily_job", tags=tags)
    event = DagsterEvent(DagsterEventType.RUN_SUCCESS.value, "chicago__daily_job")
    context = build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_instance=DagsterInstance.ephemeral(),
        dagster_run=run,
        dagster_event=event,
    )
    request = sensor(context)
    assert request.partition_key == "2018-03-08"
    assert request.run_key == "chicago-street-risk-2018-03-08"
