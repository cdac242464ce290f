"""What every deployment backend returns and raises, so the ``model_endpoint`` asset has one shape.

The asset turns a :class:`DeploymentResult` into materialization metadata whichever backend ran
(a local process or SageMaker), and catches :class:`DeploymentError` to fail the run with a
message that says what went wrong and what is serving now.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: The SageMaker instance type an endpoint gets unless SUPERDAN_SAGEMAKER_INSTANCE_TYPE says
#: otherwise (one place: the settings, the resource and the backend read it from here).
DEFAULT_SAGEMAKER_INSTANCE_TYPE = "ml.m5.large"


class DeploymentError(RuntimeError):
    """A deployment did not happen; the message says why and what is still serving."""


class RollbackError(DeploymentError):
    """A deployment failed *and* restoring the previous model failed: the endpoint needs a human."""


@dataclass(frozen=True)
class DeploymentResult:
    """A successful roll: where the model serves, which version, and proof it answered."""

    backend: str  # "local" | "sagemaker"
    url: str  # where to POST /invocations
    model_version: str
    previous_version: str | None
    smoke_latency_ms: float  # one smoke request with a few incidents, end to end
    example: str  # a command a user can paste to call the endpoint
    pid: int | None = None  # local model server process
    endpoint_name: str | None = None  # SageMaker
    endpoint_arn: str | None = None  # SageMaker
    model_dir: str | None = None  # the copy of the artifact that is serving (local)
    model_data_url: str | None = None  # s3://.../model.tar.gz (SageMaker)
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain values only (for JSON, logs and Dagster metadata)."""
        return {key: value for key, value in asdict(self).items() if value is not None}
