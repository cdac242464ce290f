"""drift_report: one day's data and predictions against the deployed model's training reference.

The reference profile is computed once at training time and stored with the model in the
registry, so a day's report reads only that day (a fraction of a second per day). Each day's
report is also saved as JSON beside the partitions, which is what the "performance over time"
plot draws from. Before any model is deployed the report says so and succeeds: the daily
schedule must stay green on a fresh install.
"""

import json
import math
from datetime import date, timedelta

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    BackfillPolicy,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from superdan_assets.assets.city import City
from superdan_assets.assets.ingestion import MAX_DAYS_PER_RUN
from superdan_assets.assets.metadata import markdown_table
from superdan_assets.resources.storage import StorageResource
from superdan_assets.storage.blobstore import BlobNotFound

REFERENCE_FILE = "reference.json"
REPORTS_PREFIX = "drift_reports"
NO_MODEL = "NO_MODEL"


class DriftReportConfig(Config):
    """Drift thresholds (defaults: 0.1, as the best-known drift tools use)."""

    numeric_threshold: float = Field(default=0.1, description="Wasserstein / reference std")
    psi_threshold: float = Field(default=0.1)
    categorical_threshold: float = Field(default=0.1, description="Jensen-Shannon distance")
    prediction_threshold: float = Field(default=0.1)
    performance_tolerance: float = Field(
        default=0.05, description="Realised metric drop (absolute) that counts as a collapse"
    )
    history_days: int = Field(default=60, description="Days drawn in the performance plot")


def performance_collapsed(report: dict, tolerance: float) -> tuple[bool, str]:
    """Whether the day's realised PR-AUC is clearly below the reference.

    "Clearly": even the upper end of the day's bootstrap interval lies more than ``tolerance``
    below the reference PR-AUC, so one unlucky day of ~250 rows does not page anyone.
    """
    perf = report.get("performance") or {}
    reference = (report.get("reference_metrics") or {}).get("pr_auc")
    if not perf.get("evaluated") or reference is None:
        return False, perf.get("reason") or "realised performance not evaluated"
    pr_auc = perf["metrics"]["pr_auc"]
    high = pr_auc.get("high")
    if high is None or (isinstance(high, float) and math.isnan(high)):
        return False, "no confidence interval for the day's PR-AUC"
    text = (
        f"realised PR-AUC {pr_auc['value']:.3f} (95 % CI {pr_auc['low']:.3f}-{high:.3f}) vs "
        f"reference {reference:.3f}"
    )
    return high < reference - tolerance, text


def _checks(report: dict | None, tolerance: float, key) -> list[AssetCheckResult]:
    if report is None:
        note = {"note": "no deployed model yet: nothing to compare with"}
        return [
            AssetCheckResult(asset_key=key, check_name="no_data_drift", passed=True, metadata=note),
            AssetCheckResult(
                asset_key=key, check_name="no_performance_collapse", passed=True, metadata=note
            ),
        ]
    collapsed, text = performance_collapsed(report, tolerance)
    return [
        AssetCheckResult(
            asset_key=key,
            check_name="no_data_drift",
            passed=report["verdict"] == "OK",
            severity=AssetCheckSeverity.WARN,
            description="; ".join(report["reasons"]) or "no material drift",
            metadata={
                "verdict": report["verdict"],
                "drifted_features": MetadataValue.json(report["drifted_features"]),
                "drift_share": float(report["drift_share"]),
            },
        ),
        AssetCheckResult(
            asset_key=key,
            check_name="no_performance_collapse",
            passed=not collapsed,
            severity=AssetCheckSeverity.ERROR,
            description=text,
            metadata={"detail": text},
        ),
    ]


