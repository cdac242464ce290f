"""The Dagster UI (the real webserver) loads the code location and shows what users look at."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from superdan_assets_tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow

QUERY = """{
  workspaceOrError { ... on Workspace { locationEntries { name
    locationOrLoadError { __typename ... on PythonError { message } } } } }
  assetNodes { assetKey { path } groupName hasAssetChecks isPartitioned }
  repositoriesOrError { ... on RepositoryConnection { nodes {
    schedules { name executionTimezone scheduleState { status } }
    sensors { name sensorState { status } } } } }
}"""


def _graphql(port: int) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": QUERY}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["data"]


@pytest.fixture
def webserver(tmp_path):
    from superdan_assets.instance.home import ensure_embedded_home
    from superdan_assets_tests.serving.conftest import free_port

    port = free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "SUPERDAN_HOME": str(tmp_path / "superdan"),
        "SUPERDAN_CITIES": "rochester",
    }
    # the instance scripts/ui.sh and superdan pipeline give it (batched SQLite event writes)
    ensure_embedded_home(tmp_path / "dagster_home")
    webserver_bin = os.path.join(os.path.dirname(sys.executable), "dagster-webserver")
    proc = subprocess.Popen(
        [
            webserver_bin,
            "-w",
            str(REPO_ROOT / "workspace.yaml"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                data = _graphql(port)
                if data["workspaceOrError"]["locationEntries"][0]["locationOrLoadError"]:
                    break
            except (OSError, KeyError, IndexError, TypeError):
                pass
            assert proc.poll() is None, "dagster-webserver exited"
            assert time.monotonic() < deadline, "dagster-webserver did not come up in 120 s"
            time.sleep(1)
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_ui_shows_assets_checks_schedule_and_sensors(webserver):
    data = _graphql(webserver)
    location = data["workspaceOrError"]["locationEntries"][0]
    assert location["name"] == "superdan"
    assert location["locationOrLoadError"]["__typename"] == "RepositoryLocation"
    nodes = {"/".join(n["assetKey"]["path"]): n for n in data["assetNodes"]}
    assets = (
        "raw_crimes",
        "crime_features",
        "crime_model",
        "model_endpoint",
        "drift_report",
        "street_risk",
    )
    cities = ("chicago", "rochester")
    assert set(nodes) == {f"{city}/{asset}" for city in cities for asset in assets}
    for city in cities:
        # Everything of a city is grouped under its name.
        assert {nodes[f"{city}/{a}"]["groupName"] for a in assets} == {city}
        assert all(
            nodes[f"{city}/{a}"]["hasAssetChecks"]
            for a in ("raw_crimes", "crime_features", "crime_model", "drift_report", "street_risk")
        )
        assert nodes[f"{city}/raw_crimes"]["isPartitioned"]
        assert not nodes[f"{city}/crime_model"]["isPartitioned"]
    repo = data["repositoriesOrError"]["nodes"][0]
    assert sorted(
        (s["name"], s["executionTimezone"], s["scheduleState"]["status"]) for s in repo["schedules"]
    ) == [
        ("chicago__daily_schedule", "America/Chicago", "RUNNING"),
        ("rochester__daily_schedule", "America/New_York", "RUNNING"),
    ]
    assert repo["sensors"] and all(s["sensorState"]["status"] == "RUNNING" for s in repo["sensors"])
