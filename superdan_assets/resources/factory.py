"""Build the resources for an environment from :class:`~superdan_assets.settings.Settings`.

The embedded defaults and the AWS deployment differ only in environment variables; this is the
one place that turns those into resource instances, so ``definitions.py`` stays a wiring list.
"""

from __future__ import annotations

from dagster import EnvVar

from superdan_assets.resources.endpoint import (
    EndpointResource,
    LocalEndpointResource,
    SageMakerEndpointResource,
)
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
        "endpoint": endpoint_resource(settings, default_city),
        "tracker": ExperimentTracker(directory=str(settings.home / "wandb")),
    }


def endpoint_resource(settings: Settings, default_city: str) -> EndpointResource:
    """The typed resource of ``SUPERDAN_ENDPOINT_BACKEND``; for SageMaker, a clear error
    naming every missing variable, and the environment's values as ``EnvVar`` s."""
    if settings.endpoint_backend == "local":
        return LocalEndpointResource(
            state_dir=str(settings.home / "endpoint"),
            port=settings.endpoint_port,
            workers=settings.endpoint_workers,
            default_city=default_city,
        )
    missing = [
        name
        for name, value in (
            ("SUPERDAN_S3_BUCKET", settings.s3_bucket),
            ("SUPERDAN_SAGEMAKER_IMAGE_URI", settings.sagemaker_image_uri),
            ("SUPERDAN_SAGEMAKER_ROLE_ARN", settings.sagemaker_role_arn),
        )
        if not value
    ]
    if missing:
        raise ValueError(f"the SageMaker endpoint backend needs {', '.join(missing)}")
    return SageMakerEndpointResource(
        endpoint_name=settings.sagemaker_endpoint_name,
        bucket=EnvVar("SUPERDAN_S3_BUCKET"),
        image_uri=EnvVar("SUPERDAN_SAGEMAKER_IMAGE_URI"),
        role_arn=EnvVar("SUPERDAN_SAGEMAKER_ROLE_ARN"),
        instance_type=settings.sagemaker_instance_type,
        default_city=default_city,
    )
