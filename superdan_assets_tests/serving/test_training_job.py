"""``superdan train``: the SageMaker training layout, hyper-parameters as strings, failures."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pandas as pd
import pytest
import requests

from superdan_assets.serving.training_job import (
    DEFAULT_HOLDOUT_DAYS,
    JobConfig,
    TrainingJobError,
    TrainingPaths,
    parse_value,
)
from superdan_assets_tests.datagen import export_rows, write_export
from superdan_assets_tests.serving.conftest import (
    REPO_ROOT,
    SUPERDAN,
    free_port,
    server_env,
    start_server,
    stop_server,
)


@pytest.mark.parametrize(
    "raw,value",
    [
        ("28", 28),
        ("0.05", 0.05),
        ("true", True),
        ("True", True),
        ("False", False),
        ("[1, 2]", [1, 2]),
        ("gbdt", "gbdt"),
        (7, 7),
    ],
)
def test_hyperparameters_arrive_as_strings_and_are_converted(raw, value):
    assert parse_value(raw) == value


def test_job_config_takes_its_own_keys_and_passes_the_rest_to_the_model():
    config = JobConfig.from_hyperparameters(
        {"holdout_days": 14, "seed": 3, "learning_rate": 0.1, "num_leaves": 31}
    )
    assert (config.holdout_days, config.seed, config.min_recall) == (14, 3, 0.6)
    assert config.model_params == {"learning_rate": 0.1, "num_leaves": 31}
    assert JobConfig.from_hyperparameters({}).holdout_days == DEFAULT_HOLDOUT_DAYS
    assert JobConfig.from_hyperparameters({}).training_options == {}
    options = JobConfig.from_hyperparameters({"include_seed_protocol": False, "validation_days": 7})
    assert options.training_options == {"include_seed_protocol": False, "validation_days": 7}
    assert options.model_params == {}
    with pytest.raises(TrainingJobError, match="holdout_days"):
        JobConfig.from_hyperparameters({"holdout_days": "soon"})
    with pytest.raises(TrainingJobError, match="holdout_days"):
        JobConfig.from_hyperparameters({"holdout_days": 0})


def test_paths_come_from_flags_then_sm_variables_then_the_opt_ml_layout():
    env = {"SM_CHANNEL_TRAINING": "/data", "SM_MODEL_DIR": "/models", "SM_OUTPUT_DIR": "/out"}
    paths = TrainingPaths.resolve(model_dir="/flag", env=env)
    assert str(paths.training_dir) == "/data"
    assert str(paths.model_dir) == "/flag"
    assert str(paths.failure_file) == "/out/failure"
    default = TrainingPaths.resolve(env={})
    assert str(default.training_dir) == "/opt/ml/input/data/training"
    assert str(default.model_dir) == "/opt/ml/model"
    assert str(default.hyperparameters_file) == "/opt/ml/input/config/hyperparameters.json"
    assert str(default.failure_file) == "/opt/ml/output/failure"


def run_train(tmp_path, channel, hyperparameters=None):
    config = tmp_path / "config" / "hyperparameters.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps(hyperparameters or {}))
    env = server_env(
        SM_CHANNEL_TRAINING=str(channel),
        SM_MODEL_DIR=str(tmp_path / "model"),
        SM_OUTPUT_DIR=str(tmp_path / "output"),
    )
    return subprocess.run(
        [*SUPERDAN, "train", "--hyperparameters", str(config)],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_failed_job_writes_the_failure_file_and_exits_non_zero(tmp_path):
    channel = tmp_path / "empty-channel"
    channel.mkdir()
    done = run_train(tmp_path, channel)
    assert done.returncode == 1
    failure = (tmp_path / "output" / "failure").read_text()
    assert f"training channel {channel}" in failure and "no .csv or .csv.gz files" in failure
    assert not (tmp_path / "model").exists()


def test_bad_hyperparameters_fail_the_job_with_the_reason(tmp_path):
    channel = tmp_path / "channel"
    write_export(channel / "crimes.csv", export_rows("2018-01-01", days=3, per_day=5))
    done = run_train(tmp_path, channel, {"holdout_days": "-3"})
    assert done.returncode == 1
    assert "holdout_days" in (tmp_path / "output" / "failure").read_text()


@pytest.mark.slow
def test_train_then_serve_end_to_end(tmp_path):
    """``superdan train`` with the real ML code, then ``superdan serve`` on what it wrote:
    predictions over HTTP equal the trained pipeline's in-process ones."""
    from superdan_assets.ml.artifact import load_model
    from superdan_assets.ml.schema import to_canonical

    channel = tmp_path / "channel"
    write_export(channel / "crimes_2018.csv.gz", export_rows("2018-01-01", days=70, per_day=40))
    done = run_train(
        tmp_path,
        channel,
        {"holdout_days": "14", "seed": "1", "include_seed_protocol": "false", "n_estimators": "50"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "metrics:" in done.stdout
    assert not (tmp_path / "output" / "failure").exists()
    model = load_model(tmp_path / "model")
    assert 0.0 <= model.threshold <= 1.0

    incidents = [
        {
            "date": "2018-03-20T13:00:00",
            "block": "012XX S STATE ST",
            "location_description": "RESIDENCE",
            "beat": "0123",
            "district": "001",
            "latitude": 41.86,
            "longitude": -87.62,
        },
        {"date": "2018-03-21T00:00:00", "location_description": "STREET", "domestic": "false"},
        {"date": "2018-03-22T08:15:00"},
    ]
    expected = model.predict_proba(
        to_canonical(pd.DataFrame(incidents), "chicago", required=("date",))
    )
    port = free_port()
    running = start_server(
        ["serve", "--model-dir", str(tmp_path / "model"), "--port", str(port), "--workers", "1"],
        port,
        tmp_path / "serve.log",
        server_env(),
    )
    try:
        response = requests.post(
            f"{running.url}/invocations", json={"instances": incidents}, timeout=30
        )
    finally:
        stop_server(running)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == model.version
    got = [p["burglary_probability"] for p in body["predictions"]]
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    assert [p["predicted_type"] for p in body["predictions"]] == [
        "BURGLARY" if p >= model.threshold else "THEFT" for p in expected
    ]
