"""street_risk: the day's burglary and theft risk per block, with maps, monitored every day.

Partition D is the forecast *for* day D, made from the ``crime_features`` days strictly
before D (so the morning run forecasts today from everything up to yesterday). The asset is
thin: :func:`produce_street_risk` is a plain function of (history rows, day, storage, tracker,
settings) that the per-city factory can call unchanged; the decorated asset only reads the
stored days and reports.

What it does for a day:
1. the deployed street-risk model (its own registry below ``street_risk/`` in the same
   storage, so its versions never mix with the classifier's); when there is none, or the
   deployed one is older than ``retrain_every_days``, it trains one on the history before
   ``D - validation_days``, scores it against the baselines on the ``validation_days`` days
   before D (the gate), registers it and deploys it only when the gate passes (W&B run either
   way);
2. the forecast frame of D (``street_risk/forecasts/D.parquet``), the PNG map and top-20
   table in the metadata, the folium HTML map beside it (``street_risk/forecasts/D.html``);
3. monitoring: the previous day's forecast scored against the previous day's crimes
   (``street_risk/monitoring/D-1.json``), charted, and a WARN check when the model stayed below
   the long-term hot-spot baseline for 7 days in a row.
"""

import json
import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    Config,
    DailyPartitionsDefinition,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionMapping,
    asset,
)
from pydantic import Field

from superdan_assets.assets.city import City
from superdan_assets.cities.spec import CitySpec
from superdan_assets.resources.storage import StorageResource
from superdan_assets.resources.tracking import ExperimentTracker
from superdan_assets.serving.risk import LIVE_POINTER, MODEL_VERSION_METADATA
from superdan_assets.storage.blobstore import BlobNotFound, BlobStore, make_blob_store
from superdan_assets.storage.partitions import frame_to_parquet_bytes, parquet_bytes_to_frame
from superdan_assets.storage.registry import ModelRegistry

ASSET = "street_risk"
PREFIX = "street_risk"
MONITORING = "monitoring"
#: Same folder name as ``serving/risk.py`` reads: the endpoint can serve this folder as is.
FORECASTS = "forecasts"
CHECK = "hit_rate_above_long_term_baseline"
STREAK_DAYS = 7


def forecast_partitions(spec: CitySpec) -> DailyPartitionsDefinition:
    """The city's days, like its data partitions, but reaching today: partition D is the
    forecast *for* D, made each morning from the days before it, so today's partition must
    exist before today is over (``end_offset=1``; the data partitions end with yesterday, the
    last complete day of reports)."""
    return DailyPartitionsDefinition(
        start_date=spec.city.first_day.isoformat(), timezone=spec.timezone, end_offset=1
    )


CHART_DAYS = 60


class StreetRiskConfig(Config):
    """Retraining cadence and the training settings (editable in the UI's launchpad)."""

    retrain_every_days: int = Field(
        default=28, description="Train a new model when the deployed one's cutoff is older"
    )
    validation_days: int = Field(
        default=28, description="Days before the forecast day the gate scores a new model on"
    )
    history_days: int = Field(
        default=2557, description="Stored crime_features days read before the forecast day"
    )
    training: str = Field(
        default="{}",
        description="JSON overrides of superdan_assets.ml.street_risk.training.TrainingConfig "
        "(train_years, train_step, target_days: a number of days or one per type such as "
        '{"burglary": 28, "theft": 1}, zero_fraction, params)',
    )
    min_pai_ratio: float = Field(
        default=1.0,
        description="Gate: a new model is deployed only when its PAI at 1 % is above this "
        "multiple of the best baseline's on the validation days, for every crime type",
    )
    seed: int = Field(default=0)


def street_risk_blobs(storage: StorageResource, city: str) -> BlobStore:
    """The city's street-risk part of the storage: ``<base>/<city>/street_risk`` or
    ``s3://.../<city>/street_risk``."""
    return make_blob_store(
        storage.storage,
        Path(storage.base_dir) / city / PREFIX,
        storage.s3_bucket,
        f"{storage.s3_prefix}/{city}/{PREFIX}".strip("/"),
    )


