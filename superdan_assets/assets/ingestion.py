"""raw_crimes: one day of reports as the source gave them, in the canonical schema."""

import time
from pathlib import Path

import pandas as pd
from dagster import AssetExecutionContext, BackfillPolicy, MetadataValue, Output, asset

from superdan_assets.assets.metadata import (
    counts_metadata,
    preview_metadata,
    row_count_metadata,
    timestamp_text,
)
from superdan_assets.assets.quality import validate_step
from superdan_assets.checks.dagster_results import quality_check_specs
from superdan_assets.ml.schema import check_canonical
from superdan_assets.partitions import daily_partitions
from superdan_assets.resources.sources import CrimeSourceResource
from superdan_assets.resources.storage import StorageResource
from superdan_assets.sources.base import naive_local


@asset(
    partitions_def=daily_partitions,
    # A multi-year backfill is one run: the source reads its files or pages once for the range
    # instead of once per day, and the IO manager splits the result into daily files.
    backfill_policy=BackfillPolicy.single_run(),
    io_manager_key="partition_io_manager",
    metadata={"partition_expr": "date"},
    kinds={"pandas", "parquet"},
    group_name="ingestion",
    check_specs=quality_check_specs("raw_crimes"),
    description=(
        "Crime reports by day of occurrence (America/Chicago), exactly as the source gave them "
        "but in the one canonical schema. Re-materializing a day replaces it (late reports)."
    ),
)
def raw_crimes(
    context: AssetExecutionContext, crime_source: CrimeSourceResource, storage: StorageResource
):
    window = context.partition_time_window
    start = naive_local(pd.Timestamp(window.start), daily_partitions.timezone)
    end = naive_local(pd.Timestamp(window.end), daily_partitions.timezone)
    source = crime_source.build()
    days = len(context.partition_keys)
    context.log.info(f"fetching {days} day(s) {start.date()}..{end.date()} from {source.name}")
    started = time.monotonic()
    frame = source.fetch(start, end, progress=context.log.info)
    check_canonical(frame, where=f"{source.name} result")
    seconds = time.monotonic() - started
    context.log.info(f"fetched {len(frame)} rows in {seconds:.1f} s")
    frame = frame.sort_values(["date", "id"], kind="stable").reset_index(drop=True)
    # Validated before the IO manager replaces the stored days, so ids can be reconciled
    # with what was stored before this fetch.
    _, check_results = validate_step(
        "raw_crimes", frame, list(context.partition_keys), storage.partitions(),
        Path(storage.docs_dir), context.log.info, compare_with_stored=True,
    )
    yield Output(
        frame,
        metadata={
            **row_count_metadata(frame, list(context.partition_keys)),
            "rows_per_primary_type": counts_metadata(frame["primary_type"]),
            "first_occurrence": timestamp_text(frame["date"].min() if len(frame) else None),
            "last_occurrence": timestamp_text(frame["date"].max() if len(frame) else None),
            "source": source.name,
            "city": source.city,
            "fetch_seconds": round(seconds, 2),
            "preview": preview_metadata(
                frame[["date", "primary_type", "block", "location_description", "district"]]
            ),
            "window": MetadataValue.text(f"[{start.isoformat()}, {end.isoformat()})"),
        },
    )
    yield from check_results
