"""The main job end to end, through the live-API path, on real Chicago data.

Three months of the real export are served by the fake SODA server on 127.0.0.1, and the
``superdan pipeline`` command (the README's main job) runs in a subprocess with its own
``SUPERDAN_HOME`` and ``DAGSTER_HOME``: ingestion with checks, training with gates, a live local
endpoint, the drift report. Then a deliberately crippled model is trained: its blocking gates
fail, ``model_endpoint`` does not run, and the first model keeps serving and stays production.
"""

import json
import os
import socket
import subprocess
import sys
import urllib.request

import pandas as pd
import pytest

from superdan_assets.sources.export import ExportSource
from superdan_assets_tests.fakes.soda_server import FakeSodaServer
from superdan_assets_tests.specs import spec_with_source

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

START, END, HOLDOUT_DAYS = "2017-11-01", "2018-01-31", 21


def _soda_records(frame: pd.DataFrame) -> list[dict]:
    """Canonical rows as the live API sends them: strings, ISO dates, null keys omitted."""
    records = []
    text = frame.astype(object).where(frame.notna(), None)
    for row in text.to_dict("records"):
        record = {}
        for key, value in row.items():
            if value is None or key == "city":
                continue
            if isinstance(value, pd.Timestamp):
                value = value.strftime("%Y-%m-%dT%H:%M:%S.000")
            elif isinstance(value, bool):
                value = value
            else:
                value = str(value)
            record[key] = value
        records.append(record)
    return records


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def pipeline_home(chicago_export_dir, export_cache_dir, tmp_path_factory):
    frame = ExportSource(chicago_export_dir, cache_dir=export_cache_dir).fetch(
        pd.Timestamp(START), pd.Timestamp(END) + pd.Timedelta(days=1)
    )
    home = tmp_path_factory.mktemp("pipeline")
    port = _free_port()
    env = {
        **os.environ,
        "SUPERDAN_HOME": str(home / "superdan"),
        "DAGSTER_HOME": str(home / "dagster_home"),
        "SUPERDAN_ENDPOINT_PORT": str(port),
        "WANDB_MODE": "offline",
    }
    env.pop("SUPERDAN_EXPORT_PATH", None)
    with FakeSodaServer(_soda_records(frame)) as server:
        # A user's spec: the packaged Chicago one with its feed on the fake server.
        spec = spec_with_source("chicago", home / "chicago.toml", kind="soda", url=server.url)
        env["SUPERDAN_CITY"] = str(spec)
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "superdan_assets.cli",
                "pipeline",
                "--start",
                START,
                "--end",
                END,
                "--holdout-days",
                str(HOLDOUT_DAYS),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
    yield {"home": home, "env": env, "port": port, "proc": proc, "rows": len(frame)}
    from superdan_assets.deploy.local import LocalEndpoint

    LocalEndpoint(home / "superdan" / "endpoint" / "chicago").stop()


def _instance(env):
    from dagster import DagsterInstance

    os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
    return DagsterInstance.get()