def street_risk_registry(storage: StorageResource, city: str) -> ModelRegistry:
    return ModelRegistry(
        street_risk_blobs(storage, city), Path(storage.cache_dir) / "street_risk_models" / city
    )


def endpoint_bundle(
    storage: StorageResource,
    city: str,
    classifier_dir: str | Path,
    target: str | Path,
    days: int = 14,
) -> Path:
    """The directory ``model_endpoint`` deploys: the classifier artifact plus ``street_risk/``.

    ``street_risk/`` holds the deployed street-risk artifact (fetched verified) and its last
    ``days`` forecasts, the layout ``serving/risk.py`` reads from ``<model dir>/street_risk``.
    With local storage it also holds ``live.json``, the path of the storage's forecast folder:
    a local endpoint then serves each morning's forecast as soon as the ``street_risk`` asset
    wrote it, not only those bundled at its deployment (which may be months old when the
    classifier is not retrained). On S3 the bundle is what the endpoint has.
    Without a deployed street-risk model the bundle is the classifier alone (``/risk`` then
    answers 503 saying so). The classifier's own files are copied unchanged, so its manifest
    and sha256 still verify.
    """
    import shutil

    target = Path(target)
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(classifier_dir, target)
    registry = street_risk_registry(storage, city)
    version = registry.production_version()
    if version is None:
        return target
    risk_dir = target / "street_risk"
    shutil.copytree(registry.fetch(version), risk_dir)
    blobs = street_risk_blobs(storage, city)
    keys = sorted(k for k in blobs.list(f"{FORECASTS}/") if k.endswith(".parquet"))
    (risk_dir / FORECASTS).mkdir()
    for key in keys[-days:]:
        (risk_dir / FORECASTS / key.split("/")[-1]).write_bytes(blobs.read_bytes(key))
    if storage.storage == "local":
        live = (Path(storage.base_dir) / city / PREFIX / FORECASTS).resolve()
        (risk_dir / LIVE_POINTER).write_text(json.dumps({"forecasts": str(live)}) + "\n")
    return target


@dataclass
class StreetRiskOutcome:
    """What one day's run produced: the forecast and what the asset reports."""

    forecast: pd.DataFrame
    metadata: dict
    check: AssetCheckResult
    notes: list[str] = field(default_factory=list)


def produce_street_risk(
    history: pd.DataFrame,
    day: str,
    blobs: BlobStore,
    registry: ModelRegistry,
    tracker: ExperimentTracker,
    config: StreetRiskConfig,
    log=print,
) -> StreetRiskOutcome:
    """The whole asset body for forecast day ``day`` from ``crime_features`` rows ``history``."""
    from superdan_assets.ml.plots import png_to_markdown
    from superdan_assets.ml.street_risk import maps
    from superdan_assets.ml.street_risk.artifact import load_street_risk
    from superdan_assets.ml.street_risk.forecast import forecast_day, history_before

    history = history_before(history, day)
    model_dir, manifest, tracked = _deployed_or_new_model(
        history, day, registry, tracker, config, log
    )
    model, manifest = load_street_risk(model_dir)
    model.set_threads(1)
    forecast = forecast_day(model, history, day)
    blobs.write_bytes(
        f"{FORECASTS}/{day}.parquet",
        frame_to_parquet_bytes(forecast, {MODEL_VERSION_METADATA: manifest["version"]}),
    )
    title = f"street risk {day} (model {manifest['version']})"
    blobs.write_bytes(f"{FORECASTS}/{day}.html", maps.risk_map_html(forecast, title=title).encode())
    png = maps.risk_map_png(forecast, title=title)

    records = _update_monitoring(blobs, history, day, log)
    check = _monitoring_check(records)
    latest = records[-1] if records and records[-1]["day"] == _previous(day) else None
    metadata = {
        "model_version": manifest["version"],
        "model_cutoff": manifest["cutoff"],
        "trained_this_run": tracked is not None,
        "wandb_run": (tracked.url or tracked.run_id or tracked.mode) if tracked else "not trained",
        "places": int((forecast["crime_type"] == "burglary").sum()),
        "history_rows": int(len(history)),
        "forecast_uri": blobs.uri(f"{FORECASTS}/{day}.parquet"),
        "map": MetadataValue.md(png_to_markdown(png, f"street risk {day}")),
        "interactive_map": MetadataValue.url(_as_url(blobs.uri(f"{FORECASTS}/{day}.html"))),
        "top_20": MetadataValue.md(maps.top_table_markdown(forecast, 20)),
        "hit_rate_history": MetadataValue.md(
            png_to_markdown(_hit_rate_chart(records[-CHART_DAYS:]), "realised hit rate at 1 %")
        )
        if records
        else "no realised hit rate yet",
    }
    for crime_type in ("burglary", "theft"):
        one = forecast[forecast["crime_type"] == crime_type]
        metadata[f"{crime_type}_expected_total"] = float(one["expected_count"].sum())
        if latest is not None:
            for method, value in latest[crime_type].items():
                if not math.isnan(value):
                    metadata[f"realised_hit_rate_1pct_{crime_type}_{method}"] = float(value)
    return StreetRiskOutcome(forecast, metadata, check)


