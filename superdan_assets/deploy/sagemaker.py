"""Deploy a model artifact to a SageMaker real-time endpoint, and roll back if it misbehaves.

One deploy, in order, failing before anything changes when it can:

1. ``describe_endpoint``: does the endpoint exist, is it idle, which config serves now;
2. ``model.tar.gz`` (the artifact's files at the archive root, since SageMaker extracts it into
   ``/opt/ml/model``) uploaded to ``s3://bucket/prefix/<version>-<sha>/``;
3. ``create_model`` (the project's serving image, the execution role) and a new endpoint config
   with a name unique to this version and moment, so the previous config stays intact;
4. ``create_endpoint`` the first time, else ``update_endpoint``: SageMaker brings up the new
   fleet beside the old one and shifts traffic only when it is healthy (blue/green), so clients
   see no downtime;
5. wait for ``InService`` on the new config (``describe_endpoint`` polling, interval and timeout
   configurable), then smoke-invoke it through ``sagemaker-runtime`` and check the answer
   against the manifest (:mod:`superdan_assets.deploy.smoke`).

If 4 or 5 fails, the endpoint is updated back to the config that served before and the error
says so; a newly created endpoint that never worked is deleted, so the next run can create it
again. Credentials come from boto3's usual chain and are never logged or returned.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from superdan_assets.deploy.packaging import package_tarball, version_slug
from superdan_assets.deploy.result import (
    DEFAULT_SAGEMAKER_INSTANCE_TYPE,
    DeploymentError,
    DeploymentResult,
    RollbackError,
)
from superdan_assets.deploy.smoke import SMOKE_INCIDENTS, check_predictions, invocation_body
from superdan_assets.ml.artifact import ModelIntegrityError

logger = logging.getLogger("superdan.deploy.sagemaker")

VERSION_TAG = "superdan:model-version"
SHA256_TAG = "superdan:model-sha256"
IN_PROGRESS = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"})
#: SageMaker resource names: up to 63 letters, digits and hyphens, starting and ending alnum.
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9]+")
_TAG_UNSAFE = re.compile(r"[^\w.:/=+\-@ ]+")


@dataclass(frozen=True)
class SageMakerConfig:
    """Where and how to deploy; nothing secret (credentials come from the boto3 chain)."""

    endpoint_name: str
    bucket: str
    image_uri: str  # the project's serving image in ECR (``superdan serve``)
    execution_role_arn: str  # the role SageMaker assumes to pull the image and the model
    prefix: str = "superdan/models"
    instance_type: str = DEFAULT_SAGEMAKER_INSTANCE_TYPE
    instance_count: int = 1
    variant_name: str = "AllTraffic"
    region_name: str | None = None
    #: Creating or updating an endpoint takes minutes; waiting longer than this is a failure.
    wait_timeout_s: float = 1800.0
    poll_interval_s: float = 30.0
    #: Extra container environment (e.g. ``SAGEMAKER_MODEL_SERVER_WORKERS``).
    container_env: Mapping[str, str] = field(default_factory=dict)


class _NotServing(DeploymentError):
    """The endpoint did not reach InService on the expected config; ``description`` is the last seen."""

    def __init__(self, message: str, description: Mapping[str, Any] | None):
        super().__init__(message)
        self.description = dict(description or {})


def resource_name(endpoint_name: str, version: str, sha256: str, when: datetime) -> str:
    """A model / endpoint-config name unique to this endpoint, version, artifact and moment."""

    def clean(text: str, limit: int) -> str:
        return _NAME_UNSAFE.sub("-", text).strip("-")[:limit].strip("-") or "m"

    return "-".join(
        (clean(endpoint_name, 22), clean(version, 16), sha256[:8], when.strftime("%Y%m%d%H%M%S"))
    )


def _tag_value(text: str) -> str:
    return _TAG_UNSAFE.sub("_", str(text))[:256]


class SageMakerEndpoint:
    """Deploy artifacts to one SageMaker endpoint. Clients are injectable for tests."""

    def __init__(
        self,
        config: SageMakerConfig,
        *,
        sagemaker_client: Any = None,
        runtime_client: Any = None,
        s3_client: Any = None,
        smoke_incidents: Sequence[Mapping[str, Any]] = SMOKE_INCIDENTS,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        utcnow: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.config = config
        self._sagemaker = sagemaker_client or self._client("sagemaker")
        self._runtime = runtime_client or self._client("sagemaker-runtime")
        self._s3 = s3_client or self._client("s3")
        self.smoke_incidents = list(smoke_incidents)
        self._sleep = sleep
        self._clock = clock
        self._utcnow = utcnow

    def _client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, region_name=self.config.region_name)

    @property
    def region(self) -> str:
        return self._sagemaker.meta.region_name

    @property
    def url(self) -> str:
        """The endpoint's base URL; POST ``{url}/invocations`` (SigV4-signed) to score."""
        return f"https://runtime.sagemaker.{self.region}.amazonaws.com/endpoints/{self.config.endpoint_name}"

    # -- public API ------------------------------------------------------------------------

    def status(self) -> dict[str, Any] | None:
        """The endpoint's status, config and failure reason, or ``None`` if it does not exist."""
        description = self._describe()
        if description is None:
            return None
        return {
            "endpoint_name": description["EndpointName"],
            "endpoint_arn": description["EndpointArn"],
            "status": description["EndpointStatus"],
            "endpoint_config_name": description.get("EndpointConfigName"),
            "failure_reason": description.get("FailureReason"),
            "url": self.url,
        }

    def deploy(self, model_dir: str | os.PathLike) -> DeploymentResult:
        """Serve ``model_dir`` on the endpoint; raise :class:`DeploymentError` after rolling back."""
        cfg = self.config
        existing = self._describe()
        if existing is not None:
            state = existing["EndpointStatus"]
            if state in IN_PROGRESS:
                raise DeploymentError(
                    f"endpoint {cfg.endpoint_name} is {state}: another deployment is in progress; "
                    "nothing was changed"
                )
            if state != "InService":
                raise DeploymentError(
                    f"endpoint {cfg.endpoint_name} is {state} "
                    f"({existing.get('FailureReason', 'no reason given')}) and cannot be updated; "
                    f"delete it (aws sagemaker delete-endpoint --endpoint-name {cfg.endpoint_name}) "
                    "and deploy again"
                )
        previous_config = existing["EndpointConfigName"] if existing else None
        previous_version = self._config_version(previous_config) if previous_config else None

        with tempfile.TemporaryDirectory(prefix="superdan-sagemaker-") as scratch:
            try:
                tarball, manifest = package_tarball(model_dir, Path(scratch) / "model.tar.gz")
            except (ModelIntegrityError, OSError) as exc:
                raise DeploymentError(f"refusing to deploy {str(model_dir)!r}: {exc}") from exc
            version, sha256 = str(manifest["version"]), str(manifest["sha256"])
            key = f"{cfg.prefix.strip('/')}/{version_slug(version)}-{sha256[:12]}/model.tar.gz"
            model_data_url = f"s3://{cfg.bucket}/{key}"
            self._call("upload the model", self._s3.upload_file, str(tarball), cfg.bucket, key)
        logger.info("uploaded model %s to %s", version, model_data_url)

        name = resource_name(cfg.endpoint_name, version, sha256, self._utcnow())
        tags = [
            {"Key": VERSION_TAG, "Value": _tag_value(version)},
            {"Key": SHA256_TAG, "Value": sha256},
        ]
        container = {"Image": cfg.image_uri, "ModelDataUrl": model_data_url}
        if cfg.container_env:
            container["Environment"] = dict(cfg.container_env)
        self._call(
            "create the model",
            self._sagemaker.create_model,
            ModelName=name,
            ExecutionRoleArn=cfg.execution_role_arn,
            PrimaryContainer=container,
            Tags=tags,
        )
        self._call(
            "create the endpoint config",
            self._sagemaker.create_endpoint_config,
            EndpointConfigName=name,
            ProductionVariants=[
                {
                    "VariantName": cfg.variant_name,
                    "ModelName": name,
                    "InitialInstanceCount": cfg.instance_count,
                    "InstanceType": cfg.instance_type,
                    "InitialVariantWeight": 1.0,
                }
            ],
            Tags=tags,
        )
        logger.info("created model and endpoint config %s", name)

        try:
            if previous_config is None:
                self._call(
                    "create the endpoint",
                    self._sagemaker.create_endpoint,
                    EndpointName=cfg.endpoint_name,
                    EndpointConfigName=name,
                    Tags=[{"Key": "superdan:managed", "Value": "true"}],
                )
            else:
                self._call(
                    "update the endpoint",
                    self._sagemaker.update_endpoint,
                    EndpointName=cfg.endpoint_name,
                    EndpointConfigName=name,
                )
            logger.info("endpoint %s rolling to %s", cfg.endpoint_name, name)
            description = self._wait_in_service(name)
            latency_ms = self._smoke(manifest)
        except DeploymentError as exc:
            last = exc.description if isinstance(exc, _NotServing) else None
            raise self._roll_back(previous_config, name, exc, last) from exc

        logger.info("endpoint %s serves model %s", cfg.endpoint_name, version)
        return DeploymentResult(
            backend="sagemaker",
            url=self.url,
            model_version=version,
            previous_version=previous_version,
            smoke_latency_ms=round(latency_ms, 2),
            example=self._cli_example(),
            endpoint_name=cfg.endpoint_name,
            endpoint_arn=description["EndpointArn"],
            model_data_url=model_data_url,
            details={
                "endpoint_config_name": name,
                "model_name": name,
                "previous_endpoint_config_name": previous_config,
                "instance_type": cfg.instance_type,
                "instance_count": cfg.instance_count,
                "region": self.region,
                "model_sha256": sha256,
            },
        )

    # -- steps -----------------------------------------------------------------------------

    def _call(self, what: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call AWS; turn its errors into a DeploymentError that says which step failed."""
        try:
            return method(*args, **kwargs)
        except (ClientError, BotoCoreError, OSError) as exc:
            raise DeploymentError(
                f"could not {what} for endpoint {self.config.endpoint_name}: {exc}"
            ) from exc

    def _describe(self) -> dict[str, Any] | None:
        try:
            return self._sagemaker.describe_endpoint(EndpointName=self.config.endpoint_name)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") == "ValidationException" and "Could not find" in error.get(
                "Message", ""
            ):
                return None
            raise DeploymentError(
                f"could not describe endpoint {self.config.endpoint_name}: {exc}"
            ) from exc
        except BotoCoreError as exc:
            raise DeploymentError(
                f"could not describe endpoint {self.config.endpoint_name}: {exc}"
            ) from exc

    def _config_version(self, config_name: str) -> str | None:
        """The model version tagged on an endpoint config (configs not made here have none)."""
        try:
            arn = self._sagemaker.describe_endpoint_config(EndpointConfigName=config_name)[
                "EndpointConfigArn"
            ]
            tags = self._sagemaker.list_tags(ResourceArn=arn).get("Tags", [])
        except (ClientError, BotoCoreError, KeyError):
            return None
        return next((tag["Value"] for tag in tags if tag.get("Key") == VERSION_TAG), None)

    def _wait_in_service(self, config_name: str) -> dict[str, Any]:
        """Poll until the endpoint is InService on ``config_name``; raise ``_NotServing`` otherwise."""
        deadline = self._clock() + self.config.wait_timeout_s
        while True:
            description = self._describe()
            if description is None:
                raise _NotServing(f"endpoint {self.config.endpoint_name} disappeared", None)
            state = description["EndpointStatus"]
            reason = description.get("FailureReason")
            if state == "InService":
                if description.get("EndpointConfigName") == config_name:
                    return description
                raise _NotServing(
                    f"endpoint is InService on {description.get('EndpointConfigName')}, not "
                    f"{config_name}: {reason or 'SageMaker rolled the update back'}",
                    description,
                )
            if state not in IN_PROGRESS:
                raise _NotServing(
                    f"endpoint is {state}: {reason or 'no reason given'}", description
                )
            if self._clock() >= deadline:
                raise _NotServing(
                    f"endpoint not InService after {self.config.wait_timeout_s:.0f} s (status {state})",
                    description,
                )
            self._sleep(self.config.poll_interval_s)

    def _smoke(self, manifest: Mapping[str, Any]) -> float:
        """Invoke the endpoint with the smoke incidents; check the answer; return ms taken."""
        started = time.perf_counter()
        response = self._call(
            "invoke the endpoint (smoke test)",
            self._runtime.invoke_endpoint,
            EndpointName=self.config.endpoint_name,
            ContentType="application/json",
            Accept="application/json",
            Body=invocation_body(self.smoke_incidents),
        )
        try:
            raw = response["Body"].read()
        except (BotoCoreError, OSError) as exc:
            raise DeploymentError(f"reading the smoke response failed: {exc}") from exc
        latency_ms = (time.perf_counter() - started) * 1000.0
        try:
            payload = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise DeploymentError(f"smoke response is not JSON: {raw[:200]!r}") from exc
        check_predictions(payload, manifest=manifest, expected_count=len(self.smoke_incidents))
        return latency_ms

    def _roll_back(
        self,
        previous_config: str | None,
        failed_config: str,
        cause: DeploymentError,
        last: Mapping[str, Any] | None,
    ) -> DeploymentError:
        """Restore what served before; return the error to raise (it says what serves now)."""
        name = self.config.endpoint_name
        if previous_config is None:
            try:
                self._sagemaker.delete_endpoint(EndpointName=name)
                note = "the new endpoint never served and was deleted"
            except (ClientError, BotoCoreError) as exc:
                note = f"deleting the failed new endpoint also failed ({exc}); delete it by hand"
            logger.error("deployment of %s failed: %s; %s", failed_config, cause, note)
            return DeploymentError(
                f"deployment of {failed_config} to {name} failed: {cause}; {note}"
            )
        try:
            if last and last.get("EndpointStatus") in IN_PROGRESS:
                last = self._wait_settled()
            already = bool(
                last
                and last.get("EndpointStatus") == "InService"
                and last.get("EndpointConfigName") == previous_config
            )
            if not already:
                logger.warning("rolling endpoint %s back to %s", name, previous_config)
                self._call(
                    "roll back the endpoint",
                    self._sagemaker.update_endpoint,
                    EndpointName=name,
                    EndpointConfigName=previous_config,
                )
                self._wait_in_service(previous_config)
        except DeploymentError as exc:
            logger.error("rollback of %s to %s failed: %s", name, previous_config, exc)
            return RollbackError(
                f"deployment of {failed_config} to {name} failed: {cause}; rolling back to "
                f"{previous_config} ALSO failed: {exc}"
            )
        return DeploymentError(
            f"deployment of {failed_config} to {name} failed: {cause}; the endpoint was rolled "
            f"back and serves {previous_config} again"
        )

    def _wait_settled(self) -> dict[str, Any] | None:
        """Wait until an update in progress has finished, either way."""
        deadline = self._clock() + self.config.wait_timeout_s
        while True:
            description = self._describe()
            if description is None or description["EndpointStatus"] not in IN_PROGRESS:
                return description
            if self._clock() >= deadline:
                raise DeploymentError(
                    f"endpoint still {description['EndpointStatus']} after "
                    f"{self.config.wait_timeout_s:.0f} s"
                )
            self._sleep(self.config.poll_interval_s)

    def _cli_example(self) -> str:
        body = invocation_body(self.smoke_incidents[:1]).decode()
        return (
            f"aws sagemaker-runtime invoke-endpoint --region {self.region} "
            f"--endpoint-name {self.config.endpoint_name} --content-type application/json "
            f"--accept application/json --cli-binary-format raw-in-base64-out "
            f"--body '{body}' /dev/stdout"
        )
