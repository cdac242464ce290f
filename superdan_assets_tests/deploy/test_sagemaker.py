"""SageMakerEndpoint against moto (S3 and SageMaker create/describe) and botocore's Stubber.

moto does not implement ``update_endpoint`` and answers ``invoke_endpoint`` with a canned body,
so the update, rollback and smoke paths run against a stubbed SageMaker client (every call and
its parameters are asserted, in order); the first deployment runs against moto end to end.
Real inference is tested against the project's own server in ``test_local.py``.
"""

from __future__ import annotations

import io
import json
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber
from moto import mock_aws

from superdan_assets.deploy.result import DeploymentError, RollbackError
from superdan_assets.deploy.sagemaker import (
    VERSION_TAG,
    SageMakerConfig,
    SageMakerEndpoint,
    resource_name,
)
from superdan_assets.deploy.smoke import SMOKE_INCIDENTS
from superdan_assets.ml.artifact import MANIFEST_FILE, MODEL_FILE, read_manifest, sha256_file
from superdan_assets_tests.deploy.models import tamper, write_artifact

REGION = "us-east-1"
NOW = datetime(2018, 6, 1, 12, 30, 0, tzinfo=UTC)
ACCOUNT = "123456789012"
ENDPOINT = "crime-model"
OLD_CONFIG = "crime-model-v1-aaaaaaaa-20180101000000"
ENDPOINT_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{ENDPOINT}"
CONFIG = SageMakerConfig(
    endpoint_name=ENDPOINT,
    bucket="superdan-models",
    prefix="registry/models",
    image_uri=f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/superdan:1.0",
    execution_role_arn=f"arn:aws:iam::{ACCOUNT}:role/superdan-sagemaker",
    instance_type="ml.c5.large",
    instance_count=2,
    region_name=REGION,
    wait_timeout_s=600.0,
    poll_interval_s=15.0,
)


