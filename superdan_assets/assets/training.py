"""crime_model: trained on a window of crime_features days, evaluated on a later period, gated.

The asset is thin: it picks the window, reads the days, calls ``ml.training``, stores the
artifact in the registry (registered, not promoted), logs the run to W&B, and reports the
blocking quality gates as asset checks. Promotion happens only in ``model_endpoint``, which
Dagster runs only when every blocking gate passed; the registry also records each version's
gate results, so a version that failed can never be promoted by a later run either.
"""

import json
from datetime import date, timedelta

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from superdan_assets.assets.city import City
from superdan_assets.checks.model_gates import (
    GateResult,
    beats_baselines_gate,
    no_regression_gate,
)
from superdan_assets.cities.spec import CitySpec
from superdan_assets.ml.defaults import DEFAULT_RECALL_MARGIN, DEFAULT_THRESHOLD_DAYS
from superdan_assets.resources.storage import StorageResource
from superdan_assets.resources.tracking import ExperimentTracker

GATE_CHECKS = ("beats_baselines", "no_regression_vs_production")
GATES_FILE = "gates.json"


class CrimeModelConfig(Config):
    """Training window and hyper-parameters (editable in the UI's launchpad)."""

    train_start: str | None = Field(
        default=None, description="First day of the window (default: first stored day)"
    )
    train_end: str | None = Field(
        default=None,
        description="Last day of the window, holdout included (default: last stored day)",
    )
    holdout_days: int = Field(
        default=90, description="Days at the end of the window held out for evaluation"
    )
    min_recall: float = Field(
        default=0.6, description="Threshold policy: best precision among recall >= this"
    )
    threshold_days: int = Field(
        default=DEFAULT_THRESHOLD_DAYS,
        description="The threshold is chosen on this many most recent labelled days before the "
        "holdout (scored by a model fitted without them)",
    )
    recall_margin: float = Field(
        default=DEFAULT_RECALL_MARGIN,
        description="Chosen at recall >= min_recall + this on those days, so recall on the "
        "following period stays at the policy's level",
    )
    production_margin: float = Field(
        default=0.01, description="Largest PR-AUC drop vs production that still passes"
    )
    seed: int = Field(default=0, description="Random seed for the model and baselines")
    hyperparameters: str = Field(
        default="{}",
        description="JSON object of model hyper-parameters merged over the defaults "
        "(see superdan_assets.ml.model.DEFAULT_PARAMS)",
    )


def city_model_params(spec: CitySpec, overrides: dict) -> tuple[dict, str]:
    """``(params, where they come from)``: the winner of the city's own selection record
    (``[model] selection`` in its spec) under ``overrides``, or ``overrides`` alone (the model's
    defaults, the packaged Chicago selection).

    Why the spec names it: a selection is measured on one city's history; a city with years of
    its own should not be trained with Chicago's choices once it has made its own.
    """
    from superdan_assets.ml.selected import DEFAULT_SELECTION, describe_selection, load_selection

    path = spec.selection_path()
    if path is None:
        packaged = load_selection(DEFAULT_SELECTION)
        return dict(overrides), describe_selection(packaged, "packaged Chicago selection")
    try:
        record = load_selection(path)
    except (FileNotFoundError, ValueError) as exc:
        raise ValueError(
            f"city {spec.name}: [model] selection in {spec.spec_path or 'its spec'}: {exc}"
        ) from None
    return {**record["winner"]["params"], **overrides}, describe_selection(record, str(path))


def training_window(
    available: list[str], train_start: str | None, train_end: str | None, holdout_days: int
) -> tuple[list[str], list[str]]:
    """Split the stored days of the window into (training days, held-out days), in time order.

    Time split, never random: the held-out period is the last ``holdout_days`` calendar days of
    the window, so the model is always judged on days after everything it learnt from.
    """
    if holdout_days < 1:
        raise ValueError(f"holdout_days must be at least 1, got {holdout_days}")
    days = sorted(available)
    if not days:
        raise ValueError(
            "no crime_features partitions are stored: materialize raw_crimes and crime_features "
            "for a range of days first (e.g. the ingest_job)"
        )
    start = date.fromisoformat(train_start) if train_start else date.fromisoformat(days[0])
    end = date.fromisoformat(train_end) if train_end else date.fromisoformat(days[-1])
    holdout_start = end - timedelta(days=holdout_days - 1)
    if holdout_start <= start:
        raise ValueError(
            f"window {start}..{end} is too short for a {holdout_days}-day holdout; "
            "widen the window or lower holdout_days"
        )
    in_window = [d for d in days if start.isoformat() <= d <= end.isoformat()]
    train = [d for d in in_window if d < holdout_start.isoformat()]
    test = [d for d in in_window if d >= holdout_start.isoformat()]
    if not train or not test:
        raise ValueError(
            f"the stored days in {start}..{end} leave no {'training' if not train else 'held-out'} "
            f"days (holdout from {holdout_start}); materialize crime_features for those days"
        )
    return train, test