def test_main_job_ends_with_a_live_endpoint(pipeline_home):
    proc = pipeline_home["proc"]
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "The endpoint is live at" in proc.stdout
    url = f"http://127.0.0.1:{pipeline_home['port']}"
    with urllib.request.urlopen(f"{url}/ping", timeout=10) as response:
        assert response.status == 200
    body = json.dumps(
        {
            "instances": [
                {
                    "date": "2018-02-01T09:00:00",
                    "location_description": "RESIDENCE",
                    "district": "008",
                },
                {"date": "2018-02-01T14:30:00", "location_description": "SMALL RETAIL STORE"},
            ]
        }
    ).encode()
    request = urllib.request.Request(
        f"{url}/invocations", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = json.loads(response.read())
    assert len(answer["predictions"]) == 2
    assert all(0 <= p["burglary_probability"] <= 1 for p in answer["predictions"])
    status = subprocess.run(
        [sys.executable, "-m", "superdan_assets.cli", "endpoint", "status"],
        env=pipeline_home["env"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0, status.stdout + status.stderr
    assert json.loads(status.stdout)["model_version"] == answer["model_version"]


def test_every_asset_and_check_is_recorded_in_the_instance(pipeline_home):
    from dagster import AssetKey

    instance = _instance(pipeline_home["env"])
    for asset in ("raw_crimes", "crime_features", "crime_model", "model_endpoint", "drift_report"):
        assert (
            instance.get_latest_materialization_event(AssetKey(["chicago", asset])) is not None
        ), asset
    raw = instance.get_latest_materialization_event(AssetKey(["chicago", "raw_crimes"]))
    assert raw.asset_materialization.metadata["run_row_count"].value == pipeline_home["rows"]
    model = instance.get_latest_materialization_event(AssetKey(["chicago", "crime_model"]))
    meta = model.asset_materialization.metadata
    assert meta["pr_auc"].value > meta["seed_protocol_pr_auc"].value > meta["prior_pr_auc"].value
    endpoint = instance.get_latest_materialization_event(AssetKey(["chicago", "model_endpoint"]))
    assert endpoint.asset_materialization.metadata["model_version"].value == (
        meta["model_version"].value
    )
    drift = instance.get_latest_materialization_event(AssetKey(["chicago", "drift_report"]))
    assert drift.asset_materialization.partition == END
    assert drift.asset_materialization.metadata["verdict"].value in ("OK", "WARN", "ALERT")


def test_a_model_failing_its_gates_is_never_promoted_or_served(pipeline_home):
    env = pipeline_home["env"]
    from dagster import AssetKey

    instance = _instance(env)
    served = instance.get_latest_materialization_event(AssetKey(["chicago", "model_endpoint"]))
    served_version = served.asset_materialization.metadata["model_version"].value
    crippled = json.dumps(
        {"n_estimators": 1, "num_leaves": 2, "learning_rate": 0.001, "history_keys": []}
    )
    script = (
        "import json, sys\n"
        "from dagster import DagsterInstance\n"
        "from superdan_assets.definitions import defs\n"
        "job = defs.resolve_job_def('chicago__train_and_deploy_job')\n"
        f"cfg = {{'ops': {{'chicago__crime_model': {{'config': {{'holdout_days': {HOLDOUT_DAYS}, "
        f"'hyperparameters': {crippled!r}}}}}}}}}\n"
        "r = job.execute_in_process(instance=DagsterInstance.get(), run_config=cfg, "
        "raise_on_error=False)\n"
        "print(json.dumps({'success': r.success}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600
    )
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"success": False}, proc.stderr[
        -3000:
    ]
    instance = _instance(env)
    # The crippled model was registered and its gates recorded as failed...
    latest = instance.get_latest_materialization_event(AssetKey(["chicago", "crime_model"]))
    assert latest.asset_materialization.metadata["model_version"].value != served_version
    # ...but model_endpoint did not run: the same version is served and is production.
    still = instance.get_latest_materialization_event(AssetKey(["chicago", "model_endpoint"]))
    assert still.run_id == served.run_id
    url = f"http://127.0.0.1:{pipeline_home['port']}"
    request = urllib.request.Request(
        f"{url}/invocations",
        data=b'[{"date": "2018-02-01T09:00:00"}]',
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read())["model_version"] == served_version
    production = json.loads(
        (
            pipeline_home["home"] / "superdan" / "data" / "chicago" / "models" / "production.json"
        ).read_text()
    )
    assert production["version"] == served_version


def test_main_job_forecasts_the_day_after_its_window(pipeline_home):
    """The street-risk step runs before the deployment; on a short window its model may fail
    its gate, which the job reports without failing (the classifier does not depend on it)."""
    proc = pipeline_home["proc"]
    assert "running chicago__street_risk_job" in proc.stdout
    url = f"http://127.0.0.1:{pipeline_home['port']}"
    if "Street risk for 2018-02-01" in proc.stdout:
        with urllib.request.urlopen(f"{url}/risk?date=2018-02-01&top=3", timeout=10) as answer:
            top = json.loads(answer.read())
        assert answer.status == 200 and len(top["top"]) == 3 and top["date"] == "2018-02-01"
    else:
        (said,) = [ln for ln in proc.stderr.splitlines() if "no street-risk forecast for" in ln]
        # The asset's own reason, not Dagster's wrapper of it.
        assert said.startswith("[pipeline] no street-risk forecast for 2018-02-01: ")
        assert "DagsterExecutionStepExecutionError" not in said, said
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(f"{url}/risk?date=2018-02-01", timeout=10)
        assert caught.value.code == 503