def build_drift_report(city: City):
    """The city's ``drift_report`` asset."""

    @asset(
        key=city.key("drift_report"),
        partitions_def=city.partitions_def,
        backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=MAX_DAYS_PER_RUN),
        ins={"crime_features": AssetIn(key=city.key("crime_features"))},
        deps=[city.key("model_endpoint")],
        check_specs=[
            AssetCheckSpec(
                "no_data_drift",
                asset=city.key("drift_report"),
                description="WARN when the day's verdict is WARN or ALERT",
            ),
            AssetCheckSpec(
                "no_performance_collapse",
                asset=city.key("drift_report"),
                description="ERROR when realised PR-AUC is clearly below the reference",
            ),
        ],
        kinds={"pandas", "scipy"},
        group_name=city.group,
        tags=city.tags,
        description=f"One day's feature, prediction and label drift and realised performance of "
        f"{city.spec.title}'s deployed model, against its training reference; verdict OK / WARN / "
        "ALERT.",
    )
    def drift_report(
        context: AssetExecutionContext,
        config: DriftReportConfig,
        crime_features: pd.DataFrame,
        storage: StorageResource,
    ):
        from superdan_assets.ml import drift
        from superdan_assets.ml.drift_plots import (
            plot_performance_over_time,
            plot_top_drifted_features,
            png_markdown,
        )

        registry = storage.registry(city.name)
        blobs = storage.blobs(city.name)
        version = registry.production_version()
        if version is None:
            context.log.warning("no model is deployed yet: run train_and_deploy_job first")
            yield MaterializeResult(metadata={"verdict": NO_MODEL, "model_version": "none"})
            yield from _checks(None, config.performance_tolerance, city.key("drift_report"))
            return
        try:
            profile = drift.ReferenceProfile.from_dict(
                json.loads(blobs.read_bytes(f"models/{version}/{REFERENCE_FILE}"))
            )
        except BlobNotFound as exc:
            raise RuntimeError(
                f"model {version} has no drift reference ({REFERENCE_FILE}); retrain it with "
                "crime_model to create one"
            ) from exc
        model = registry.load(version)
        drift_config = drift.DriftConfig(
            numeric_threshold=config.numeric_threshold,
            psi_threshold=config.psi_threshold,
            categorical_threshold=config.categorical_threshold,
            prediction_threshold=config.prediction_threshold,
            performance_tolerance=config.performance_tolerance,
        )
        days = crime_features["date"].dt.strftime("%Y-%m-%d")
        reports = []
        for key in sorted(context.partition_keys):
            rows = crime_features[days == key].reset_index(drop=True)
            probabilities = model.predict_proba(rows) if len(rows) else None
            report = drift.drift_report(
                rows, profile, probabilities, day=key, config=drift_config
            ).to_dict()
            report["model_version"] = version
            # The day's own check outcome, for the retraining sensor (superdan_assets/retraining.py).
            collapsed, detail = performance_collapsed(report, config.performance_tolerance)
            report["checks"] = {
                "no_performance_collapse": {
                    "passed": not collapsed,
                    "detail": detail,
                    "evaluated": bool((report.get("performance") or {}).get("evaluated")),
                    "tolerance": config.performance_tolerance,
                }
            }
            blobs.write_bytes(f"{REPORTS_PREFIX}/{key}.json", json.dumps(report).encode())
            reports.append((key, report))
            context.log.info(f"{key}: {report['verdict']} {'; '.join(report['reasons'])}")

        last_key, last = reports[-1]
        worst = max(reports, key=lambda kv: ["OK", "WARN", "ALERT"].index(kv[1]["verdict"]))[1]
        history = _stored_reports(blobs, last_key, config.history_days)
        perf = last.get("performance") or {}
        metrics = perf.get("metrics") or {}
        metadata = {
            "verdict": worst["verdict"],
            "reasons": MetadataValue.md("\n".join(f"- {r}" for r in worst["reasons"]) or "none"),
            "model_version": version,
            "city": city.name,
            "days": len(reports),
            "rows": int(sum(r["rows"] for _, r in reports)),
            "drift_share": float(last["drift_share"]),
            "drifted_features": MetadataValue.json(last["drifted_features"]),
            "top_drifted_features": MetadataValue.md(
                png_markdown(plot_top_drifted_features(_as_report(last)), "top drifted features")
            ),
            "performance_over_time": MetadataValue.md(
                png_markdown(plot_performance_over_time(history, "pr_auc"), "PR-AUC per day")
            ),
            **{
                f"realised_{m}": float(v["value"])
                for m, v in metrics.items()
                if v.get("value") is not None
            },
            "by_district": MetadataValue.md(_district_table(last.get("by_district") or [])),
        }
        yield MaterializeResult(metadata=metadata)
        yield from _checks(worst, config.performance_tolerance, city.key("drift_report"))

    return drift_report


def _as_report(report: dict):
    """The typed report back from its stored dict (what ``plot_top_drifted_features`` reads)."""
    from superdan_assets.ml import drift

    return drift.DriftReport.from_dict(report)


def _stored_reports(blobs, last_key: str, history_days: int) -> list[dict]:
    end = date.fromisoformat(last_key)
    out = []
    for offset in range(history_days - 1, -1, -1):
        key = (end - timedelta(days=offset)).isoformat()
        try:
            out.append(json.loads(blobs.read_bytes(f"{REPORTS_PREFIX}/{key}.json")))
        except BlobNotFound:
            continue
    return out


def _district_table(rows: list[dict]) -> str:
    if not rows:
        return "no district had enough rows"
    flat = []
    for r in rows:
        metrics = r.get("metrics") or {}
        flat.append(
            {
                "district": r.get("district"),
                "rows": r.get("rows"),
                "burglary_share": r.get("burglary_share"),
                "mean_p_burglary": r.get("mean_p_burglary"),
                "pr_auc": (metrics.get("pr_auc") or {}).get("value"),
                "roc_auc": (metrics.get("roc_auc") or {}).get("value"),
            }
        )
    return markdown_table(pd.DataFrame(flat), max_rows=30)
