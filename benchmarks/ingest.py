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
        table = pacsv.read_csv(
            path, convert_options=pacsv.ConvertOptions(include_columns=["Date"])
        )
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export-path", type=Path, default=DEFAULT_EXPORT)
    parser.add_argument("--start", default="2012-01-01")
    parser.add_argument("--end", default="2018-12-31")
    args = parser.parse_args()
    if not args.export_path.exists():
        sys.exit(f"export folder {args.export_path} not found; pass --export-path")

    rows_in = count_rows_in(args.export_path, args.start, args.end)

    work = Path(tempfile.mkdtemp(prefix="superdan-ingest-bench-"))
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
    started = time.monotonic()
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
                "cpus": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
