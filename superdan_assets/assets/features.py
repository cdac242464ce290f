"""crime_features: a city's labelled THEFT/BURGLARY rows of a day, with the model's raw inputs."""

import pandas as pd
from dagster import AssetExecutionContext, AssetIn, BackfillPolicy, Output, asset

from superdan_assets.assets.city import City
from superdan_assets.assets.ingestion import MAX_DAYS_PER_RUN
from superdan_assets.assets.metadata import (
    counts_metadata,
    preview_metadata,
    row_count_metadata,
)
from superdan_assets.assets.quality import validate_step
from superdan_assets.checks.dagster_results import quality_check_specs
from superdan_assets.ml.labels import (
    LABEL_COLUMN,
    LabelRule,
    build_feature_rows,
    check_feature_rows,
)
from superdan_assets.resources.storage import StorageResource


def build_crime_features(city: City):
    spec = city.spec
    rule = LabelRule.from_spec(spec)

    @asset(
        key=city.key("crime_features"),
        partitions_def=city.partitions_def,
        backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=MAX_DAYS_PER_RUN),
        ins={"raw_crimes": AssetIn(key=city.key("raw_crimes"))},
        io_manager_key="partition_io_manager",
        metadata={"partition_expr": "date", "city": spec.name},
        kinds={"pandas", "parquet"},
        group_name=city.group,
        check_specs=quality_check_specs("crime_features", city.key("crime_features")),
        tags=city.tags,
        description=(
            f"{spec.title}: burglary ({', '.join(spec.labels.burglary)}) vs theft "
            f"({', '.join(spec.labels.theft)}) rows with only what is known when a crime is "
            "reported (no classification codes, arrest or ids), location wording normalised, "
            "label 1 = burglary. Fixed schema whatever categories a day contains."
        ),
    )
    def crime_features(
        context: AssetExecutionContext, raw_crimes: pd.DataFrame, storage: StorageResource
    ):
        rows = build_feature_rows(raw_crimes, rule)
        check_feature_rows(rows)
        burglary_share = float(rows[LABEL_COLUMN].mean()) if len(rows) else 0.0
        context.log.info(
            f"{len(rows)} labelled rows from {len(raw_crimes)} reports "
            f"({burglary_share:.1%} burglary) over {len(context.partition_keys)} day(s)"
        )
        validation = validate_step(
            city,
            "crime_features",
            rows,
            list(context.partition_keys),
            storage,
            context.log.info,
            run_id=context.run.run_id,
        )
        yield Output(
            validation.batch(rows),
            metadata={
                "days_quarantined": len(validation.quarantined),
                **row_count_metadata(rows, list(context.partition_keys)),
                "raw_rows": len(raw_crimes),
                "burglary_rows": int(rows[LABEL_COLUMN].sum()),
                "burglary_share": round(burglary_share, 4),
                "rows_per_location": counts_metadata(rows["location_description"], max_rows=15),
                "missing_coordinates": int(rows["latitude"].isna().sum()),
                "preview": preview_metadata(rows),
            },
        )
        yield from validation.check_results

    return crime_features
