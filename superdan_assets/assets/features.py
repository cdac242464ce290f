"""crime_features: the labelled THEFT/BURGLARY rows of a day, with the model's raw inputs."""

from pathlib import Path

import pandas as pd
from dagster import AssetExecutionContext, AssetIn, BackfillPolicy, Output, asset

from superdan_assets.assets.metadata import (
    counts_metadata,
    preview_metadata,
    row_count_metadata,
)
from superdan_assets.assets.quality import validate_step
from superdan_assets.checks.dagster_results import quality_check_specs
from superdan_assets.ml.labels import LABEL_COLUMN, build_feature_rows, check_feature_rows
from superdan_assets.partitions import daily_partitions
from superdan_assets.resources.storage import StorageResource


@asset(
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    ins={"raw_crimes": AssetIn()},
    io_manager_key="partition_io_manager",
    metadata={"partition_expr": "date"},
    kinds={"pandas", "parquet"},
    group_name="features",
    check_specs=quality_check_specs("crime_features"),
    description=(
        "THEFT (larceny) vs BURGLARY rows with only what is known when a crime is reported "
        "(no IUCR, description, FBI code, arrest or ids), location wording normalised across "
        "years, label 1 = burglary. Fixed schema whatever categories a day contains."
    ),
)
def crime_features(
    context: AssetExecutionContext, raw_crimes: pd.DataFrame, storage: StorageResource
):
    rows = build_feature_rows(raw_crimes)
    check_feature_rows(rows)
    burglary_share = float(rows[LABEL_COLUMN].mean()) if len(rows) else 0.0
    context.log.info(
        f"{len(rows)} labelled rows from {len(raw_crimes)} reports "
        f"({burglary_share:.1%} burglary) over {len(context.partition_keys)} day(s)"
    )
    _, check_results = validate_step(
        "crime_features", rows, list(context.partition_keys), storage.partitions(),
        Path(storage.docs_dir), context.log.info,
    )
    yield Output(
        rows,
        metadata={
            **row_count_metadata(rows, list(context.partition_keys)),
            "raw_rows": len(raw_crimes),
            "burglary_rows": int(rows[LABEL_COLUMN].sum()),
            "burglary_share": round(burglary_share, 4),
            "rows_per_location": counts_metadata(rows["location_description"], max_rows=15),
            "missing_coordinates": int(rows["latitude"].isna().sum()),
            "preview": preview_metadata(rows),
        },
    )
    yield from check_results
