"""``superdan pipeline``: the main job for one city, on the embedded defaults, in one command.

It runs the same Dagster jobs the UI and the schedule run, against the persistent local
instance (``DAGSTER_HOME``, default ``.superdan/dagster_home``), so everything it did shows up
in the Dagster UI afterwards: materializations, check results, the model, the endpoint.

Steps: ingest the window (raw_crimes + crime_features with their checks), train and gate the
model, deploy it to the city's local endpoint, and compute the drift report of the window's
last day. The window defaults to everything in the city's files for a ``csv`` source (e.g.
``SUPERDAN_EXPORT_PATH``), else to the last ``--days`` days of its live feed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from superdan_assets.instance.home import ensure_embedded_home
from superdan_assets.settings import Settings, apply_runtime_defaults

#: Days held out to evaluate the model, unless the window is short (then a quarter of it).
DEFAULT_HOLDOUT_DAYS = 90


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="superdan pipeline",
        description="Materialize ingestion -> features -> model -> endpoint -> drift report "
        "for one city.",
    )
    parser.add_argument(
        "--city",
        default=None,
        help="a packaged city (chicago, rochester) or the path of a city spec (.toml); "
        "default: SUPERDAN_CITY, else chicago",
    )
    parser.add_argument("--start", type=date.fromisoformat, help="first day (YYYY-MM-DD)")
    parser.add_argument("--end", type=date.fromisoformat, help="last day (YYYY-MM-DD)")
    parser.add_argument(
        "--days",
        type=int,
        default=120,
        help="with a live feed and no --start: how many recent days to fetch (default 120)",
    )
    parser.add_argument(
        "--holdout-days",
        type=int,
        default=None,
        help=f"days at the end of the window held out to evaluate the model (default "
        f"{DEFAULT_HOLDOUT_DAYS}, or a quarter of a shorter window)",
    )
    parser.add_argument("--skip-train", action="store_true", help="only ingest")
    parser.add_argument("--skip-deploy", action="store_true", help="train but do not deploy")
    parser.add_argument(
        "--skip-street-risk",
        action="store_true",
        help="do not forecast the day after the window (street_risk); /risk then answers 503 "
        "until the asset runs",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print, last, one JSON line with the summary (window, city, model version, "
        "pr_auc, baselines, endpoint url, drift verdict)",
    )
    return parser.parse_args(argv)


def resolve_window(args: argparse.Namespace, spec, settings: Settings) -> tuple[date, date]:
    """The days to materialize: explicit flags, else the csv files' span, else recent days."""
    if spec.source.kind == "csv" and (args.start is None or args.end is None):
        from superdan_assets.sources.export import CsvSource

        source = CsvSource(spec, cache_dir=settings.home / "cache" / "sources" / spec.name)
        first, last = source.date_range(progress=lambda m: print(f"[pipeline] {m}", flush=True))
        start = args.start or max(first.date(), spec.city.first_day)
        end = args.end or last.date()
    else:
        yesterday = datetime.now(ZoneInfo(spec.timezone)).date() - timedelta(days=1)
        end = args.end or yesterday
        start = args.start or max(end - timedelta(days=args.days - 1), spec.city.first_day)
    if start > end:
        raise SystemExit(f"empty window: start {start} is after end {end}")
    return start, end


