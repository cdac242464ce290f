"""Where superdan keeps its data and models, as one resource: local folder or S3.

The partition IO manager writes the daily Parquet files; assets that read a window of
partitions on their own terms (the model's training window, the drift report's reference) and
the model registry go through this resource, so both always point at the same place.
"""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from superdan_assets.storage.blobstore import BlobStore, make_blob_store
from superdan_assets.storage.partitions import PartitionStore
from superdan_assets.storage.registry import ModelRegistry


class StorageResource(ConfigurableResource):
    """Data partitions and the model registry on a local directory (default) or S3.

    Everything of a city lives below its name (``<base>/<city>/...``, ``s3://b/<prefix>/<city>/``):
    its daily partitions (the IO manager writes ``<city>/<asset>/<day>.parquet`` by asset key),
    its registry, its learnt profile and drift reports.
    """

    storage: str = Field(default="local", description="'local' or 's3'")
    base_dir: str = Field(default=".superdan/data", description="Root folder for local storage")
    s3_bucket: str | None = Field(default=None, description="Bucket when storage is 's3'")
    s3_prefix: str = Field(default="superdan", description="Key prefix when storage is 's3'")
    cache_dir: str = Field(
        default=".superdan/cache", description="Local cache (verified model copies, etc.)"
    )

    docs_dir: str = Field(
        default=".superdan/data_docs", description="Great Expectations Data Docs site (local)"
    )

    def blobs(self, city: str) -> BlobStore:
        """The city's part of the store."""
        return make_blob_store(
            self.storage,
            str(Path(self.base_dir) / city),
            self.s3_bucket,
            f"{self.s3_prefix.rstrip('/')}/{city}",
        )

    def partitions(self, city: str) -> PartitionStore:
        return PartitionStore(self.blobs(city))

    def registry(self, city: str) -> ModelRegistry:
        return ModelRegistry(self.blobs(city), Path(self.cache_dir) / "models" / city)

    def scratch_dir(self, name: str) -> Path:
        """A local working folder (created) below the cache, e.g. for staging an artifact."""
        path = Path(self.cache_dir) / name
        path.mkdir(parents=True, exist_ok=True)
        return path
