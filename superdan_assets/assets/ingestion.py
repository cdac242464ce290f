"""raw_crimes: one day of a city's reports as the source gave them, in the canonical schema."""

import time
from pathlib import Path

import pandas as pd
from dagster import AssetExecutionContext, BackfillPolicy, MetadataValue, Output, asset

from superdan_assets.assets.city import City
from superdan_assets.assets.metadata import (
    counts_metadata,
    preview_metadata,
    row_count_metadata,
    timestamp_text,
)
from superdan_assets.assets.quality import validate_step
from superdan_assets.checks.dagster_results import quality_check_specs
from superdan_assets.ml.schema import check_canonical
from superdan_assets.resources.storage import StorageResource
from superdan_assets.sources.base import naive_local
from superdan_assets.sources.factory import build_source

#: Days per run of a long backfill: the daemon queues ~1 run a second, so one run per day is
#: slow, and one run for decades must hold all of it in memory. A year per run is neither.
MAX_DAYS_PER_RUN = 366


def build_raw_crimes(city: City):
    spec = city.spec

    @asset(
        key=city.key("raw_crimes"),
        partitions_def=city.partitions_def,
        # A multi-year backfill is a few runs of up to a year each: the source reads its files
        # or pages once per run instead of once per day, and the IO manager splits the result
        # into daily files.
        backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=MAX_DAYS_PER_RUN),
        io_manager_key="partition_io_manager",
        metadata={"partition_expr": "date", "city": spec.name},
        kinds={"pandas", "parquet"},
        group_name=city.group,
        check_specs=quality_check_specs("raw_crimes", city.key("raw_crimes")),
        tags=city.tags,
        description=(
            f"{spec.title} crime reports by day of occurrence ({spec.timezone}), exactly as the "
            f"{spec.source.kind} source gave them but in the one canonical schema. "
            "Re-materializing a day replaces it (late reports)."
        ),
    )
    def raw_crimes(context: AssetExecutionContext, storage: StorageResource):
        window = context.partition_time_window
        start = naive_local(pd.Timestamp(window.start), spec.timezone)
        end = naive_local(pd.Timestamp(window.end), spec.timezone)
        source = build_source(spec, cache_dir=Path(storage.cache_dir) / "sources")
        days = len(context.partition_keys)
        context.log.info(
            f"{spec.name}: fetching {days} day(s) {start.date()}..{end.date()} from {source.name}"
        )
        started = time.monotonic()
        frame = source.fetch(start, end, progress=context.log.info)
        check_canonical(frame, where=f"{source.name} result")
        seconds = time.monotonic() - started
        context.log.info(f"fetched {len(frame)} rows in {seconds:.1f} s")
        frame = frame.sort_values(["date", "id"], kind="stable").reset_index(drop=True)
        # Validated before the IO manager replaces the stored days, so ids can be reconciled
        # with what was stored before this fetch.
        validation = validate_step(
            city,
            "raw_crimes",
            frame,
            list(context.partition_keys),
            storage,
            context.log.info,
            compare_with_stored=True,
            run_id=context.run.run_id,
        )
        yield Output(
            validation.batch(frame),
            metadata={
                "days_quarantined": len(validation.quarantined),
                **row_count_metadata(frame, list(context.partition_keys)),
                "rows_per_primary_type": counts_metadata(frame["primary_type"]),
                "first_occurrence": timestamp_text(frame["date"].min() if len(frame) else None),
                "last_occurrence": timestamp_text(frame["date"].max() if len(frame) else None),
                "source": source.name,
                "city": spec.name,
                "fetch_seconds": round(seconds, 2),
                "preview": preview_metadata(
                    frame[["date", "primary_type", "block", "location_description", "district"]]
                ),
                "window": MetadataValue.text(f"[{start.isoformat()}, {end.isoformat()})"),
            },
        )
        yield from validation.check_results

    return raw_crimes
