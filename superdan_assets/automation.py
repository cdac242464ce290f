"""Jobs, the daily schedule and the alert sensor.

The daily schedule is the one thing that runs on its own: every morning (Chicago time) it
re-fetches the last ``SUPERDAN_REFETCH_DAYS`` days (late reports land in the day they occurred),
runs their expectation checks, and materializes those days' drift reports. Retraining is a
deliberate action (the ``train_and_deploy_job``), never a side effect of the schedule: a model
is promoted only after a person asked for it and its gates passed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleEvaluationContext,
    define_asset_job,
    schedule,
)

from superdan_assets.partitions import CITY_TIMEZONE, FIRST_DAY

INGEST_ASSETS = AssetSelection.assets("raw_crimes", "crime_features")
DAILY_ASSETS = AssetSelection.assets("raw_crimes", "crime_features", "drift_report")

ingest_job = define_asset_job(
    "ingest_job",
    selection=INGEST_ASSETS,
    description="Fetch a range of days and build their features (with their checks).",
)
training_job = define_asset_job(
    "training_job",
    selection=AssetSelection.assets("crime_model"),
    description="Train and gate a model on a window of crime_features (not deployed).",
)
train_and_deploy_job = define_asset_job(
    "train_and_deploy_job",
    selection=AssetSelection.assets("crime_model", "model_endpoint"),
    description="Train, gate and, only if every blocking gate passed, promote and deploy.",
)
drift_job = define_asset_job(
    "drift_job",
    selection=AssetSelection.assets("drift_report"),
    description="The drift report of one day against the deployed model's training reference.",
)
daily_job = define_asset_job(
    "daily_job",
    selection=DAILY_ASSETS,
    description="Re-fetch the last days (late reports), check them, and report drift.",
)


def refetch_window(scheduled: datetime, refetch_days: int) -> tuple[str, str]:
    """Partitions a tick at ``scheduled`` (Chicago time) fills: the last ``refetch_days``
    complete days, ending yesterday, never before the first partition."""
    if refetch_days < 1:
        raise ValueError(f"refetch_days must be at least 1, got {refetch_days}")
    yesterday = scheduled.date() - timedelta(days=1)
    first = max(yesterday - timedelta(days=refetch_days - 1), datetime.fromisoformat(FIRST_DAY).date())
    return first.isoformat(), yesterday.isoformat()


def _refetch_days() -> int:
    from superdan_assets.settings import Settings

    return Settings.from_env().refetch_days


@schedule(
    job=daily_job,
    cron_schedule="0 6 * * *",
    execution_timezone=CITY_TIMEZONE,
    default_status=DefaultScheduleStatus.RUNNING,
    description="06:00 Chicago: re-fetch the last days, check them, report drift.",
)
def daily_drift_schedule(context: ScheduleEvaluationContext):
    start, end = refetch_window(context.scheduled_execution_time, _refetch_days())
    return RunRequest(
        run_key=f"daily-{end}",
        tags={
            "dagster/asset_partition_range_start": start,
            "dagster/asset_partition_range_end": end,
            "superdan/trigger": "daily_schedule",
        },
    )
