"""Where ``model_endpoint`` deploys: one typed resource per backend.

:class:`LocalEndpointResource` (the default: a process on 127.0.0.1) and
:class:`SageMakerEndpointResource` share the base :class:`EndpointResource` the assets ask for,
so each backend's configuration holds only its own fields and the UI's resource page shows
exactly what the chosen backend uses. Only names and locations are configuration: AWS
credentials come from boto3's own chain, and the SageMaker settings that come from the
environment are ``EnvVar`` s, so the UI shows the variable's name, not its value. The backends
themselves live in ``superdan_assets.deploy`` (no Dagster import). There is one endpoint per
city: ``build(city, spec_port)``.
"""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from superdan_assets.deploy.result import DEFAULT_SAGEMAKER_INSTANCE_TYPE


class EndpointResource(ConfigurableResource):
    """The deployment target of ``model_endpoint`` (use a backend's subclass)."""

    default_city: str = Field(default="chicago", description="The city the default names apply to")

    @property
    def backend(self) -> str:
        raise NotImplementedError

    def build(self, city: str, spec_port: int | None = None):
        """The deployment backend of ``city``'s endpoint."""
        raise NotImplementedError(
            "EndpointResource is the base: configure LocalEndpointResource or "
            "SageMakerEndpointResource (SUPERDAN_ENDPOINT_BACKEND)"
        )


class LocalEndpointResource(EndpointResource):
    """A local endpoint per city on 127.0.0.1, behind a stable port, rolled with no downtime."""

    state_dir: str = Field(
        default=".superdan/endpoint", description="Local endpoint state, logs and model copies"
    )
    port: int | None = Field(
        default=None,
        description="Stable local port of the default city's endpoint, overriding its spec's "
        "[serving] port (SUPERDAN_ENDPOINT_PORT); other cities use their spec's port, or a "
        "free one picked once",
    )
    host: str = Field(default="127.0.0.1", description="Local bind address")
    workers: int = Field(default=1, description="Local server worker processes")

    @property
    def backend(self) -> str:
        return "local"

    def build(self, city: str, spec_port: int | None = None):
        from superdan_assets.deploy.local import LocalEndpoint

        port = self.port if (self.port and city == self.default_city) else spec_port
        return LocalEndpoint(
            Path(self.state_dir) / city, port=port, host=self.host, workers=self.workers
        )


class SageMakerEndpointResource(EndpointResource):
    """A SageMaker real-time endpoint per city, from the image built from the Dockerfile."""

    endpoint_name: str = Field(
        default="superdan-crime-model",
        description="The default city's endpoint; other cities get '<name>-<city>'",
    )
    bucket: str = Field(description="S3 bucket for model.tar.gz (SUPERDAN_S3_BUCKET)")
    prefix: str = Field(default="superdan/models")
    image_uri: str = Field(description="ECR image of the Dockerfile (SUPERDAN_SAGEMAKER_IMAGE_URI)")
    role_arn: str = Field(description="SageMaker execution role (SUPERDAN_SAGEMAKER_ROLE_ARN)")
    instance_type: str = Field(default=DEFAULT_SAGEMAKER_INSTANCE_TYPE)
    instance_count: int = Field(default=1)
    wait_timeout_s: float = Field(default=1800.0)
    poll_interval_s: float = Field(default=30.0)

    @property
    def backend(self) -> str:
        return "sagemaker"

    def endpoint_name_for(self, city: str) -> str:
        """The SageMaker endpoint of ``city`` (the default city keeps the configured name)."""
        if city == self.default_city:
            return self.endpoint_name
        return f"{self.endpoint_name}-{city}".replace("_", "-")[:63]

    def build(self, city: str, spec_port: int | None = None):
        from superdan_assets.deploy.sagemaker import SageMakerConfig, SageMakerEndpoint

        return SageMakerEndpoint(
            SageMakerConfig(
                endpoint_name=self.endpoint_name_for(city),
                bucket=self.bucket,
                image_uri=self.image_uri,
                execution_role_arn=self.role_arn,
                prefix=self.prefix,
                instance_type=self.instance_type,
                instance_count=self.instance_count,
                wait_timeout_s=self.wait_timeout_s,
                poll_interval_s=self.poll_interval_s,
            )
        )
