"""LocalEndpoint against the real ``superdan serve`` and the real proxy, on 127.0.0.1.

Each test owns a state directory and stops its endpoint, and asserts that no process is left.
Traffic runs in background threads across every roll, failed or not, and every non-200 answer
or broken connection is counted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from superdan_assets.deploy.local import LocalEndpoint
from superdan_assets.deploy.processes import ProcessHandle, is_alive, port_in_use
from superdan_assets.deploy.result import DeploymentError
from superdan_assets.deploy.state import DeploymentInProgress, StateStore
from superdan_assets_tests.deploy.models import tamper, write_artifact, write_unloadable_artifact
from superdan_assets_tests.deploy.traffic import Traffic

pytestmark = pytest.mark.slow


def _processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains ``text`` (zombies excluded)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if text in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    return tmp_path / "registry"


@pytest.fixture
def endpoint(tmp_path: Path):
    """An endpoint in a fresh state dir, stopped afterwards whatever the test did."""
    state_dir = tmp_path / "endpoint"
    local = LocalEndpoint(state_dir, ping_timeout_s=60.0, drain_timeout_s=10.0, stop_grace_s=15.0)
    yield local
    local.stop()
    assert _processes_mentioning(str(state_dir)) == []


def test_roll_from_another_process_has_zero_failed_requests(endpoint, registry):
    first = endpoint.deploy(write_artifact(registry / "v1", "v1", seed=1))
    assert first.model_version == "v1" and first.previous_version is None
    assert first.url.startswith("http://127.0.0.1:")
    assert 0 < first.smoke_latency_ms < 10_000
    assert f"{first.url}/invocations" in first.example
    state_file = endpoint.state_dir / "state.json"
    assert oct(state_file.stat().st_mode & 0o777) == "0o600", "it holds the proxy's control token"
    state = json.loads(state_file.read_text())
    assert (state["url"], state["server"]["pid"]) == (first.url, first.pid)
    assert (state["server"]["model_version"], state["server"]["model_dir"]) == (
        "v1",
        first.model_dir,
    )
    assert state["proxy"]["pid"] == first.details["proxy_pid"]
    v2 = write_artifact(registry / "v2", "v2", seed=2)

    # The roll runs in a separate Python process, as a later Dagster run would.
    roll = (
        "import json, sys; from superdan_assets.deploy.local import LocalEndpoint; "
        "print(json.dumps(LocalEndpoint(sys.argv[1]).deploy(sys.argv[2]).to_dict()))"
    )
    with Traffic(first.url) as traffic:
        traffic.wait_for(20)
        done = subprocess.run(
            [sys.executable, "-c", roll, str(endpoint.state_dir), str(v2)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        traffic.wait_for(40)

    second = json.loads(done.stdout.strip().splitlines()[-1])
    assert second["url"] == first.url, "the URL must not change across a roll"
    assert (second["model_version"], second["previous_version"]) == ("v2", "v1")
    assert second["details"]["retired_gracefully"] is True
    assert second["details"]["retired_inflight_left"] == 0

    assert traffic.failures == [], traffic.failures[:5]
    assert len(traffic.outcomes) > 60
    for client in ("keep-alive", "new-connection"):
        assert traffic.versions(client) == ["v1", "v2"], "each client switches once, never back"

    status = endpoint.status()
    assert status.healthy and status.model_version == "v2" and status.previous_version == "v1"
    assert not is_alive(ProcessHandle(first.pid, None)), "the old server was stopped"
    # The served copy is private: deleting the registry changes nothing.
    assert Path(second["model_dir"]).is_relative_to(endpoint.state_dir)

    endpoint.stop()
    assert endpoint.status().deployed is False
    assert not port_in_use("127.0.0.1", int(first.url.rsplit(":", 1)[1]))
    assert _processes_mentioning(str(endpoint.state_dir)) == []


def test_failed_rolls_leave_the_previous_model_serving(endpoint, registry):
    first = endpoint.deploy(write_artifact(registry / "v1", "v1", seed=1))
    bad_smoke = LocalEndpoint(endpoint.state_dir, smoke_incidents=[{"date": "not a date"}])

    with Traffic(first.url) as traffic:
        traffic.wait_for(10)
        with pytest.raises(DeploymentError, match="sha256") as tampered:
            endpoint.deploy(tamper(write_artifact(registry / "v2", "v2", seed=2)))
        with pytest.raises(DeploymentError, match="exited with code 2") as unloadable:
            endpoint.deploy(write_unloadable_artifact(registry / "v3", "v3"))
        with pytest.raises(DeploymentError, match="HTTP 400") as smoke:
            bad_smoke.deploy(write_artifact(registry / "v4", "v4", seed=4))
        traffic.wait_for(10)

    for error in (tampered, unloadable, smoke):
        assert f"Model v1 (pid {first.pid}) is still serving at {first.url}" in str(error.value)
    assert traffic.failures == []
    assert {o.version for o in traffic.outcomes} == {"v1"}
    status = endpoint.status()
    assert (status.model_version, status.server_pid, status.healthy) == ("v1", first.pid, True)
    # Only v1's server runs (master and worker): the failed candidates were stopped.
    servers = [p for p in _processes_mentioning(str(endpoint.state_dir)) if "serve" in _cmd(p)]
    assert servers and all(status.model_dir in _cmd(p) for p in servers)


def _cmd(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def test_dead_processes_are_detected_and_restarted(endpoint, registry):
    first = endpoint.deploy(write_artifact(registry / "v1", "v1", seed=1))

    os.kill(first.pid, signal.SIGKILL)
    _wait(lambda: not endpoint.status().server_alive)
    status = endpoint.status()
    assert status.deployed and not status.server_alive and status.proxy_alive

    healed = endpoint.ensure_running()
    assert healed.healthy and healed.server_alive
    assert (healed.url, healed.model_version) == (first.url, "v1")
    assert healed.server_pid != first.pid

    os.kill(healed.proxy_pid, signal.SIGKILL)
    _wait(lambda: not endpoint.status().proxy_alive)
    assert endpoint.status().healthy is False

    second = endpoint.deploy(write_artifact(registry / "v2", "v2", seed=2))
    assert second.url == first.url, "the proxy came back on the same stable port"
    assert (second.model_version, second.previous_version) == ("v2", "v1")
    assert endpoint.status().healthy


def test_concurrent_rolls_are_refused(endpoint, registry):
    model = write_artifact(registry / "v1", "v1", seed=1)
    hurried = LocalEndpoint(endpoint.state_dir, lock_timeout_s=0.3)
    with StateStore(endpoint.state_dir).lock(timeout_s=1.0):
        started = time.monotonic()
        with pytest.raises(DeploymentInProgress, match="another process is rolling"):
            hurried.deploy(model)
        assert time.monotonic() - started < 5
    assert endpoint.status().deployed is False


def _wait(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
