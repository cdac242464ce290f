"""Jobs and the daily schedule, per city.

The daily schedule of each city is the one thing that runs on its own: every morning at 06:00
in the city's timezone it re-fetches the last ``SUPERDAN_REFETCH_DAYS`` days (late reports land
in the day they occurred), runs their expectation checks, and materializes those days' drift
reports. Retraining is never a side effect of the schedule: a person launches the city's
``train_and_deploy_job``, or the city's retraining sensor does when the drift reports show the
model's realised performance collapsing (:mod:`superdan_assets.retraining`); either way a model
is promoted only when its gates passed.

Names: ``<city>__<job>`` (``chicago__daily_job``), so every city's jobs sit side by side in the
UI and a job name says which city it runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from dagster import (
    AssetSelection,
    DagsterRunStatus,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    JobDefinition,
    RunRequest,
    RunStatusSensorContext,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    define_asset_job,
    run_status_sensor,
    schedule,
)

from superdan_assets.assets.city import City

JOB_NAMES = (
    "ingest_job",
    "training_job",
    "train_and_deploy_job",
    "drift_job",
    "daily_job",
    "street_risk_job",
)


def job_name(city: str, job: str) -> str:
    """``chicago__daily_job``."""
    return f"{city}__{job}"


def schedule_name(city: str) -> str:
    return f"{city}__daily_schedule"


@dataclass(frozen=True)
class CityAutomation:
    jobs: list
    schedule: ScheduleDefinition
    sensors: list


def refetch_window(
    scheduled: datetime, refetch_days: int, first_day: str | date
) -> tuple[str, str]:
    """Partitions a tick at ``scheduled`` (the city's local time) fills: the last
    ``refetch_days`` complete days, ending yesterday, never before the first partition."""
    if refetch_days < 1:
        raise ValueError(f"refetch_days must be at least 1, got {refetch_days}")
    yesterday = scheduled.date() - timedelta(days=1)
    first_day = date.fromisoformat(str(first_day))
    first = max(yesterday - timedelta(days=refetch_days - 1), first_day)
    return first.isoformat(), yesterday.isoformat()


def _refetch_days() -> int:
    from superdan_assets.settings import Settings

    return Settings.from_env().refetch_days


def build_city_automation(city: City) -> CityAutomation:
    """The city's jobs and its daily schedule."""
    name, title = city.name, city.spec.title

    def keys(*assets: str):
        return AssetSelection.assets(*(city.key(a) for a in assets))

    jobs: dict[str, JobDefinition] = {
        "ingest_job": define_asset_job(
            job_name(name, "ingest_job"),
            selection=keys("raw_crimes", "crime_features"),
            description=f"{title}: fetch a range of days and build their features (with checks).",
            tags=city.tags,
        ),
        "training_job": define_asset_job(
            job_name(name, "training_job"),
            selection=keys("crime_model"),
            description=f"{title}: train and gate a model on a window of crime_features "
            "(not deployed).",
            tags=city.tags,
        ),
        "train_and_deploy_job": define_asset_job(
            job_name(name, "train_and_deploy_job"),
            selection=keys("crime_model", "model_endpoint"),
            description=f"{title}: train, gate and, only if every blocking gate passed, "
            "promote and deploy.",
            tags=city.tags,
        ),
        "drift_job": define_asset_job(
            job_name(name, "drift_job"),
            selection=keys("drift_report"),
            description=f"{title}: the drift report of days against the deployed model.",
            tags=city.tags,
        ),
        "street_risk_job": define_asset_job(
            job_name(name, "street_risk_job"),
            selection=keys("street_risk"),
            description=f"{title}: the day's street-risk forecast from the days before it.",
            tags=city.tags,
        ),
        "daily_job": define_asset_job(
            job_name(name, "daily_job"),
            selection=keys("raw_crimes", "crime_features", "drift_report"),
            description=f"{title}: re-fetch the last days (late reports), check them, and "
            "report drift.",
            tags=city.tags,
        ),
    }
    first_day = city.spec.city.first_day

    @schedule(
        name=schedule_name(name),
        job=jobs["daily_job"],
        cron_schedule="0 6 * * *",
        execution_timezone=city.spec.timezone,
        default_status=DefaultScheduleStatus.RUNNING,
        description=f"06:00 in {city.spec.timezone}: re-fetch {title}'s last days, check them, "
        "report drift.",
        tags=city.tags,
    )
    def daily_schedule(context: ScheduleEvaluationContext):
        start, end = refetch_window(context.scheduled_execution_time, _refetch_days(), first_day)
        return RunRequest(
            run_key=f"{name}-daily-{end}",
            tags={
                "dagster/asset_partition_range_start": start,
                "dagster/asset_partition_range_end": end,
                "superdan/trigger": "daily_schedule",
                **city.tags,
            },
        )

    @run_status_sensor(
        name=f"{name}__street_risk_after_daily",
        run_status=DagsterRunStatus.SUCCESS,
        monitored_jobs=[jobs["daily_job"]],
        request_job=jobs["street_risk_job"],
        default_status=DefaultSensorStatus.RUNNING,
        description=f"After {title}'s daily re-fetch succeeded: forecast today's street risk "
        "from the days up to yesterday.",
    )
    def street_risk_after_daily(context: RunStatusSensorContext):
        today = forecast_day(context.dagster_run.tags, city.spec.timezone)
        return RunRequest(
            run_key=f"{name}-street-risk-{today}",
            partition_key=today,
            tags={"superdan/trigger": "daily_job_success", **city.tags},
        )

    return CityAutomation(
        jobs=list(jobs.values()), schedule=daily_schedule, sensors=[street_risk_after_daily]
    )


def forecast_day(run_tags: dict[str, str], timezone: str) -> str:
    """The day to forecast after a daily run: the day after the last re-fetched one (the run's
    range end, i.e. yesterday when it ran; today in the city when the run has no range)."""
    end = run_tags.get("dagster/asset_partition_range_end") or run_tags.get("dagster/partition")
    if end:
        return (date.fromisoformat(end) + timedelta(days=1)).isoformat()
    return datetime.now(ZoneInfo(timezone)).date().isoformat()