def _as_url(uri: str) -> str:
    return uri if "://" in uri else Path(uri).resolve().as_uri()


def _previous(day: str) -> str:
    return (date.fromisoformat(day) - timedelta(days=1)).isoformat()


def _deployed_or_new_model(history, day, registry, tracker, config, log):
    """(artifact dir, manifest, W&B run of a training now or None) of the model for ``day``."""
    version = registry.production_version()
    if version is not None:
        manifest = registry.manifest(version)
        age = (date.fromisoformat(day) - date.fromisoformat(manifest["cutoff"])).days
        # A model from before per-type feature sets (one list for every type) cannot forecast
        # with the current features: replace it rather than fail every day until it ages out.
        current = isinstance(manifest.get("feature_names"), dict)
        if current and age <= config.retrain_every_days + config.validation_days:
            return registry.fetch(version), manifest, None
        reason = f"has cutoff {manifest['cutoff']}" if current else "predates per-type features"
        log(f"deployed street-risk model {version} {reason}: retraining")
    return _train_and_gate(history, day, registry, tracker, config, log)


def _train_and_gate(history, day, registry, tracker, config, log):
    import tempfile

    from superdan_assets.ml.street_risk.artifact import save_street_risk
    from superdan_assets.ml.street_risk.training import TrainingConfig, train_street_risk, validate

    overrides = json.loads(config.training or "{}")
    if not isinstance(overrides, dict):
        raise ValueError('training must be a JSON object, e.g. {"train_years": 2}')
    training = TrainingConfig(**overrides)
    cutoff = pd.Timestamp(day) - pd.Timedelta(days=config.validation_days)
    log(f"training a street-risk model on history before {cutoff.date()}")
    model = train_street_risk(history, cutoff, training, seed=config.seed, progress=log)
    model.set_threads(1)
    validation_days = pd.date_range(cutoff, pd.Timestamp(day) - pd.Timedelta(days=1), freq="D")
    result = validate(model, history, validation_days, min_ratio=config.min_pai_ratio)
    log(f"gate: {'passed' if result.passed else 'FAILED'}: {result.reason}")
    staging = Path(tempfile.mkdtemp(prefix="street-risk-"))
    manifest = save_street_risk(
        model, staging / "artifact", cutoff, result.summary, result.passed, result.reason
    )
    registry.register(staging / "artifact")
    version = manifest["version"]
    tracked = tracker.log_training(
        name=f"street-risk-{version}",
        config={"version": version, "cutoff": manifest["cutoff"], **overrides},
        metrics={"validation": result.summary, "gate_passed": result.passed},
        plots={},
        artifact_dir=staging / "artifact",
        artifact_name="street-risk-model",
    )
    if result.passed:
        registry.promote(version, reason=result.reason)
        return registry.fetch(version), registry.manifest(version), tracked
    deployed = registry.production_version()
    if deployed is None:
        raise RuntimeError(
            f"street-risk model {version} failed its gate ({result.reason}) and no earlier model "
            "is deployed: no forecast can be made; widen the history or the validation window"
        )
    log(f"keeping the deployed model {deployed}")
    return registry.fetch(deployed), registry.manifest(deployed), tracked