class FakeTime:
    """A clock that only moves when the code under test sleeps (no real waiting)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def aws():
    with mock_aws():
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=CONFIG.bucket)
        yield


@pytest.fixture
def model_v2(tmp_path: Path) -> Path:
    return write_artifact(tmp_path / "v2", "v2", seed=2, threshold=0.4)


def _answer(manifest: dict, count: int = len(SMOKE_INCIDENTS), version: str | None = None) -> bytes:
    threshold = float(manifest["threshold"])
    predictions = [
        {"burglary_probability": p, "predicted_type": "BURGLARY" if p >= threshold else "THEFT"}
        for p in [0.2, 0.7, 0.45][:count]
    ]
    return json.dumps(
        {"model_version": version or manifest["version"], "predictions": predictions}
    ).encode()


def _runtime(body: bytes | None) -> tuple[object, Stubber]:
    """A sagemaker-runtime client whose one invoke_endpoint answers ``body``."""
    client = boto3.client("sagemaker-runtime", region_name=REGION)
    stubber = Stubber(client)
    if body is not None:
        stubber.add_response(
            "invoke_endpoint",
            {"Body": StreamingBody(io.BytesIO(body), len(body)), "ContentType": "application/json"},
            {
                "EndpointName": ENDPOINT,
                "ContentType": "application/json",
                "Accept": "application/json",
                "Body": json.dumps({"instances": list(SMOKE_INCIDENTS)}).encode(),
            },
        )
    stubber.activate()
    return client, stubber


def _endpoint(status: str, config: str, reason: str | None = None) -> dict:
    now = datetime(2018, 1, 1)
    description = {
        "EndpointName": ENDPOINT,
        "EndpointArn": ENDPOINT_ARN,
        "EndpointConfigName": config,
        "EndpointStatus": status,
        "CreationTime": now,
        "LastModifiedTime": now,
    }
    if reason:
        description["FailureReason"] = reason
    return description


class StubbedSageMaker:
    """A SageMaker client whose every call is queued and asserted, in order (botocore Stubber)."""

    def __init__(self) -> None:
        self.client = boto3.client("sagemaker", region_name=REGION)
        self.stubber = Stubber(self.client)

    def describe(self, status: str, config: str, reason: str | None = None) -> StubbedSageMaker:
        self.stubber.add_response(
            "describe_endpoint", _endpoint(status, config, reason), {"EndpointName": ENDPOINT}
        )
        return self

    def existing_v1(self) -> StubbedSageMaker:
        """The look-ups before anything changes: the endpoint, its config, the version tag."""
        self.describe("InService", OLD_CONFIG)
        config_arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/{OLD_CONFIG}"
        self.stubber.add_response(
            "describe_endpoint_config",
            {
                "EndpointConfigName": OLD_CONFIG,
                "EndpointConfigArn": config_arn,
                "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": OLD_CONFIG}],
                "CreationTime": datetime(2018, 1, 1),
            },
            {"EndpointConfigName": OLD_CONFIG},
        )
        self.stubber.add_response(
            "list_tags",
            {"Tags": [{"Key": VERSION_TAG, "Value": "v1"}]},
            {"ResourceArn": config_arn},
        )
        return self

    def create(self, name: str) -> StubbedSageMaker:
        """create_model and create_endpoint_config, both named ``name``."""
        self.stubber.add_response(
            "create_model",
            {"ModelArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/{name}"},
            {
                "ModelName": name,
                "ExecutionRoleArn": CONFIG.execution_role_arn,
                "PrimaryContainer": {"Image": CONFIG.image_uri, "ModelDataUrl": ANY},
                "Tags": ANY,
            },
        )
        self.stubber.add_response(
            "create_endpoint_config",
            {"EndpointConfigArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/{name}"},
            {
                "EndpointConfigName": name,
                "ProductionVariants": [
                    {
                        "VariantName": "AllTraffic",
                        "ModelName": name,
                        "InitialInstanceCount": 2,
                        "InstanceType": "ml.c5.large",
                        "InitialVariantWeight": 1.0,
                    }
                ],
                "Tags": ANY,
            },
        )
        return self

    def update(self, config: str) -> StubbedSageMaker:
        self.stubber.add_response(
            "update_endpoint",
            {"EndpointArn": ENDPOINT_ARN},
            {"EndpointName": ENDPOINT, "EndpointConfigName": config},
        )
        return self

    def update_fails(self, config: str) -> StubbedSageMaker:
        self.stubber.add_client_error(
            "update_endpoint",
            service_error_code="ValidationException",
            service_message="Cannot update in-progress endpoint",
            expected_params={"EndpointName": ENDPOINT, "EndpointConfigName": config},
        )
        return self


def _deployer(sagemaker: object, runtime: object, fake: FakeTime) -> SageMakerEndpoint:
    return SageMakerEndpoint(
        CONFIG,
        sagemaker_client=sagemaker,
        runtime_client=runtime,
        s3_client=boto3.client("s3", region_name=REGION),
        sleep=fake.sleep,
        clock=fake.clock,
        utcnow=lambda: NOW,
    )


def _new_name(model_dir: Path) -> str:
    manifest = read_manifest(model_dir)
    return resource_name(ENDPOINT, manifest["version"], manifest["sha256"], NOW)


# -- first deployment, end to end on moto ----------------------------------------------------


def test_first_deploy_uploads_a_flat_tarball_and_creates_model_config_and_endpoint(
    aws, model_v2, tmp_path
):
    manifest = read_manifest(model_v2)
    runtime, stubber = _runtime(_answer(manifest))
    deployer = _deployer(boto3.client("sagemaker", region_name=REGION), runtime, FakeTime())

    result = deployer.deploy(model_v2)

    stubber.assert_no_pending_responses()
    assert (result.backend, result.model_version, result.previous_version) == (
        "sagemaker",
        "v2",
        None,
    )
    assert result.endpoint_name == ENDPOINT and result.endpoint_arn == ENDPOINT_ARN
    assert result.url == f"https://runtime.sagemaker.{REGION}.amazonaws.com/endpoints/{ENDPOINT}"
    assert result.smoke_latency_ms >= 0
    assert f"--endpoint-name {ENDPOINT}" in result.example and "invoke-endpoint" in result.example

    # The archive in S3 has the artifact's files at its root, byte for byte.
    key = f"registry/models/v2-{manifest['sha256'][:12]}/model.tar.gz"
    assert result.model_data_url == f"s3://{CONFIG.bucket}/{key}"
    s3 = boto3.client("s3", region_name=REGION)
    blob = s3.get_object(Bucket=CONFIG.bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as archive:
        assert sorted(archive.getnames()) == [MODEL_FILE, MANIFEST_FILE]
        archive.extractall(tmp_path / "extracted", filter="data")
    assert sha256_file(tmp_path / "extracted" / MODEL_FILE) == manifest["sha256"]

    sagemaker = boto3.client("sagemaker", region_name=REGION)
    name = _new_name(model_v2)
    assert result.details["endpoint_config_name"] == name
    assert len(name) <= 63
    model = sagemaker.describe_model(ModelName=name)
    assert model["PrimaryContainer"]["Image"] == CONFIG.image_uri
    assert model["PrimaryContainer"]["ModelDataUrl"] == result.model_data_url
    assert model["ExecutionRoleArn"] == CONFIG.execution_role_arn
    config = sagemaker.describe_endpoint_config(EndpointConfigName=name)
    variant = config["ProductionVariants"][0]
    assert (variant["ModelName"], variant["InstanceType"], variant["InitialInstanceCount"]) == (
        name,
        "ml.c5.large",
        2,
    )
    tags = sagemaker.list_tags(ResourceArn=config["EndpointConfigArn"])["Tags"]
    assert {"Key": VERSION_TAG, "Value": "v2"} in tags, "a later deploy reads previous_version here"
    endpoint = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", name)
    assert deployer.status()["endpoint_config_name"] == name


def test_a_tampered_artifact_is_refused_before_anything_is_created(aws, model_v2):
    runtime, _ = _runtime(None)
    deployer = _deployer(boto3.client("sagemaker", region_name=REGION), runtime, FakeTime())
    with pytest.raises(DeploymentError, match="sha256"):
        deployer.deploy(tamper(model_v2))
    s3 = boto3.client("s3", region_name=REGION)
    assert s3.list_objects_v2(Bucket=CONFIG.bucket)["KeyCount"] == 0
    assert boto3.client("sagemaker", region_name=REGION).list_models()["Models"] == []
    assert deployer.status() is None


def test_a_new_endpoint_that_fails_its_smoke_test_is_deleted(aws, model_v2):
    runtime, _ = _runtime(_answer(read_manifest(model_v2), version="v1"))
    deployer = _deployer(boto3.client("sagemaker", region_name=REGION), runtime, FakeTime())
    with pytest.raises(DeploymentError, match="serves model_version 'v1', expected 'v2'.*deleted"):
        deployer.deploy(model_v2)
    assert deployer.status() is None


# -- updates and rollbacks, stubbed ----------------------------------------------------------


def test_update_rolls_an_existing_endpoint_to_a_new_config(aws, model_v2):
    fake = FakeTime()
    new = _new_name(model_v2)
    sagemaker = StubbedSageMaker().existing_v1().create(new).update(new)
    sagemaker.describe("Updating", OLD_CONFIG).describe("Updating", new)
    sagemaker.describe("InService", new)
    runtime, runtime_stubber = _runtime(_answer(read_manifest(model_v2)))

    with sagemaker.stubber:
        result = _deployer(sagemaker.client, runtime, fake).deploy(model_v2)
        sagemaker.stubber.assert_no_pending_responses()
    runtime_stubber.assert_no_pending_responses()

    assert (result.model_version, result.previous_version) == ("v2", "v1")
    assert result.details["previous_endpoint_config_name"] == OLD_CONFIG
    assert result.details["endpoint_config_name"] == new
    assert fake.sleeps == [15.0, 15.0], "polled at the configured interval, never slept for real"


def test_update_that_fails_is_rolled_back_to_the_previous_config(aws, model_v2):
    new = _new_name(model_v2)
    sagemaker = StubbedSageMaker().existing_v1().create(new).update(new)
    sagemaker.describe("Updating", new)
    sagemaker.describe(
        "Failed", new, reason="The primary container did not pass the ping health check"
    )
    sagemaker.update(OLD_CONFIG).describe("Updating", OLD_CONFIG).describe("InService", OLD_CONFIG)
    runtime, _ = _runtime(None)  # never invoked: the new config never served

    with sagemaker.stubber, pytest.raises(DeploymentError) as error:
        _deployer(sagemaker.client, runtime, FakeTime()).deploy(model_v2)
    sagemaker.stubber.assert_no_pending_responses()

    assert not isinstance(error.value, RollbackError)
    message = str(error.value)
    assert "did not pass the ping health check" in message
    assert f"rolled back and serves {OLD_CONFIG} again" in message


def test_a_failed_smoke_test_after_the_update_rolls_back(aws, model_v2):
    new = _new_name(model_v2)
    sagemaker = StubbedSageMaker().existing_v1().create(new).update(new)
    sagemaker.describe("InService", new)
    sagemaker.update(OLD_CONFIG).describe("InService", OLD_CONFIG)
    bad = json.dumps({"model_version": "v2", "predictions": [{"burglary_probability": 1.7}]})
    runtime, _ = _runtime(bad.encode())

    with sagemaker.stubber, pytest.raises(DeploymentError, match="expected 3 predictions, got 1"):
        _deployer(sagemaker.client, runtime, FakeTime()).deploy(model_v2)
    sagemaker.stubber.assert_no_pending_responses()


def test_an_update_sagemaker_already_reverted_is_not_updated_again(aws, model_v2):
    new = _new_name(model_v2)
    sagemaker = StubbedSageMaker().existing_v1().create(new).update(new)
    sagemaker.describe("InService", OLD_CONFIG, reason="Image pull failed")
    runtime, _ = _runtime(None)

    with sagemaker.stubber, pytest.raises(DeploymentError, match="Image pull failed.*rolled back"):
        _deployer(sagemaker.client, runtime, FakeTime()).deploy(model_v2)
    sagemaker.stubber.assert_no_pending_responses()


def test_a_timed_out_update_waits_to_settle_then_rolls_back(aws, model_v2):
    fake = FakeTime()
    new = _new_name(model_v2)
    sagemaker = StubbedSageMaker().existing_v1().create(new).update(new)
    for _ in range(41):  # 600 s timeout / 15 s interval: 40 sleeps, then the timeout
        sagemaker.describe("Updating", new)
    sagemaker.describe("Updating", new).describe("Failed", new, reason="Capacity")
    sagemaker.update(OLD_CONFIG).describe("InService", OLD_CONFIG)
    runtime, _ = _runtime(None)

    with sagemaker.stubber, pytest.raises(DeploymentError, match="not InService after 600 s"):
        _deployer(sagemaker.client, runtime, fake).deploy(model_v2)
    sagemaker.stubber.assert_no_pending_responses()


def test_a_failed_rollback_raises_rollback_error(aws, model_v2):
    new = _new_name(model_v2)
    sagemaker = StubbedSageMaker().existing_v1().create(new).update(new)
    sagemaker.describe("Failed", new, reason="Out of memory")
    sagemaker.update_fails(OLD_CONFIG)
    runtime, _ = _runtime(None)

    with (
        sagemaker.stubber,
        pytest.raises(RollbackError, match=f"rolling back to {OLD_CONFIG} ALSO failed"),
    ):
        _deployer(sagemaker.client, runtime, FakeTime()).deploy(model_v2)
    sagemaker.stubber.assert_no_pending_responses()


@pytest.mark.parametrize("status", ["Updating", "Creating", "Failed"])
def test_a_busy_or_broken_endpoint_is_left_alone(aws, model_v2, status):
    sagemaker = StubbedSageMaker().describe(status, OLD_CONFIG, reason="earlier failure")
    runtime, _ = _runtime(None)
    with sagemaker.stubber, pytest.raises(DeploymentError, match=f"is {status}"):
        _deployer(sagemaker.client, runtime, FakeTime()).deploy(model_v2)
    sagemaker.stubber.assert_no_pending_responses()
    s3 = boto3.client("s3", region_name=REGION)
    assert s3.list_objects_v2(Bucket=CONFIG.bucket)["KeyCount"] == 0, "nothing uploaded"


def test_resource_names_are_valid_sagemaker_names():
    name = resource_name(
        "my_endpoint.with.dots-and-a-very-long-name", "2018-06-01+abc/1", "f" * 64, NOW
    )
    assert len(name) <= 63
    assert name[0].isalnum() and name[-1].isalnum()
    assert all(c.isalnum() or c == "-" for c in name)