def _gate_check(result: GateResult) -> AssetCheckResult:
    return AssetCheckResult(
        check_name=result.name,
        passed=result.passed,
        severity=AssetCheckSeverity.ERROR,
        description=result.summary,
        metadata={
            "summary": result.summary,
            **{k: v for k, v in result.details.items() if v is not None},
        },
    )


def build_crime_model(city: City):
    """The city's ``crime_model`` asset."""

    @asset(
        key=city.key("crime_model"),
        deps=[city.key("crime_features")],
        check_specs=[
            AssetCheckSpec(
                "beats_baselines",
                asset=city.key("crime_model"),
                blocking=True,
                description="PR-AUC above the class prior and the original project's protocol",
            ),
            AssetCheckSpec(
                "no_regression_vs_production",
                asset=city.key("crime_model"),
                blocking=True,
                description="PR-AUC not below the production model's on the same held-out "
                "period by more than the configured margin",
            ),
        ],
        kinds={"scikit-learn", "lightgbm"},
        group_name=city.group,
        tags=city.tags,
        description=f"{city.spec.title} burglary-vs-theft model trained on a window of "
        "crime_features and evaluated on the later held-out days; registered (not yet promoted) "
        "with its manifest.",
    )
    def crime_model(
        context: AssetExecutionContext,
        config: CrimeModelConfig,
        storage: StorageResource,
        tracker: ExperimentTracker,
    ):
        from superdan_assets.ml import plots
        from superdan_assets.ml.training import train_and_evaluate

        partitions = storage.partitions(city.name)
        # Stored days passed their blocking expectations by construction: a day that failed
        # them was quarantined instead of written (checks/decide.py), so none is read here.
        train_days, test_days = training_window(
            partitions.list_partitions("crime_features"),
            config.train_start,
            config.train_end,
            config.holdout_days,
        )
        quarantined = [
            d
            for d in partitions.quarantined("crime_features")
            if train_days[0] <= d <= test_days[-1] and d not in set(train_days + test_days)
        ]
        if quarantined:
            context.log.warning(
                f"{len(quarantined)} day(s) of the window are quarantined and left out, e.g. "
                f"{quarantined[:5]}"
            )
        context.log.info(
            f"training on {len(train_days)} day(s) {train_days[0]}..{train_days[-1]}, "
            f"evaluating on {len(test_days)} day(s) {test_days[0]}..{test_days[-1]}"
        )
        train = partitions.read_many("crime_features", train_days)
        test = partitions.read_many("crime_features", test_days)
        params = json.loads(config.hyperparameters or "{}")
        if not isinstance(params, dict):
            raise ValueError('hyperparameters must be a JSON object, e.g. {"learning_rate": 0.05}')
        params, selection = city_model_params(city.spec, params)
        context.log.info(f"model settings: {selection}")

        result = train_and_evaluate(
            train,
            test,
            city=city.name,
            params=params,
            min_recall=config.min_recall,
            seed=config.seed,
            progress=context.log.info,
            threshold_days=config.threshold_days,
            recall_margin=config.recall_margin,
        )
        manifest = result.manifest
        version = str(manifest["version"])

        registry = storage.registry(city.name)
        staging = storage.scratch_dir("artifacts") / version
        from superdan_assets.ml.artifact import save_model

        manifest = save_model(result.pipeline, manifest, staging)
        registry.register(staging)
        _save_drift_reference(registry, version, result, test)

        production_version = registry.production_version()
        production_pr_auc = None
        if production_version and production_version != version:
            production = registry.load(production_version)
            production_pr_auc = _pr_auc_of(production, test)
        model_metrics = manifest["metrics"]["model"]
        if model_metrics.get("pr_auc") is None:
            raise ValueError(
                f"the held-out days {test_days[0]}..{test_days[-1]} contain only one class, so the "
                "model cannot be judged; widen holdout_days"
            )
        gates = [
            beats_baselines_gate(
                model_metrics["pr_auc"],
                {
                    name: m["pr_auc"]
                    for name, m in manifest["metrics"]["baselines"].items()
                    if m.get("pr_auc") is not None
                },
            ),
            no_regression_gate(
                model_metrics["pr_auc"],
                production_pr_auc,
                production_version,
                config.production_margin,
            ),
        ]
        registry.blobs.write_bytes(
            f"models/{version}/{GATES_FILE}",
            json.dumps(
                {g.name: {"passed": g.passed, "summary": g.summary} for g in gates}
            ).encode(),
        )

        figures = {
            "pr_curve": plots.pr_curve_png(result),
            "calibration": plots.calibration_png(result),
            "feature_importance": plots.feature_importance_png(result),
        }
        tracked = tracker.log_training(
            name=f"crime-model-{city.name}-{version}",
            config={
                "city": city.name,
                "version": version,
                "train_days": [train_days[0], train_days[-1]],
                "test_days": [test_days[0], test_days[-1]],
                "params": manifest.get("params"),
                "min_recall": config.min_recall,
                "seed": config.seed,
            },
            metrics=manifest["metrics"],
            plots=figures,
            artifact_dir=staging,
        )
        return MaterializeResult(
            metadata={
                "model_version": version,
                "city": city.name,
                "registry_uri": registry.blobs.uri(f"models/{version}/"),
                "production_version": production_version or "none",
                "train_window": f"{train_days[0]}..{train_days[-1]}",
                "test_window": f"{test_days[0]}..{test_days[-1]}",
                "model_settings": selection,
                "train_rows": int(len(train)),
                "test_rows": int(len(test)),
                "days_quarantined_in_window": len(quarantined),
                # Headline: what the deployed threshold does on the held-out days.
                "precision_at_threshold": float(model_metrics["at_threshold"]["precision"]),
                "recall_at_threshold": float(model_metrics["at_threshold"]["recall"]),
                "threshold": float(manifest["threshold"]),
                "threshold_min_recall": float(config.min_recall),
                "threshold_chosen_on": "{start}..{end}".format(
                    **manifest["threshold_policy"]["slice_window"]
                ),
                "threshold_target_recall": round(
                    float(manifest["threshold_policy"]["target_recall"]), 6
                ),
                "f1_at_threshold": float(model_metrics["at_threshold"]["f1"]),
                "roc_auc": float(model_metrics["roc_auc"]),
                "pr_auc": float(model_metrics["pr_auc"]),
                "log_loss": float(model_metrics["log_loss"]),
                "brier": float(model_metrics["brier"]),
                # A curve statistic (best point of the held-out days' own PR curve, picked
                # with their labels), not an operating point: labelled so in the key.
                "curve_precision_at_recall_0_6": _number(
                    model_metrics.get("precision_at_recall_0_6")
                ),
                "expected_calibration_error": _number(
                    (model_metrics.get("calibration") or {}).get("expected_calibration_error")
                ),
                "confusion_matrix": MetadataValue.json(
                    model_metrics["at_threshold"]["confusion_matrix"]
                ),
                "fit_seconds": round(float(result.timings.get("fit_seconds", 0.0)), 1),
                **{
                    f"{name}_pr_auc": _number(m.get("pr_auc"))
                    for name, m in manifest["metrics"]["baselines"].items()
                },
                "pr_curve": MetadataValue.md(
                    plots.png_to_markdown(figures["pr_curve"], "PR curve")
                ),
                "calibration": MetadataValue.md(
                    plots.png_to_markdown(figures["calibration"], "calibration")
                ),
                "feature_importance": MetadataValue.md(
                    plots.png_to_markdown(figures["feature_importance"], "feature importance")
                ),
                "wandb_mode": tracked.mode,
                "wandb_run": tracked.url or tracked.run_id or "disabled",
            },
            check_results=[_gate_check(g) for g in gates],
        )

    return crime_model


def _number(value) -> float:
    return float("nan") if value is None else float(value)


def _save_drift_reference(registry, version: str, result, test: pd.DataFrame) -> None:
    """The drift reference of this model: its held-out rows and its scores on them.

    Held-out rows, not training rows: they are what the model's reported metrics describe,
    and the training rows' history features were built differently (expanding, in-sample).
    """
    from superdan_assets.ml.drift import build_reference_profile

    scores = result.pipeline.predict_proba(test)[:, 1]
    profile = build_reference_profile(
        test, scores, threshold=result.threshold, metadata={"model_version": version}
    )
    registry.blobs.write_bytes(
        f"models/{version}/reference.json", json.dumps(profile.to_dict()).encode()
    )


def _pr_auc_of(model, rows: pd.DataFrame) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(rows["label"], model.predict_proba(rows)))
