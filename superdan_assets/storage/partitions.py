"""Daily partitions as one Parquet file each, on any :class:`BlobStore`.

Layout: ``<asset>/<YYYY-MM-DD>.parquet``. One file per day keeps a re-fetch of a day a single
atomic replace (same rows, no duplicates) and lets a training window read just its days.
An empty day is written as a zero-row file with the full schema: "no crimes reported" and
"never fetched" are different facts.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from superdan_assets.storage.blobstore import BlobNotFound, BlobStore


class MissingPartitionError(LookupError):
    """A partition that was asked for has never been materialized."""


def partition_key_for(asset: str, partition: str) -> str:
    return f"{asset}/{partition}.parquet"


def quarantine_key_for(asset: str, partition: str, suffix: str = "parquet") -> str:
    return f"quarantine/{asset}/{partition}.{suffix}"


@dataclass(frozen=True)
class DayBatch:
    """A step's output: the rows of its good days, and the days it quarantined (day ->
    reasons). The IO manager writes the good days and leaves a quarantined day's stored
    partition as it was (the last good version, or none)."""

    frame: pd.DataFrame
    quarantined: Mapping[str, Sequence[str]] = field(default_factory=dict)


def frame_to_parquet_bytes(frame: pd.DataFrame, metadata: dict[str, str] | None = None) -> bytes:
    """``frame`` as zstd Parquet; ``metadata`` goes into the file's schema key-value metadata
    (beside pandas' own), for facts about the whole frame such as the model that made it."""
    buffer = io.BytesIO()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if metadata:
        merged = dict(table.schema.metadata or {})
        merged.update({k.encode(): v.encode() for k, v in metadata.items()})
        table = table.replace_schema_metadata(merged)
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


def parquet_bytes_to_frame(data: bytes) -> pd.DataFrame:
    return pq.read_table(io.BytesIO(data)).to_pandas()


def split_by_day(
    frame: pd.DataFrame, column: str, partitions: Sequence[str]
) -> dict[str, pd.DataFrame]:
    """Rows of ``frame`` per ``YYYY-MM-DD`` partition of ``column``; raises on strays.

    A row whose day is not one of ``partitions`` means the producer returned data outside the
    requested window: writing it would silently put it nowhere, so it is an error.
    """
    days = frame[column].dt.strftime("%Y-%m-%d") if len(frame) else pd.Series([], dtype=str)
    wanted = set(partitions)
    stray = ~days.isin(wanted)
    if stray.any():
        examples = sorted(days[stray].unique())[:5]
        raise ValueError(
            f"{int(stray.sum())} row(s) have {column!r} outside the partitions being written "
            f"({partitions[0]}..{partitions[-1]}), e.g. days {examples}"
        )
    groups = {key: part for key, part in frame.groupby(days, sort=False)} if len(frame) else {}
    empty = frame.iloc[0:0]
    return {
        p: groups[p].reset_index(drop=True) if p in groups else empty.copy() for p in partitions
    }


class PartitionStore:
    """Read and write daily Parquet partitions of named assets."""

    def __init__(self, blobs: BlobStore):
        self.blobs = blobs

    def write(self, asset: str, partition: str, frame: pd.DataFrame) -> str:
        key = partition_key_for(asset, partition)
        self.blobs.write_bytes(key, frame_to_parquet_bytes(frame))
        return self.blobs.uri(key)

    def write_days(
        self,
        asset: str,
        frame: pd.DataFrame,
        column: str,
        partitions: Sequence[str],
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, int]:
        """Split ``frame`` by day and write every partition (empty ones too); rows per day."""
        per_day = split_by_day(frame, column, partitions)
        counts = {}
        # Parquet encoding and the writes release the GIL: a few threads keep both cores busy
        # on a multi-year backfill (thousands of small files).
        workers = min(4, (os.cpu_count() or 1) + 1, max(1, len(per_day)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(self.write, asset, p, part): p for p, part in per_day.items()}
            for i, future in enumerate(as_completed(futures), 1):
                future.result()  # re-raise the first failure
                counts[futures[future]] = len(per_day[futures[future]])
                if progress:
                    progress(i, len(per_day))
        return dict(sorted(counts.items()))

    # -- quarantine ----------------------------------------------------------------------
    def quarantine(
        self,
        asset: str,
        partition: str,
        frame: pd.DataFrame,
        reasons: Sequence[str],
        run_id: str | None = None,
    ) -> str:
        """Keep a day that failed its blocking expectations for inspection, with why; it is
        never read as a partition (features and training never see it)."""
        self.blobs.write_bytes(quarantine_key_for(asset, partition), frame_to_parquet_bytes(frame))
        record = {
            "asset": asset,
            "partition": partition,
            "rows": len(frame),
            "reasons": list(reasons),
            "run_id": run_id,
            "quarantined_at": time.time(),
        }
        self.blobs.write_bytes(
            quarantine_key_for(asset, partition, "json"), json.dumps(record).encode()
        )
        return self.blobs.uri(quarantine_key_for(asset, partition))

    def is_quarantined(self, asset: str, partition: str) -> bool:
        return self.blobs.exists(quarantine_key_for(asset, partition, "json"))

    def quarantine_record(self, asset: str, partition: str) -> dict:
        return json.loads(self.blobs.read_bytes(quarantine_key_for(asset, partition, "json")))

    def release(self, asset: str, partition: str) -> None:
        """Forget a day's quarantine (it has been written good since)."""
        for suffix in ("json", "parquet"):
            key = quarantine_key_for(asset, partition, suffix)
            if self.blobs.exists(key):
                self.blobs.delete(key)

    def quarantined(self, asset: str) -> list[str]:
        prefix = f"quarantine/{asset}/"
        return sorted(
            k[len(prefix) : -len(".json")] for k in self.blobs.list(prefix) if k.endswith(".json")
        )

    def exists(self, asset: str, partition: str) -> bool:
        return self.blobs.exists(partition_key_for(asset, partition))

    def read(self, asset: str, partition: str) -> pd.DataFrame:
        key = partition_key_for(asset, partition)
        try:
            return parquet_bytes_to_frame(self.blobs.read_bytes(key))
        except BlobNotFound as exc:
            raise MissingPartitionError(
                f"partition {partition} of asset {asset!r} has not been materialized "
                f"({self.blobs.uri(key)} does not exist); materialize it first"
            ) from exc

    def read_many(self, asset: str, partitions: Iterable[str]) -> pd.DataFrame:
        """Concatenate partitions in order, keeping the dtypes even if all are empty."""
        frames = [self.read(asset, p) for p in partitions]
        if not frames:
            raise MissingPartitionError(f"no partitions of {asset!r} were requested")
        non_empty = [f for f in frames if len(f)]
        if not non_empty:
            return frames[0]
        return pd.concat(non_empty, ignore_index=True)

    def list_partitions(self, asset: str) -> list[str]:
        return [
            k[len(asset) + 1 : -len(".parquet")]
            for k in self.blobs.list(f"{asset}/")
            if k.endswith(".parquet")
        ]