def _update_monitoring(blobs: BlobStore, history: pd.DataFrame, day: str, log) -> list[dict]:
    """Score the previous day's stored forecast against its crimes; return all records so far."""
    from superdan_assets.ml.street_risk.monitoring import realised_record

    previous = _previous(day)
    try:
        forecast = parquet_bytes_to_frame(blobs.read_bytes(f"{FORECASTS}/{previous}.parquet"))
    except BlobNotFound:
        forecast = None
    if forecast is not None:
        dates = pd.to_datetime(history["date"]).dt.normalize()
        day_rows = history[dates == pd.Timestamp(previous)]
        if len(day_rows):
            record = realised_record(forecast, day_rows)
            blobs.write_bytes(f"{MONITORING}/{previous}.json", json.dumps(record).encode())
            log(f"realised hit rates of the {previous} forecast: {record}")
    records = []
    for key in blobs.list(f"{MONITORING}/"):
        if key.endswith(".json") and key.split("/")[-1][:-5] <= previous:
            records.append(json.loads(blobs.read_bytes(key)))
    return sorted(records, key=lambda r: r["day"])


def _monitoring_check(records: list[dict]) -> AssetCheckResult:
    from superdan_assets.ml.street_risk.monitoring import below_baseline_streak

    streaks = {t: below_baseline_streak(records, t) for t in ("burglary", "theft")}
    failing = [t for t, s in streaks.items() if s >= STREAK_DAYS]
    text = (
        f"below the long-term hot-spot baseline {STREAK_DAYS}+ days in a row: {', '.join(failing)}"
        if failing
        else f"days in a row below the long-term baseline: {streaks}"
    )
    return AssetCheckResult(
        check_name=CHECK,
        passed=not failing,
        severity=AssetCheckSeverity.WARN,
        description=text,
        metadata={f"{t}_days_below": s for t, s in streaks.items()},
    )


def _hit_rate_chart(records: list[dict]) -> bytes:
    from superdan_assets.ml.street_risk.maps import hit_rate_chart_png

    return hit_rate_chart_png(records)


def build_street_risk(city: City):
    """The city's ``street_risk`` asset."""

    @asset(
        key=city.key(ASSET),
        partitions_def=forecast_partitions(city.spec),
        deps=[
            AssetDep(
                city.key("crime_features"),
                partition_mapping=TimeWindowPartitionMapping(start_offset=-1, end_offset=-1),
            )
        ],
        check_specs=[
            AssetCheckSpec(
                CHECK,
                asset=city.key(ASSET),
                description=f"WARN when the realised hit rate at 1 % stayed below the long-term "
                f"hot-spot baseline's for {STREAK_DAYS} days in a row",
            )
        ],
        kinds={"lightgbm", "pandas"},
        group_name=city.group,
        tags=city.tags,
        description=f"{city.spec.title}: the day's burglary and theft risk per block (expected "
        "count, P(at least one), rank), forecast from the days before it, with a map and "
        "yesterday's realised hit rate.",
    )
    def street_risk(
        context: AssetExecutionContext,
        config: StreetRiskConfig,
        storage: StorageResource,
        tracker: ExperimentTracker,
    ):
        day = context.partition_key
        partitions = storage.partitions(city.name)
        first = (date.fromisoformat(day) - timedelta(days=config.history_days)).isoformat()
        days = [d for d in partitions.list_partitions("crime_features") if first <= d < day]
        if not days:
            raise ValueError(
                f"no crime_features days are stored before {day}: materialize crime_features for "
                "the days before it first"
            )
        history = partitions.read_many("crime_features", days)
        context.log.info(f"forecasting {day} from {len(days)} day(s) {days[0]}..{days[-1]}")
        outcome = produce_street_risk(
            history,
            day,
            street_risk_blobs(storage, city.name),
            street_risk_registry(storage, city.name),
            tracker,
            config,
            log=context.log.info,
        )
        return MaterializeResult(
            metadata={"city": city.name, "history_days": len(days), **outcome.metadata},
            check_results=[outcome.check],
        )

    return street_risk
