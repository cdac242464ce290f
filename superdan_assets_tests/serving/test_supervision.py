"""The master's duties: keep /ping fast while a big request runs, replace a stuck worker,
and never leave workers behind when it dies."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
import requests

from superdan_assets_tests.serving.conftest import free_port, server_env, start_server, stop_server
from superdan_assets_tests.serving.fixture_model import write_slow_model


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state


def test_ping_answers_fast_while_a_large_request_is_scored(tmp_path):
    model = write_slow_model(tmp_path / "model", large_call_seconds=2.0, large_rows=2000)
    port = free_port()
    running = start_server(
        ["serve", "--model-dir", str(model), "--port", str(port), "--workers", "1"],
        port,
        tmp_path / "server.log",
        server_env(),
    )
    try:
        body = ("date\n" + "2018-03-04T13:00:00\n" * 2500).encode()
        answers = []
        big = threading.Thread(
            target=lambda: answers.append(
                requests.post(
                    f"{running.url}/invocations",
                    data=body,
                    headers={"Content-Type": "text/csv"},
                    timeout=30,
                )
            )
        )
        big.start()
        time.sleep(0.5)  # the 2 s model call is now running
        started = time.perf_counter()
        ping = requests.get(f"{running.url}/ping", timeout=5)
        elapsed = time.perf_counter() - started
        big.join(timeout=30)
        assert ping.status_code == 200
        assert elapsed < 0.5, f"/ping took {elapsed:.2f} s during a large request"
        assert answers and answers[0].status_code == 200
        assert len(answers[0].json()["predictions"]) == 2500
    finally:
        stop_server(running)


def test_a_worker_stuck_longer_than_the_timeout_is_replaced(tmp_path):
    model = write_slow_model(tmp_path / "model", hang_seconds=60.0)
    port = free_port()
    running = start_server(
        ["serve", "--model-dir", str(model), "--port", str(port), "--workers", "1"],
        port,
        tmp_path / "server.log",
        server_env(SAGEMAKER_MODEL_SERVER_TIMEOUT="1"),
    )
    try:
        started = time.monotonic()
        with pytest.raises(requests.ConnectionError):
            requests.post(
                f"{running.url}/invocations",
                data=b'[{"date": "2018-03-04T13:00:00", "block": "HANG"}]',
                headers={"Content-Type": "application/json"},
                timeout=30,
            )
        assert time.monotonic() - started < 10
        deadline = time.monotonic() + 20
        while True:
            try:
                if requests.get(f"{running.url}/ping", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "no replacement worker"
            time.sleep(0.1)
        assert running.process.poll() is None
    finally:
        stop_server(running)
    logs = running.logs()
    assert "unresponsive" in logs and "replacing it" in logs


def test_workers_stop_when_the_master_dies(model_dir, tmp_path):
    port = free_port()
    running = start_server(
        ["serve", "--model-dir", str(model_dir), "--port", str(port), "--workers", "2"],
        port,
        tmp_path / "server.log",
        server_env(),
    )
    pid = running.process.pid
    workers = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    assert len(workers) == 2
    os.kill(pid, signal.SIGKILL)
    running.process.wait(timeout=10)
    deadline = time.monotonic() + 15
    while any(_alive(w) for w in workers):
        assert time.monotonic() < deadline, "workers outlived their master"
        time.sleep(0.1)
