"""Start, health, metrics and stop of the server: what SageMaker and operators rely on."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import sys
import threading

import pytest
import requests
import uvicorn

from superdan_assets.ml.artifact import MODEL_FILE, load_model
from superdan_assets.serving.app import InferenceApp
from superdan_assets_tests.serving.conftest import (
    REPO_ROOT,
    SUPERDAN,
    free_port,
    server_env,
    start_server,
    stop_server,
)
from superdan_assets_tests.serving.fixture_model import VERSION
from superdan_assets_tests.waiting import wait_until

INCIDENT = b'{"instances": [{"date": "2018-03-04T13:00:00"}]}'


class InProcessServer:
    """uvicorn on a thread, for states a real start passes through too fast to observe."""

    def __init__(self, app: InferenceApp):
        self.port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, lifespan="on", log_config=None, access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        wait_until(lambda: self.server.started, timeout_s=10, what="uvicorn to start")
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def test_ping_is_503_until_the_model_is_loaded(model_dir):
    gate = threading.Event()

    def slow_loader():
        gate.wait(10)
        return load_model(model_dir)

    with InProcessServer(InferenceApp(loader=slow_loader)) as url:
        ping = requests.get(f"{url}/ping", timeout=5)
        assert ping.status_code == 503
        assert ping.json()["error"] == "model loading"
        early = requests.post(
            f"{url}/invocations",
            data=INCIDENT,
            headers={"Content-Type": "application/json"},
            timeout=5,
        )
        assert early.status_code == 503 and "not loaded" in early.json()["error"]
        gate.set()
        wait_until(
            lambda: requests.get(f"{url}/ping", timeout=5).status_code == 200,
            timeout_s=10,
            what="the model to become ready",
        )
        ok = requests.post(
            f"{url}/invocations",
            data=INCIDENT,
            headers={"Content-Type": "application/json"},
            timeout=5,
        )
        assert ok.status_code == 200


def test_failed_load_keeps_ping_503_and_tells_the_process():
    failures = []

    def broken_loader():
        raise OSError("disk gone")

    app = InferenceApp(loader=broken_loader, on_load_failure=failures.append)
    with InProcessServer(app) as url:
        wait_until(lambda: failures, timeout_s=5, what="the load failure to be reported")
        assert [str(f) for f in failures] == ["disk gone"]
        ping = requests.get(f"{url}/ping", timeout=5)
        assert ping.status_code == 503 and ping.json()["error"] == "model failed"


def test_tampered_model_is_refused_at_start(model_dir, tmp_path):
    tampered = tmp_path / "model"
    shutil.copytree(model_dir, tampered)
    data = bytearray((tampered / MODEL_FILE).read_bytes())
    data[len(data) // 2] ^= 0x01
    (tampered / MODEL_FILE).write_bytes(bytes(data))
    done = subprocess.run(
        [*SUPERDAN, "serve", "--model-dir", str(tampered), "--port", str(free_port())],
        env=server_env(),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "refusing to serve" in done.stderr and "sha256" in done.stderr
    assert "listening" not in done.stderr


def test_missing_model_dir_is_a_clear_error(tmp_path):
    done = subprocess.run(
        [*SUPERDAN, "serve", "--model-dir", str(tmp_path / "nothing"), "--port", str(free_port())],
        env=server_env(),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "model.json" in done.stderr


def test_bad_environment_is_a_clear_error(model_dir):
    done = subprocess.run(
        [*SUPERDAN, "serve", "--model-dir", str(model_dir)],
        env=server_env(SAGEMAKER_MODEL_SERVER_WORKERS="many"),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "SAGEMAKER_MODEL_SERVER_WORKERS='many'" in done.stderr


def _metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not in metrics"
    return float(match.group(1))


def test_metrics_add_up_across_workers(server):
    key = 'superdan_requests_total{endpoint="invocations",status="200"}'
    before = requests.get(f"{server.url}/metrics", timeout=5).text
    for _ in range(20):  # a new connection each time, so both workers answer some
        response = requests.post(
            f"{server.url}/invocations",
            data=INCIDENT,
            headers={"Content-Type": "application/json", "Connection": "close"},
            timeout=10,
        )
        assert response.status_code == 200
    bad = requests.post(
        f"{server.url}/invocations",
        data=b"{",
        timeout=10,
        headers={"Content-Type": "application/json"},
    )
    assert bad.status_code == 400
    after = requests.get(f"{server.url}/metrics", timeout=5)
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text
    assert _metric(text, key) - _metric(before, key) == 20
    assert _metric(text, "superdan_workers") == 2
    assert _metric(text, "superdan_workers_ready") == 2
    assert _metric(text, 'superdan_request_errors_total{kind="client"}') >= 1
    assert _metric(text, 'superdan_request_errors_total{kind="server"}') == 0
    assert f'superdan_model_info{{version="{VERSION}"}} 1' in text
    count = _metric(text, "superdan_invocation_duration_seconds_count")
    assert _metric(text, 'superdan_invocation_duration_seconds_bucket{le="+Inf"}') == count


def test_sigterm_lets_an_in_flight_request_finish(model_dir, tmp_path):
    port = free_port()
    running = start_server(
        ["serve", "--model-dir", str(model_dir), "--port", str(port), "--workers", "1"],
        port,
        tmp_path / "server.log",
        server_env(),
    )
    try:
        client = socket.create_connection(("127.0.0.1", port), timeout=20)
        head = (
            "POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(INCIDENT)}\r\nExpect: 100-continue\r\n\r\n"
        ).encode()
        client.sendall(head)
        # The server says "100 Continue" when the application asks for the body: from then on
        # the request is certainly in flight inside a worker (no guess at how long that takes).
        interim = b""
        while not interim.endswith(b"\r\n\r\n"):
            chunk = client.recv(1)  # the socket's 20 s timeout is the deadline
            assert chunk, "the server closed the connection"
            interim += chunk
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        client.sendall(INCIDENT[:10])
        running.process.send_signal(signal.SIGTERM)
        # New connections are refused while the in-flight request is still open.
        wait_until(lambda: not _accepts(port), timeout_s=10, what="new connections to be refused")
        assert running.process.poll() is None
        client.sendall(INCIDENT[10:])
        answer = b""
        while b"predictions" not in answer or not answer.endswith(b"}]}"):
            chunk = client.recv(65536)
            if not chunk:
                break
            answer += chunk
        client.close()
        assert answer.startswith(b"HTTP/1.1 200"), answer
        assert b'"model_version":"fixture-1"' in answer
        assert running.process.wait(timeout=30) == 0
    finally:
        stop_server(running)
    assert "received SIGTERM" in running.logs()


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def test_serving_never_imports_dagster():
    code = (
        "import sys\n"
        "import superdan_assets.cli, superdan_assets.serving.supervisor\n"
        "import superdan_assets.serving.training_job\n"
        "assert 'dagster' not in sys.modules, 'dagster imported'\n"
        "assert 'numpy' in sys.modules\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=server_env(),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("flag", ["--help"])
def test_cli_help_lists_the_subcommands(flag):
    done = subprocess.run(
        [*SUPERDAN, flag],
        env=server_env(),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0
    for command in ("serve", "train", "pipeline"):
        assert command in done.stdout
