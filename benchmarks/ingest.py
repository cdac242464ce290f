"""Backfill every raw_crimes partition 2012-01-01..2018-12-31 from the bulk export, through Dagster.

Usage: python benchmarks/ingest.py [--export-path ../shared/data/chicago] [--start ...] [--end ...]

What it measures: one single-run backfill (BackfillPolicy.single_run) into a fresh data
directory, fresh parse cache and fresh Dagster instance, i.e. exactly what a new user's first
offline backfill costs. ``rows_in`` is counted independently of the project's loader (pyarrow,
one column, before the timed run); ``rows_stored`` sums the row counts in the Parquet footers
of every written partition. Prints one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_EXPORT = REPO.parent / "shared" / "data" / "chicago"


def count_rows_in(export_path: Path, start: str, end: str) -> int:
    """Rows whose Date falls in [start, end], read with pyarrow (not the project's loader)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    total = 0
    files = sorted(p for p in export_path.iterdir() if p.name.startswith("crimes_"))
    for path in files:
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(include_columns=["Date"]))
        dates = pc.strptime(table["Date"], format="%m/%d/%Y %I:%M:%S %p", unit="s")
        lo = pa.scalar(datetime.fromisoformat(f"{start}T00:00:00"), type=pa.timestamp("s"))
        hi = pa.scalar(datetime.fromisoformat(f"{end}T23:59:59"), type=pa.timestamp("s"))
        inside = pc.and_(pc.greater_equal(dates, lo), pc.less_equal(dates, hi))
        total += pc.sum(pc.cast(inside, "int64")).as_py() or 0
    return total


def count_rows_stored(data_dir: Path) -> tuple[int, int]:
    import pyarrow.parquet as pq

    files = sorted((data_dir / "chicago" / "raw_crimes").glob("*.parquet"))
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files), len(files)


def phases(instance, run_id: str, submitted: float) -> dict[str, float]:
    """Where the run's time went, from its own event log (wall-clock seconds): planning (run
    created with its planned events), fetch (parse), validate (suite and per-day decisions),
    write (Parquet files), record (materialization events), finish (checks, step and run end)."""
    from dagster import DagsterEventType

    names = {  # RUN_START's stored value is still "PIPELINE_START", and so on
        DagsterEventType.RUN_START.value: "RUN_START",
        DagsterEventType.RUN_SUCCESS.value: "RUN_SUCCESS",
        DagsterEventType.RUN_FAILURE.value: "RUN_FAILURE",
    }
    marks: dict[str, float] = {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        kind = names.get(event.event_type_value, event.event_type_value) if event else None
        message = record.user_message or ""
        if kind in ("RUN_START", "STEP_START", "HANDLED_OUTPUT", "RUN_SUCCESS", "RUN_FAILURE"):
            marks.setdefault(kind, record.timestamp)
        elif kind == "STEP_OUTPUT" and "STEP_OUTPUT" not in marks:
            marks["STEP_OUTPUT"] = record.timestamp  # the data output comes first
        elif event is None and message.startswith("fetched "):
            marks["fetched"] = record.timestamp
        elif event is None and "raw_crimes: wrote " in message:
            marks["written"] = record.timestamp  # the last progress line: all written
    order = [
        ("planning", None, "RUN_START"),
        ("fetch", "STEP_START", "fetched"),
        ("validate", "fetched", "STEP_OUTPUT"),
        ("write", "STEP_OUTPUT", "written"),
        ("record", "written", "HANDLED_OUTPUT"),
        ("finish", "HANDLED_OUTPUT", "RUN_SUCCESS"),
    ]
    out = {}
    for name, begin, end in order:
        t0 = submitted if begin is None else marks.get(begin)
        if t0 is not None and marks.get(end) is not None:
            out[name] = round(marks[end] - t0, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export-path", type=Path, default=DEFAULT_EXPORT)
    parser.add_argument("--start", default="2012-01-01")
    parser.add_argument("--end", default="2018-12-31")
    parser.add_argument(
        "--keep", action="store_true", help="keep the run's data and Dagster home (~0.5 GB)"
    )
    args = parser.parse_args()
    if not args.export_path.exists():
        sys.exit(f"export folder {args.export_path} not found; pass --export-path")

    rows_in = count_rows_in(args.export_path, args.start, args.end)

    work = Path(tempfile.mkdtemp(prefix="superdan-ingest-bench-"))
    try:
        run(args, rows_in, work)
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, rows_in: int, work: Path) -> None:
    """The timed backfill into ``work``; prints the benchmark's JSON line."""
    os.environ.update(
        SUPERDAN_HOME=str(work / "home"),
        SUPERDAN_CITY="chicago",
        SUPERDAN_EXPORT_PATH=str(args.export_path),
        DAGSTER_HOME=str(work / "dagster_home"),
        DAGSTER_DISABLE_TELEMETRY="1",
    )
    from superdan_assets.instance.home import ensure_embedded_home

    ensure_embedded_home(work / "dagster_home")  # the instance superdan pipeline/ui.sh use

    from dagster import DagsterInstance, materialize

    from superdan_assets.assets import City
    from superdan_assets.assets.ingestion import build_raw_crimes
    from superdan_assets.cities import load_city
    from superdan_assets.definitions import defs

    raw_crimes = build_raw_crimes(City(load_city("chicago")))  # csv: SUPERDAN_EXPORT_PATH
    started, submitted = time.monotonic(), time.time()
    result = materialize(
        [raw_crimes],
        resources={k: defs.resources[k] for k in ("partition_io_manager", "storage")},
        instance=DagsterInstance.get(),
        tags={
            "dagster/asset_partition_range_start": args.start,
            "dagster/asset_partition_range_end": args.end,
        },
    )
    seconds = time.monotonic() - started
    where = phases(DagsterInstance.get(), result.run_id, submitted)
    rows_stored, partitions = count_rows_stored(work / "home" / "data")
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "benchmark": "ingest",
                "success": result.success,
                "start": args.start,
                "end": args.end,
                "rows_in": rows_in,
                "rows_stored": rows_stored,
                "nothing_lost": rows_in == rows_stored,
                "partitions": partitions,
                "seconds": round(seconds, 1),
                "peak_rss_mb": round(peak_rss_mb),
                "phases_seconds": where,
                "cpus": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
