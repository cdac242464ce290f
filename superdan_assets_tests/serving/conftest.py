"""Fixtures for the serving tests: a fixture model artifact and the real server on a free port.

The server runs as its own process through the same command the container uses, on
127.0.0.1 only, and is stopped with SIGTERM at the end; every test talks to it over HTTP.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from superdan_assets_tests.serving.fixture_model import write_fixture_model

REPO_ROOT = Path(__file__).resolve().parents[2]

#: The ``superdan`` console script, without depending on the package being pip-installed:
#: exactly what the ``[project.scripts]`` entry ``superdan_assets.cli:main`` runs.
#: Platform-only packages are blocked (see platform_guard): what runs here runs in the image.
SUPERDAN = [
    sys.executable,
    "-c",
    "import sys; from superdan_assets_tests.serving.platform_guard import install; install(); "
    "from superdan_assets.cli import main; sys.exit(main())",
]
#: Small enough that a 413 needs only a small body.
TEST_MAX_PAYLOAD_MB = "0.05"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(**extra: str) -> dict[str, str]:
    """The environment of a server under test: the repo importable, nothing from the user."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAGEMAKER_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    env.update(extra)
    return env


@dataclass
class RunningServer:
    process: subprocess.Popen
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        return self.log.read_text(errors="replace")


def start_server(
    args: list[str], port: int, log: Path, env: dict[str, str], timeout: float = 90.0
) -> RunningServer:
    """Start ``superdan ARGS`` and wait until ``/ping`` answers 200."""
    with log.open("w") as handle:
        process = subprocess.Popen(
            [*SUPERDAN, *args], env=env, cwd=REPO_ROOT, stdout=handle, stderr=subprocess.STDOUT
        )
    server = RunningServer(process, port, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}:\n{server.logs()}")
        try:
            if requests.get(f"{server.url}/ping", timeout=2).status_code == 200:
                return server
        except requests.RequestException:
            pass
        time.sleep(0.1)
    stop_server(server)
    raise AssertionError(f"server not ready in {timeout:.0f} s:\n{server.logs()}")


def stop_server(server: RunningServer, timeout: float = 40.0) -> int:
    """SIGTERM the master and wait for it; the exit code."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
    return server.process.returncode


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """A verified artifact of the fixture model (see ``fixture_model``)."""
    return write_fixture_model(tmp_path_factory.mktemp("serving") / "model")


def _serving(model_dir: Path, max_payload_mb: str, log_dir: Path) -> Iterator[RunningServer]:
    """``superdan serve`` on ``model_dir`` with two workers and the given body limit, stopped
    after use."""
    port = free_port()
    env = server_env(SAGEMAKER_MAX_PAYLOAD_IN_MB=max_payload_mb)
    running = start_server(
        ["serve", "--model-dir", str(model_dir), "--port", str(port), "--workers", "2"],
        port,
        log_dir / "server.log",
        env,
    )
    yield running
    stop_server(running)


@pytest.fixture(scope="session")
def server(model_dir, tmp_path_factory) -> Iterator[RunningServer]:
    """The real server, two workers, a 50 KiB body limit, for the whole session."""
    yield from _serving(model_dir, TEST_MAX_PAYLOAD_MB, tmp_path_factory.mktemp("server-log"))


#: The real-model server's body limit: room for thousands of rows, and quick to exceed.
REAL_MAX_PAYLOAD_MB = "0.25"
REAL_MAX_PAYLOAD_BYTES = int(float(REAL_MAX_PAYLOAD_MB) * 1024 * 1024)


@pytest.fixture(scope="session")
def real_model_dir(tmp_path_factory) -> Path:
    """The production pipeline trained once per session (see ``real_model``)."""
    from superdan_assets_tests.serving.real_model import train_real_model

    return train_real_model(tmp_path_factory.mktemp("real-model"))


@pytest.fixture(scope="session")
def real_server(real_model_dir, tmp_path_factory) -> Iterator[RunningServer]:
    """``superdan serve`` on the real model: two workers, a 256 KiB body limit."""
    yield from _serving(
        real_model_dir, REAL_MAX_PAYLOAD_MB, tmp_path_factory.mktemp("real-server-log")
    )


@dataclass
class RunningEndpoint:
    """A deployed local endpoint: the stable URL is the proxy's; ``endpoint`` manages it."""

    endpoint: object
    url: str
    server_pid: int
    proxy_pid: int


@pytest.fixture(scope="session")
def real_endpoint(real_model_dir, tmp_path_factory) -> Iterator[RunningEndpoint]:
    """The real model deployed as the main job deploys it: proxy in front of ``superdan serve``."""
    from superdan_assets.deploy.local import LocalEndpoint

    endpoint = LocalEndpoint(
        tmp_path_factory.mktemp("endpoint") / "state",
        ping_timeout_s=90.0,
        drain_timeout_s=10.0,
        stop_grace_s=15.0,
        server_env={
            "SAGEMAKER_MAX_PAYLOAD_IN_MB": REAL_MAX_PAYLOAD_MB,
            "PYTHONPATH": str(REPO_ROOT),
        },
    )
    try:
        result = endpoint.deploy(real_model_dir)
        status = endpoint.status()
        yield RunningEndpoint(endpoint, result.url, status.server_pid, status.proxy_pid)
    finally:
        endpoint.stop()
