"""Build the resources for an environment from :class:`~superdan_assets.settings.Settings`.

The embedded defaults and the AWS deployment differ only in environment variables; this is the
one place that turns those into resource instances, so ``definitions.py`` stays a wiring list.
"""

from __future__ import annotations

from superdan_assets.resources.endpoint import EndpointResource
from superdan_assets.resources.io_managers import PartitionedParquetIOManager
from superdan_assets.resources.storage import StorageResource
from superdan_assets.resources.tracking import ExperimentTracker
from superdan_assets.settings import Settings


def build_resources(settings: Settings, default_city: str = "chicago") -> dict[str, object]:
    return {
        "partition_io_manager": PartitionedParquetIOManager(
            storage=settings.storage,
            base_dir=str(settings.data_dir),
            s3_bucket=settings.s3_bucket,
            s3_prefix=settings.s3_prefix,
        ),
        "storage": StorageResource(
            storage=settings.storage,
            base_dir=str(settings.data_dir),
            s3_bucket=settings.s3_bucket,
            s3_prefix=settings.s3_prefix,
            cache_dir=str(settings.home / "cache"),
            docs_dir=str(settings.home / "data_docs"),
        ),
        "endpoint": EndpointResource(
            backend=settings.endpoint_backend,
            state_dir=str(settings.home / "endpoint"),
            port=settings.endpoint_port,
            default_city=default_city,
            workers=settings.endpoint_workers,
            sagemaker_endpoint_name=settings.sagemaker_endpoint_name,
            sagemaker_bucket=settings.s3_bucket,
            sagemaker_image_uri=settings.sagemaker_image_uri,
            sagemaker_role_arn=settings.sagemaker_role_arn,
            sagemaker_instance_type=settings.sagemaker_instance_type,
        ),
        "tracker": ExperimentTracker(directory=str(settings.home / "wandb")),
    }
