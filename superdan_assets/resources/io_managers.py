"""The IO manager that stores daily-partitioned DataFrame assets as one Parquet file per day.

An asset declares which column holds the day with ``metadata={"partition_expr": "date"}``.
A ranged run hands the IO manager one frame for many days; it is split by that column and
every day of the range is written (empty days as zero-row files), so re-running a range
replaces exactly those days. Rows outside the range are refused rather than lost.

An asset may return a :class:`~superdan_assets.storage.partitions.DayBatch` instead: its
quarantined days are not written (their stored partition stays the last good version, or
absent), and a downstream range skips a quarantined day that was never stored good.
"""

from __future__ import annotations

import pandas as pd
from dagster import ConfigurableIOManager, InputContext, OutputContext
from pydantic import Field

from superdan_assets.storage.blobstore import make_blob_store
from superdan_assets.storage.partitions import DayBatch, MissingPartitionError, PartitionStore


class PartitionedParquetIOManager(ConfigurableIOManager):
    """Daily Parquet partitions on a local directory (default) or S3."""

    storage: str = Field(default="local", description="'local' or 's3'")
    base_dir: str = Field(default=".superdan/data", description="Root folder for local storage")
    s3_bucket: str | None = Field(default=None, description="Bucket when storage is 's3'")
    s3_prefix: str = Field(default="superdan", description="Key prefix when storage is 's3'")

    def partition_store(self, scope: tuple[str, ...] = ()) -> PartitionStore:
        """The store below ``scope`` (an asset key's prefix: its city), as
        :meth:`StorageResource.partitions` sees it, so quarantine records line up."""
        base = "/".join((self.base_dir.rstrip("/"), *scope))
        prefix = "/".join((self.s3_prefix.rstrip("/"), *scope)) if scope else self.s3_prefix
        return PartitionStore(make_blob_store(self.storage, base, self.s3_bucket, prefix))

    @staticmethod
    def _scoped(context: OutputContext | InputContext) -> tuple[tuple[str, ...], str]:
        """``(("chicago",), "raw_crimes")`` for the asset key ``chicago/raw_crimes``."""
        path = tuple(context.asset_key.path)
        return path[:-1], path[-1]

    @staticmethod
    def _asset_name(context: OutputContext | InputContext) -> str:
        return "/".join(context.asset_key.path)

    def handle_output(self, context: OutputContext, obj: pd.DataFrame | DayBatch) -> None:
        if not context.has_asset_partitions:
            raise ValueError(
                f"{self._asset_name(context)}: PartitionedParquetIOManager stores only "
                "partitioned assets"
            )
        column = context.definition_metadata.get("partition_expr")
        if not column:
            raise ValueError(
                f"{self._asset_name(context)}: declare the day column with "
                "metadata={'partition_expr': '<column>'}"
            )
        partitions = sorted(context.asset_partition_keys)
        scope, asset = self._scoped(context)
        store = self.partition_store(scope)
        quarantined: set[str] = set()
        if isinstance(obj, DayBatch):
            quarantined = set(obj.quarantined)
            obj = obj.frame
            partitions = [p for p in partitions if p not in quarantined]
        step = max(1, len(partitions) // 10)

        def progress(done: int, total: int) -> None:
            if done % step == 0 or done == total:
                context.log.info(f"{asset}: wrote {done}/{total} partitions")

        counts = store.write_days(asset, obj, column, partitions, progress) if partitions else {}
        for partition in counts:
            if store.is_quarantined(asset, partition):
                store.release(asset, partition)
        context.add_output_metadata(
            {
                "partitions_written": len(counts),
                "partitions_quarantined": len(quarantined),
                "storage_uri": store.blobs.uri(f"{asset}/"),
            }
        )

    def load_input(self, context: InputContext) -> pd.DataFrame:
        scope, asset = self._scoped(context)
        store = self.partition_store(scope)
        if not context.has_asset_partitions:
            raise ValueError(
                f"{asset}: a downstream asset must load a partition range of this asset "
                "(give it a partition mapping or partitions of its own)"
            )
        partitions = sorted(context.asset_partition_keys)
        skipped = [
            p for p in partitions if not store.exists(asset, p) and store.is_quarantined(asset, p)
        ]
        if skipped:
            context.log.warning(
                f"{asset}: skipping {len(skipped)} quarantined day(s) never stored good: "
                f"{skipped[:10]}"
            )
            partitions = [p for p in partitions if p not in skipped]
        context.log.info(f"loading {len(partitions)} partition(s) of {asset}")
        if not partitions:
            raise MissingPartitionError(
                f"{asset}: every requested day is quarantined ({skipped[:10]}); fix the source "
                "data and re-materialize them"
            )
        return store.read_many(asset, partitions)