def holdout_days(args: argparse.Namespace, start: date, end: date) -> int:
    if args.holdout_days is not None:
        return args.holdout_days
    span = (end - start).days + 1
    return min(DEFAULT_HOLDOUT_DAYS, max(1, span // 4))


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


def _latest_metadata(instance, city: str, asset: str) -> dict:
    from dagster import AssetKey

    event = instance.get_latest_materialization_event(AssetKey([city, asset]))
    if event is None or event.asset_materialization is None:
        return {}
    return {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}


def _finish(summary: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary, default=str, sort_keys=True))
    else:
        print(json.dumps(summary, indent=2, default=str))


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    apply_runtime_defaults()
    if args.city:
        # The code location loads the default city and SUPERDAN_CITIES; make sure this one
        # is among them (a spec path given here need not be listed anywhere else).
        os.environ["SUPERDAN_CITY"] = str(
            Path(args.city).resolve() if args.city.endswith(".toml") else args.city
        )
    from superdan_assets.automation import job_name
    from superdan_assets.cities import load_city

    spec = load_city()
    city = spec.name
    settings = Settings.from_env()
    dagster_home = Path(os.environ.setdefault("DAGSTER_HOME", str(settings.home / "dagster_home")))
    # SQLite storage in DAGSTER_HOME (the embedded default) with batched event writes; a
    # dagster.yaml with content (the cluster's, a user's) is left as it is.
    ensure_embedded_home(dagster_home)
    start, end = resolve_window(args, spec, settings)
    print(
        f"[pipeline] city={city} source={spec.source.kind} window={start}..{end} "
        f"data={settings.data_dir} DAGSTER_HOME={dagster_home}",
        flush=True,
    )

    from dagster import DagsterInstance

    from superdan_assets.definitions import defs

    instance = DagsterInstance.get()
    summary: dict[str, object] = {"city": city, "window": [start.isoformat(), end.isoformat()]}
    ingest = _run(defs, job_name(city, "ingest_job"), instance, tags=_range_tags(start, end))
    summary["ingest_run"] = ingest.run_id
    if not ingest.success:
        print("[pipeline] ingestion failed: see the run in the Dagster UI", file=sys.stderr)
        summary["failed"] = "ingest"
        _finish(summary, args.json)
        return 1

    if not args.skip_street_risk:
        # Before the endpoint is deployed, so it is deployed with the forecast (/risk).
        summary["street_risk"] = _street_risk(defs, city, instance, end)

    if not args.skip_train:
        model_config: dict[str, object] = {
            "train_end": end.isoformat(),
            "holdout_days": holdout_days(args, start, end),
        }
        job = "training_job" if args.skip_deploy else "train_and_deploy_job"
        trained = _run(
            defs,
            job_name(city, job),
            instance,
            run_config={"ops": {f"{city}__crime_model": {"config": model_config}}},
        )
        model = _latest_metadata(instance, city, "crime_model")
        summary["model"] = {
            k: v
            for k, v in model.items()
            if k
            in (
                "model_version",
                "pr_auc",
                "roc_auc",
                "precision_at_threshold",
                "recall_at_threshold",
                "threshold",
                "train_rows",
                "test_rows",
                "prior_pr_auc",
                "seed_protocol_pr_auc",
                "train_window",
                "test_window",
            )
        }
        summary["model_version"] = model.get("model_version")
        summary["pr_auc"] = model.get("pr_auc")
        summary["prior_pr_auc"] = model.get("prior_pr_auc")
        summary["seed_protocol_pr_auc"] = model.get("seed_protocol_pr_auc")
        if not trained.success:
            print(
                "[pipeline] training/deployment failed or a quality gate blocked the model; "
                "see the run's check results in the Dagster UI",
                file=sys.stderr,
            )
            summary["failed"] = "training"
            summary["gates"] = _gate_results(trained)
            _finish(summary, args.json)
            return 1
        if not args.skip_deploy:
            endpoint = _latest_metadata(instance, city, "model_endpoint")
            summary["endpoint"] = {k: endpoint.get(k) for k in ("url", "model_version", "example")}
            summary["endpoint_url"] = endpoint.get("url")

    drift = _run(defs, job_name(city, "drift_job"), instance, partition_key=end.isoformat())
    summary["drift_verdict"] = _latest_metadata(instance, city, "drift_report").get("verdict")
    endpoint = summary.get("endpoint") or {}
    if not args.json:
        _finish(summary, False)
        if endpoint.get("example"):
            print(f"\nThe endpoint is live at {endpoint['url']}. Try:\n  {endpoint['example']}\n")
        risk = summary.get("street_risk") or {}
        if risk.get("success"):
            print(f"Street risk for {risk['day']}: the map is {risk.get('interactive_map')}")
            if endpoint.get("url"):
                print(
                    f"  curl -s '{endpoint['url']}/risk?date={risk['day']}&type=burglary&top=5'\n"
                )
        print("Open the Dagster UI with: bash scripts/ui.sh   (then http://127.0.0.1:3000)")
    else:
        _finish(summary, True)
    return 0 if drift.success else 1


def _street_risk(defs, city: str, instance, end: date) -> dict[str, object]:
    """Forecast the day after the window; a failure is reported, not fatal.

    Why not fatal: the forecast needs a long history (its model must beat the hot-spot
    baselines on the 28 days before the day), so a short first window may not give one, and
    the classifier, its endpoint and the drift report do not depend on it.
    """
    from superdan_assets.automation import job_name

    day = (end + timedelta(days=1)).isoformat()
    try:
        result = _run(defs, job_name(city, "street_risk_job"), instance, partition_key=day)
    except Exception as exc:  # e.g. the day is not one of the city's forecast partitions
        print(f"[pipeline] no street-risk forecast for {day}: {exc}", file=sys.stderr)
        return {"day": day, "success": False, "reason": str(exc)}
    if not result.success:
        reason = "see the run in the Dagster UI"
        failures = result.get_step_failure_events()
        error = failures[0].step_failure_data.error if failures else None
        while error is not None and error.cause is not None:
            error = error.cause  # the asset's own exception, not Dagster's wrapper
        if error is not None and error.message.strip():
            reason = error.message.strip().splitlines()[-1]
        print(
            f"[pipeline] no street-risk forecast for {day}: {reason}\n"
            "[pipeline] the classifier pipeline goes on; /risk answers 503 until street_risk "
            "runs (its morning sensor after the daily job, or materialize it in the UI)",
            file=sys.stderr,
        )
        return {"day": day, "success": False, "run": result.run_id, "reason": reason}
    risk = _latest_metadata(instance, city, "street_risk")
    return {
        "day": day,
        "success": True,
        "run": result.run_id,
        "model_version": risk.get("model_version"),
        "interactive_map": risk.get("interactive_map"),
        "forecast_uri": risk.get("forecast_uri"),
    }


def _gate_results(result) -> dict[str, object]:
    """Check name -> passed, for the gates evaluated in a training run."""
    out: dict[str, object] = {}
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.asset_check_evaluation_data
            out[evaluation.check_name] = {
                "passed": evaluation.passed,
                "description": evaluation.description,
            }
    return out


if __name__ == "__main__":
    sys.exit(main())
