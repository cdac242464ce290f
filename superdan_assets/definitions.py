"""The code location: the one place that wires assets, checks, resources and automation."""

from superdan_assets.settings import apply_runtime_defaults

apply_runtime_defaults()

from dagster import Definitions  # noqa: E402

from superdan_assets.alerts import build_check_alert_sensors  # noqa: E402
from superdan_assets.assets.deployment import model_endpoint  # noqa: E402
from superdan_assets.assets.features import crime_features  # noqa: E402
from superdan_assets.assets.ingestion import raw_crimes  # noqa: E402
from superdan_assets.assets.monitoring import drift_report  # noqa: E402
from superdan_assets.assets.training import crime_model  # noqa: E402
from superdan_assets.automation import (  # noqa: E402
    daily_drift_schedule,
    daily_job,
    drift_job,
    ingest_job,
    train_and_deploy_job,
    training_job,
)
from superdan_assets.resources.factory import build_resources  # noqa: E402
from superdan_assets.settings import Settings  # noqa: E402

_settings = Settings.from_env()

defs = Definitions(
    assets=[raw_crimes, crime_features, crime_model, model_endpoint, drift_report],
    jobs=[ingest_job, training_job, train_and_deploy_job, drift_job, daily_job],
    schedules=[daily_drift_schedule],
    sensors=build_check_alert_sensors(state_dir=_settings.home / "alerts"),
    resources=build_resources(_settings),
)
