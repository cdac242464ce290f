"""Build the resources for an environment from :class:`~superdan_assets.settings.Settings`.

The embedded defaults and the AWS deployment differ only in environment variables; this is the
one place that turns those into resource instances, so ``definitions.py`` stays a wiring list.
"""

from __future__ import annotations

from superdan_assets.resources.io_managers import PartitionedParquetIOManager
from superdan_assets.resources.sources import CrimeSourceResource
from superdan_assets.settings import Settings


def build_resources(settings: Settings) -> dict[str, object]:
    return {
        "partition_io_manager": PartitionedParquetIOManager(
            storage=settings.storage,
            base_dir=str(settings.data_dir),
            s3_bucket=settings.s3_bucket,
            s3_prefix=settings.s3_prefix,
        ),
        "crime_source": CrimeSourceResource(
            kind=settings.source,
            export_path=settings.export_path,
            cache_dir=str(settings.home / "cache" / "export"),
            soda_url=settings.soda_url,
            arcgis_url=settings.arcgis_url,
        ),
    }
