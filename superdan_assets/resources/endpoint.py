"""Where ``model_endpoint`` deploys: a local process on 127.0.0.1 (default) or SageMaker.

Only names and locations are configuration; AWS credentials come from boto3's own chain and
the SageMaker execution role is an ARN (not a secret). The backends themselves live in
``superdan_assets.deploy`` (no Dagster import).
"""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from superdan_assets.deploy.result import DEFAULT_SAGEMAKER_INSTANCE_TYPE


class EndpointResource(ConfigurableResource):
    """The deployment target of ``model_endpoint``."""

    backend: str = Field(default="local", description="'local' or 'sagemaker'")
    state_dir: str = Field(
        default=".superdan/endpoint", description="Local endpoint state, logs and model copies"
    )
    port: int | None = Field(
        default=None,
        description="Stable local port of the default city's endpoint, overriding its spec's "
        "[serving] port (SUPERDAN_ENDPOINT_PORT); other cities use their spec's port, or a "
        "free one picked once",
    )
    default_city: str = Field(default="chicago", description="The city `port` applies to")
    host: str = Field(default="127.0.0.1", description="Local bind address")
    workers: int = Field(default=1, description="Local server worker processes")
    sagemaker_endpoint_name: str = Field(default="superdan-crime-model")
    sagemaker_bucket: str | None = Field(default=None, description="S3 bucket for model.tar.gz")
    sagemaker_prefix: str = Field(default="superdan/models")
    sagemaker_image_uri: str | None = Field(default=None, description="ECR image of the Dockerfile")
    sagemaker_role_arn: str | None = Field(default=None, description="SageMaker execution role")
    sagemaker_instance_type: str = Field(default=DEFAULT_SAGEMAKER_INSTANCE_TYPE)
    sagemaker_instance_count: int = Field(default=1)
    sagemaker_wait_timeout_s: float = Field(default=1800.0)
    sagemaker_poll_interval_s: float = Field(default=30.0)

    def endpoint_name(self, city: str) -> str:
        """The SageMaker endpoint of ``city`` (the default city keeps the configured name)."""
        if city == self.default_city:
            return self.sagemaker_endpoint_name
        return f"{self.sagemaker_endpoint_name}-{city}".replace("_", "-")[:63]

    def build(self, city: str, spec_port: int | None = None):
        """The deployment backend of ``city``'s endpoint (one endpoint per city)."""
        if self.backend == "local":
            from superdan_assets.deploy.local import LocalEndpoint

            port = self.port if (self.port and city == self.default_city) else spec_port
            return LocalEndpoint(
                Path(self.state_dir) / city, port=port, host=self.host, workers=self.workers
            )
        if self.backend == "sagemaker":
            from superdan_assets.deploy.sagemaker import SageMakerConfig, SageMakerEndpoint

            missing = [
                name for name, value in (
                    ("SUPERDAN_S3_BUCKET", self.sagemaker_bucket),
                    ("SUPERDAN_SAGEMAKER_IMAGE_URI", self.sagemaker_image_uri),
                    ("SUPERDAN_SAGEMAKER_ROLE_ARN", self.sagemaker_role_arn),
                ) if not value
            ]
            if missing:
                raise ValueError(f"the SageMaker endpoint backend needs {', '.join(missing)}")
            return SageMakerEndpoint(
                SageMakerConfig(
                    endpoint_name=self.endpoint_name(city),
                    bucket=self.sagemaker_bucket,
                    image_uri=self.sagemaker_image_uri,
                    execution_role_arn=self.sagemaker_role_arn,
                    prefix=self.sagemaker_prefix,
                    instance_type=self.sagemaker_instance_type,
                    instance_count=self.sagemaker_instance_count,
                    wait_timeout_s=self.sagemaker_wait_timeout_s,
                    poll_interval_s=self.sagemaker_poll_interval_s,
                )
            )
        raise ValueError(f"unknown endpoint backend {self.backend!r}: use 'local' or 'sagemaker'")
