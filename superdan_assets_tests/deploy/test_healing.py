"""Self-healing of the local endpoint: ``ensure_endpoint``, ``superdan endpoint ensure`` and the
endpoint health sensor, against the real proxy and ``superdan serve`` processes on 127.0.0.1.

Processes are killed with SIGKILL, as the out-of-memory killer does; each test stops its
endpoint and checks that no process is left.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from dagster import DefaultSensorStatus, SkipReason, build_sensor_context

from superdan_assets.deploy.healing import (
    BUSY,
    FAILED,
    HEALTHY,
    NOT_DEPLOYED,
    RESTARTED,
    ensure_endpoint,
)
from superdan_assets.deploy.local import LocalEndpoint
from superdan_assets.deploy.state import StateStore
from superdan_assets.endpoint_sensor import EndpointDownError, build_endpoint_health_sensor
from superdan_assets.ml.artifact import MODEL_FILE
from superdan_assets.resources.endpoint import LocalEndpointResource, SageMakerEndpointResource
from superdan_assets_tests.deploy.models import write_artifact
from superdan_assets_tests.deploy.test_local import _processes_mentioning
from superdan_assets_tests.serving.conftest import REPO_ROOT, SUPERDAN, server_env
from superdan_assets_tests.waiting import wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def endpoint(tmp_path: Path):
    state_dir = tmp_path / "endpoint" / "chicago"  # the resource's state dir / the city
    local = LocalEndpoint(state_dir, ping_timeout_s=60.0, drain_timeout_s=5.0, stop_grace_s=10.0)
    yield local
    local.stop()
    assert _processes_mentioning(str(state_dir)) == []


def _sensor_tick(state_dir: Path, backend: str = "local"):
    if backend == "sagemaker":
        resource = SageMakerEndpointResource(bucket="b", image_uri="i", role_arn="r")
    else:
        resource = LocalEndpointResource(state_dir=str(state_dir.parent), port=None)
    return build_endpoint_health_sensor(resource, state_dir.name)(build_sensor_context())


def _cli_ensure(state_dir: Path) -> tuple[int, dict]:
    done = subprocess.run(
        [*SUPERDAN, "endpoint", "ensure", "--state-dir", str(state_dir)],
        env=server_env(),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, json.loads(done.stdout)


def _kill(pid: int, endpoint: LocalEndpoint, which: str) -> None:
    os.kill(pid, signal.SIGKILL)
    wait_until(
        lambda: not getattr(endpoint.status(), f"{which}_alive"),
        timeout_s=10,
        what=f"the {which} to die",
    )


def test_the_sensor_runs_by_default_and_nothing_deployed_is_no_error(endpoint):
    resource = LocalEndpointResource(state_dir=str(endpoint.state_dir.parent))
    sensor = build_endpoint_health_sensor(resource, "chicago")
    assert sensor.default_status == DefaultSensorStatus.RUNNING
    assert sensor.name == "chicago__endpoint_health"
    assert ensure_endpoint(endpoint).action == NOT_DEPLOYED
    tick = _sensor_tick(endpoint.state_dir)
    assert isinstance(tick, SkipReason) and "no model has been deployed" in tick.skip_message
    code, outcome = _cli_ensure(endpoint.state_dir)
    assert (code, outcome["action"]) == (0, NOT_DEPLOYED)
    sagemaker = _sensor_tick(endpoint.state_dir, backend="sagemaker")
    assert "heals itself" in sagemaker.skip_message


def test_dead_server_and_proxy_come_back_by_sensor_and_by_cli(endpoint, tmp_path):
    deployed = endpoint.deploy(write_artifact(tmp_path / "registry" / "v1", "v1", seed=1))
    healthy = ensure_endpoint(endpoint)
    assert (healthy.action, healthy.restarted) == (HEALTHY, ())

    _kill(deployed.pid, endpoint, "server")
    tick = _sensor_tick(endpoint.state_dir)
    assert "restarted the dead server" in tick.skip_message
    status = endpoint.status()
    assert status.healthy and status.server_alive and status.server_pid != deployed.pid
    assert (status.url, status.model_version) == (deployed.url, "v1")

    _kill(status.proxy_pid, endpoint, "proxy")
    code, outcome = _cli_ensure(endpoint.state_dir)
    assert (code, outcome["action"], outcome["restarted"]) == (0, RESTARTED, ["proxy"])
    after = endpoint.status()
    assert after.healthy and after.url == deployed.url, "the proxy is back on the stable port"
    assert after.server_pid == status.server_pid, "the live server was kept"


def test_a_roll_in_progress_is_left_alone_and_an_unrestartable_endpoint_fails_loudly(
    endpoint, tmp_path
):
    deployed = endpoint.deploy(write_artifact(tmp_path / "registry" / "v1", "v1", seed=1))
    _kill(deployed.pid, endpoint, "server")

    with StateStore(endpoint.state_dir).lock(timeout_s=5.0):
        busy = ensure_endpoint(endpoint, lock_timeout_s=0.2)
    assert busy.action == BUSY and busy.serving

    # The verified copy it would restart from has changed: never serve it, say so.
    with open(Path(deployed.model_dir) / MODEL_FILE, "ab") as fh:
        fh.write(b"tampered")
    failed = ensure_endpoint(endpoint)
    assert failed.action == FAILED and not failed.serving
    assert "could not be restarted" in failed.message and "v1" in failed.message
    with pytest.raises(EndpointDownError, match="could not be restarted"):
        _sensor_tick(endpoint.state_dir)
    code, outcome = _cli_ensure(endpoint.state_dir)
    assert (code, outcome["action"]) == (1, FAILED)
    assert not endpoint.status().server_alive
