"""``superdan pipeline``: the main job, on the embedded defaults, in one command.

It runs the same Dagster jobs the UI and the schedule run, against the persistent local
instance (``DAGSTER_HOME``, default ``.superdan/dagster_home``), so everything it did shows up
in the Dagster UI afterwards: materializations, check results, the model, the endpoint.

Steps: ingest the window (raw_crimes + crime_features, one single-run backfill, with their
checks), train and gate the model, deploy it to the local endpoint, and compute the drift
report of the window's last day. The window defaults to the whole export when
``SUPERDAN_EXPORT_PATH`` is set (offline), else to the last ``--days`` days of the live API.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from superdan_assets.settings import Settings, apply_runtime_defaults

CITY_TZ = ZoneInfo("America/Chicago")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="superdan pipeline",
        description="Materialize ingestion -> features -> model -> endpoint -> drift report.",
    )
    parser.add_argument("--start", type=date.fromisoformat, help="first day (YYYY-MM-DD)")
    parser.add_argument("--end", type=date.fromisoformat, help="last day (YYYY-MM-DD)")
    parser.add_argument(
        "--days", type=int, default=120,
        help="with the live API and no --start: how many recent days to fetch (default 120)",
    )
    parser.add_argument(
        "--holdout-days", type=int, default=None,
        help="days at the end of the window held out to evaluate the model "
        "(default: the crime_model asset's default)",
    )
    parser.add_argument("--skip-train", action="store_true", help="only ingest")
    parser.add_argument("--skip-deploy", action="store_true", help="train but do not deploy")
    return parser.parse_args(argv)


def resolve_window(args: argparse.Namespace, settings: Settings) -> tuple[date, date]:
    """The days to materialize: explicit flags, else the export's span, else recent days."""
    if settings.source == "export" and (args.start is None or args.end is None):
        from superdan_assets.sources.export import ExportSource

        source = ExportSource(settings.export_path, cache_dir=settings.home / "cache" / "export")
        first, last = source.date_range(progress=lambda m: print(f"[pipeline] {m}", flush=True))
        start = args.start or max(first.date(), date(2012, 1, 1))
        end = args.end or last.date()
    else:
        yesterday = datetime.now(CITY_TZ).date() - timedelta(days=1)
        end = args.end or yesterday
        start = args.start or end - timedelta(days=args.days - 1)
    if start > end:
        raise SystemExit(f"empty window: start {start} is after end {end}")
    return start, end


def _range_tags(start: date, end: date) -> dict[str, str]:
    return {
        "dagster/asset_partition_range_start": start.isoformat(),
        "dagster/asset_partition_range_end": end.isoformat(),
    }


def _run(defs, job_name: str, instance, **kwargs):
    job = defs.resolve_job_def(job_name)
    print(f"[pipeline] running {job_name} ...", flush=True)
    result = job.execute_in_process(instance=instance, raise_on_error=False, **kwargs)
    status = "succeeded" if result.success else "FAILED"
    print(f"[pipeline] {job_name} {status} (run {result.run_id})", flush=True)
    return result


def _latest_metadata(instance, asset: str) -> dict:
    from dagster import AssetKey

    event = instance.get_latest_materialization_event(AssetKey(asset))
    if event is None or event.asset_materialization is None:
        return {}
    return {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    apply_runtime_defaults()
    settings = Settings.from_env()
    dagster_home = Path(os.environ.setdefault("DAGSTER_HOME", str(settings.home / "dagster_home")))
    dagster_home.mkdir(parents=True, exist_ok=True)
    # An empty dagster.yaml means "SQLite storage in DAGSTER_HOME" (the embedded default) and
    # keeps Dagster from warning about a missing file on every command.
    (dagster_home / "dagster.yaml").touch(exist_ok=True)
    start, end = resolve_window(args, settings)
    print(
        f"[pipeline] source={settings.source} window={start}..{end} "
        f"data={settings.data_dir} DAGSTER_HOME={dagster_home}",
        flush=True,
    )

    from dagster import DagsterInstance

    from superdan_assets.definitions import defs

    instance = DagsterInstance.get()
    summary: dict[str, object] = {"window": [start.isoformat(), end.isoformat()]}
    ingest = _run(defs, "ingest_job", instance, tags=_range_tags(start, end))
    summary["ingest_run"] = ingest.run_id
    if not ingest.success:
        print("[pipeline] ingestion failed: see the run in the Dagster UI", file=sys.stderr)
        return 1

    if not args.skip_train:
        model_config: dict[str, object] = {"train_end": end.isoformat()}
        if args.holdout_days is not None:
            model_config["holdout_days"] = args.holdout_days
        job = "training_job" if args.skip_deploy else "train_and_deploy_job"
        trained = _run(
            defs, job, instance, run_config={"ops": {"crime_model": {"config": model_config}}}
        )
        summary["model"] = {
            k: v for k, v in _latest_metadata(instance, "crime_model").items()
            if k in ("model_version", "pr_auc", "roc_auc", "precision_at_threshold",
                     "recall_at_threshold", "threshold", "train_rows", "test_rows")
        }
        if not trained.success:
            print("[pipeline] training/deployment failed or a quality gate blocked the model; "
                  "see the run's check results in the Dagster UI", file=sys.stderr)
            print(json.dumps(summary, default=str))
            return 1
        if not args.skip_deploy:
            endpoint = _latest_metadata(instance, "model_endpoint")
            summary["endpoint"] = {k: endpoint.get(k) for k in ("url", "model_version", "example")}

    drift = _run(defs, "drift_job", instance, partition_key=end.isoformat())
    summary["drift_verdict"] = _latest_metadata(instance, "drift_report").get("verdict")
    print(json.dumps(summary, indent=2, default=str))
    endpoint = summary.get("endpoint") or {}
    if endpoint.get("example"):
        print(f"\nThe endpoint is live at {endpoint['url']}. Try:\n  {endpoint['example']}\n")
    print("Open the Dagster UI with: bash scripts/ui.sh   (then http://127.0.0.1:3000)")
    return 0 if drift.success else 1


if __name__ == "__main__":
    sys.exit(main())
