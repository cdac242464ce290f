"""The Dockerfile cannot be built here (no Docker engine), so run its commands outside Docker.

The ENTRYPOINT and CMD are read from the Dockerfile itself, and the ``superdan`` executable is
resolved through ``[project.scripts]`` in pyproject.toml, so a change to either is tested.
"""

from __future__ import annotations

import json
import re
import subprocess
import tomllib

import pytest
import requests

from superdan_assets_tests.datagen import export_rows, write_export
from superdan_assets_tests.serving.conftest import (
    REPO_ROOT,
    SUPERDAN,
    free_port,
    server_env,
    start_server,
    stop_server,
)

DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text()


def instruction(name: str, text: str = DOCKERFILE) -> list[str]:
    """The JSON (exec-form) argument list of the last ``name`` instruction."""
    found = re.findall(rf"^{name}\s+(\[.*\])\s*$", text, re.MULTILINE)
    assert found, f"no exec-form {name} in the Dockerfile"
    return json.loads(found[-1])


def image_env() -> dict[str, str]:
    """The ENV of the final stage (``KEY=value`` pairs, continuation lines joined)."""
    final = DOCKERFILE.split("FROM ")[-1].replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in re.findall(r"^ENV\s+(.*)$", final, re.MULTILINE):
        env.update(dict(re.findall(r"(\w+)=(\S+)", line)))
    return env


def container_command(*args: str) -> list[str]:
    """What ``docker run IMAGE ARGS`` would execute, with ``superdan`` resolved locally."""
    entrypoint = instruction("ENTRYPOINT")
    assert entrypoint == ["superdan"]
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["superdan"] == "superdan_assets.cli:main"
    return [*SUPERDAN, *entrypoint[1:], *(args or instruction("CMD"))]


def test_image_shape():
    stages = re.findall(r"^FROM\s+(\S+)", DOCKERFILE, re.MULTILINE)
    assert len(stages) >= 2 and all(s.startswith("python:3.11-slim") for s in stages)
    final = DOCKERFILE.split("FROM ")[-1]
    assert "build-essential" not in final and "USER superdan" in final
    env = image_env()
    assert env["OMP_NUM_THREADS"] == "1" and env["OMP_WAIT_POLICY"] == "passive"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["SUPERDAN_SERVE_HOST"] == "0.0.0.0"
    assert "HEALTHCHECK" in final and "/ping" in final and "EXPOSE 8080" in final
    assert "pip install ." in DOCKERFILE
    assert instruction("CMD") == ["serve"]


def test_default_command_serves_the_model_dir_on_the_sagemaker_port(model_dir, tmp_path):
    port = free_port()
    # The image listens on 0.0.0.0; tests stay on the loopback interface.
    env = server_env(
        **{
            **image_env(),
            "SUPERDAN_SERVE_HOST": "127.0.0.1",
            "SAGEMAKER_BIND_TO_PORT": str(port),
            "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
        }
    )
    env["PATH"] = server_env()["PATH"]
    command = container_command()
    assert command[-1] == "serve"
    running = start_server(
        [*command[len(SUPERDAN) :], "--model-dir", str(model_dir)],
        port,
        tmp_path / "serve.log",
        env,
    )
    try:
        response = requests.post(
            f"{running.url}/invocations",
            data=b"date,location_description\n2018-03-04T13:00:00,RESIDENCE\n",
            headers={"Content-Type": "text/csv"},
            timeout=10,
        )
        assert response.status_code == 200
        assert len(response.json()["predictions"]) == 1
    finally:
        assert stop_server(running) == 0


@pytest.mark.slow
def test_train_command_reads_the_channel_and_writes_the_model(tmp_path):
    channel = tmp_path / "input" / "data" / "training"
    write_export(channel / "crimes_2018.csv", export_rows("2018-01-01", days=60, per_day=30))
    env = server_env(
        **image_env(),
        SM_CHANNEL_TRAINING=str(channel),
        SM_MODEL_DIR=str(tmp_path / "model"),
        SM_OUTPUT_DIR=str(tmp_path / "output"),
    )
    hyperparameters = tmp_path / "hyperparameters.json"
    hyperparameters.write_text(json.dumps({"include_seed_protocol": "false", "n_estimators": "50"}))
    done = subprocess.run(
        [*container_command("train"), "--hyperparameters", str(hyperparameters)],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "model" / "model.json").is_file()
    assert (tmp_path / "model" / "model.joblib").is_file()
