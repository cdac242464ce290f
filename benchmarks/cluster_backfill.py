"""Backfill 2018 (365 daily partitions) of raw_crimes and crime_features on a running cluster.

Usage (the cluster started with the real export as its source):

    export SUPERDAN_PG_PASSWORD=...                      # the cluster's, as for `up`
    SUPERDAN_EXPORT_PATH=../shared/data/chicago bash scripts/cluster.sh up
    eval "$(bash scripts/cluster.sh env)"
    python benchmarks/cluster_backfill.py [--start 2018-01-01] [--days 365]

What it measures: the production path as a person uses it. The backfill is submitted to the
webserver's GraphQL API (as the UI's "Materialize" dialog does); the daemon turns it into runs
(as many as the assets' backfill policies ask for), the queued run coordinator releases them,
the Celery launcher hands them to the workers, and the workers write Parquet and report to
Postgres. ``seconds`` runs from submission to the backfill's terminal status; ``materialized``
counts, per asset, the partitions of the range that Postgres records as materialized
(read back through the instance after the backfill ended); ``storage`` and ``launcher`` are
read from the instance, not assumed. Prints one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default="2018-01-01")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument(
        "--ui-url",
        default=f"http://127.0.0.1:{os.environ.get('SUPERDAN_CLUSTER_UI_PORT', '3070')}",
    )
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()
    if not os.environ.get("DAGSTER_HOME") or not os.environ.get("SUPERDAN_PG_HOST"):
        sys.exit(
            "cluster_backfill.py: point this shell at the cluster first: "
            'eval "$(bash scripts/cluster.sh env)" (and export SUPERDAN_PG_PASSWORD)'
        )

    from dagster import AssetKey, DagsterInstance, RunsFilter

    from superdan_assets.cluster.client import find_asset_key, launch_backfill, wait_for_backfill

    first = date.fromisoformat(args.start)
    partitions = [(first + timedelta(days=i)).isoformat() for i in range(args.days)]
    keys = [
        AssetKey(find_asset_key(args.ui_url, name)) for name in ("raw_crimes", "crime_features")
    ]

    with DagsterInstance.get() as instance:
        storage = type(instance.run_storage).__name__
        launcher = type(instance.run_launcher).__name__
        print(
            f"submitting {len(partitions)} partitions of {[k.to_user_string() for k in keys]} "
            f"({storage}, {launcher})",
            file=sys.stderr,
        )
        started = time.monotonic()
        backfill_id = launch_backfill(
            args.ui_url, [k.path for k in keys], partitions, title="benchmark: cluster_backfill"
        )
        backfill = wait_for_backfill(instance, backfill_id, args.timeout, poll=2.0)
        seconds = time.monotonic() - started
        runs = instance.get_runs(RunsFilter(tags={"dagster/backfill": backfill_id}))
        wanted = set(partitions)
        materialized = {
            key.to_user_string(): len(instance.get_materialized_partitions(key) & wanted)
            for key in keys
        }
        run_statuses: dict[str, int] = {}
        for run in runs:
            run_statuses[run.status.value] = run_statuses.get(run.status.value, 0) + 1
        result = {
            "benchmark": "cluster_backfill",
            "success": backfill.status.value == "COMPLETED_SUCCESS"
            and all(n == len(partitions) for n in materialized.values()),
            "backfill_status": backfill.status.value,
            "start": partitions[0],
            "end": partitions[-1],
            "partitions": len(partitions),
            "materialized": min(materialized.values()),
            "materialized_by_asset": materialized,
            "runs": len(runs),
            "run_statuses": run_statuses,
            "seconds": round(seconds, 1),
            "storage": "postgres" if "Postgres" in storage else storage,
            "launcher": "celery" if "Celery" in launcher else launcher,
            "workers": int(os.environ.get("SUPERDAN_CLUSTER_WORKERS", "0")) or None,
            "max_concurrent_runs": int(os.environ.get("SUPERDAN_MAX_CONCURRENT_RUNS", "0")) or None,
            "cpus": os.cpu_count(),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
