"""The master's duties: keep /ping fast while a big request runs, replace a stuck worker,
and never leave workers behind when it dies."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest
import requests

from superdan_assets_tests.serving.conftest import free_port, server_env, start_server, stop_server
from superdan_assets_tests.serving.fixture_model import write_slow_model
from superdan_assets_tests.waiting import wait_until


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state


def _pings(url: str) -> bool:
    try:
        return requests.get(f"{url}/ping", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_ping_answers_while_a_large_request_is_scored(tmp_path):
    """The model call of a big request runs off the event loop: /ping is answered meanwhile.

    The call is held open by a gate until the ping has its answer, so the order is certain.
    """
    gate = tmp_path / "gate"
    gate.mkdir()
    model = write_slow_model(tmp_path / "model", large_rows=2000, gate_dir=str(gate))
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
                    timeout=60,
                )
            )
        )
        big.start()
        wait_until((gate / "started").exists, timeout_s=30, what="the large model call")
        ping = requests.get(f"{running.url}/ping", timeout=10)
        assert ping.status_code == 200
        assert not answers, "the large request was answered before its call was released"
        (gate / "release").touch()
        big.join(timeout=60)
        assert answers and answers[0].status_code == 200
        assert len(answers[0].json()["predictions"]) == 2500
    finally:
        (gate / "release").touch()
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
        # A replaced worker drops the connection (ConnectionError); one never replaced would
        # leave the request hanging into a ReadTimeout, which is not a ConnectionError.
        with pytest.raises(requests.ConnectionError):
            requests.post(
                f"{running.url}/invocations",
                data=b'[{"date": "2018-03-04T13:00:00", "block": "HANG"}]',
                headers={"Content-Type": "application/json"},
                timeout=30,
            )
        wait_until(lambda: _pings(running.url), timeout_s=20, what="a replacement worker")
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
    wait_until(
        lambda: not any(_alive(w) for w in workers), timeout_s=15, what="the workers to stop"
    )
