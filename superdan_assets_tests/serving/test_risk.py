"""GET/POST /risk on the real server: street-risk forecasts served beside the classifier."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import requests

from superdan_assets.ml.street_risk.artifact import save_street_risk
from superdan_assets.ml.street_risk.forecast import forecast_day
from superdan_assets.ml.street_risk.training import TrainingConfig, train_street_risk
from superdan_assets.storage.partitions import frame_to_parquet_bytes
from superdan_assets_tests.ml.street_risk_data import generate_rows
from superdan_assets_tests.serving.conftest import free_port, server_env, start_server, stop_server
from superdan_assets_tests.serving.fixture_model import write_fixture_model

DAYS = ("2016-05-10", "2016-05-11")


@pytest.fixture(scope="module")
def risk_model_dir(tmp_path_factory) -> tuple[Path, dict[str, pd.DataFrame]]:
    """A classifier artifact with a street-risk directory inside it (two days of forecasts)."""
    root = tmp_path_factory.mktemp("risk")
    model_dir = write_fixture_model(root / "model")
    rows = generate_rows(start="2016-01-01", days=135, n_blocks=144, seed=9)
    config = TrainingConfig(
        train_years=0.3,
        train_step=7,
        target_days=7,
        zero_fraction=0.5,
        params={"n_estimators": 20, "num_leaves": 7, "min_child_samples": 10},
    )
    model = train_street_risk(rows, "2016-05-01", config, n_jobs=1)
    risk_dir = model_dir / "street_risk"
    save_street_risk(model, risk_dir, "2016-05-01", {}, True, "test")
    forecasts = {}
    (risk_dir / "forecasts").mkdir()
    for day in DAYS:
        forecasts[day] = forecast_day(model, rows, day)
        (risk_dir / "forecasts" / f"{day}.parquet").write_bytes(
            frame_to_parquet_bytes(forecasts[day])
        )
    return model_dir, forecasts


@pytest.fixture(scope="module")
def risk_server(risk_model_dir, tmp_path_factory):
    model_dir, _ = risk_model_dir
    port = free_port()
    log = tmp_path_factory.mktemp("risk-log") / "server.log"
    running = start_server(
        ["serve", "--model-dir", str(model_dir), "--port", str(port), "--workers", "1"],
        port,
        log,
        server_env(SAGEMAKER_MAX_PAYLOAD_IN_MB="0.05"),
    )
    yield running
    stop_server(running)


def test_get_top_places_of_a_day(risk_server, risk_model_dir):
    _, forecasts = risk_model_dir
    answer = requests.get(
        f"{risk_server.url}/risk", params={"date": DAYS[0], "type": "theft", "top": 5}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    expected = forecasts[DAYS[0]].query("crime_type == 'theft'").nsmallest(5, "rank")
    assert [p["place"] for p in body["top"]] == list(expected["unit"])
    assert [p["rank"] for p in body["top"]] == [1, 2, 3, 4, 5]
    assert body["top"][0]["probability"] == pytest.approx(expected["probability"].iloc[0])
    assert body["model_version"].startswith("sr-20160501-")
    assert body["places"] == (forecasts[DAYS[0]]["crime_type"] == "theft").sum()


def test_without_a_date_the_latest_forecast_is_served(risk_server):
    body = requests.get(f"{risk_server.url}/risk", timeout=10).json()
    assert body["date"] == DAYS[-1] and body["type"] == "burglary" and len(body["top"]) == 20


def test_points_get_their_block_risk(risk_server, risk_model_dir):
    _, forecasts = risk_model_dir
    burglary = forecasts[DAYS[1]].query("crime_type == 'burglary'")
    target = burglary.iloc[3]
    points = [
        {"latitude": target["latitude"] + 0.0003, "longitude": target["longitude"]},  # ~33 m off
        {"lat": 41.0, "lon": -87.0},  # far from every block
    ]
    answer = requests.post(
        f"{risk_server.url}/risk", json={"date": DAYS[1], "points": points}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    near, far = answer.json()["risks"]
    assert near["place"] == target["unit"]
    assert near["distance_m"] == pytest.approx(33.4, abs=3)
    assert near["burglary"]["probability"] == pytest.approx(target["probability"])
    assert near["burglary"]["rank"] == target["rank"]
    assert set(near) >= {"theft", "burglary"}
    assert far["place"] is None and "250 m" in far["reason"]


@pytest.mark.parametrize(
    ("params", "status", "words"),
    [
        ({"type": "arson"}, 400, "type"),
        ({"top": "0"}, 400, "top"),
        ({"top": "abc"}, 400, "top"),
        ({"top": "5000"}, 400, "top"),
        ({"date": "2018-13-45"}, 400, "YYYY-MM-DD"),
        ({"date": "yesterday"}, 400, "YYYY-MM-DD"),
        ({"date": "2016-05-12"}, 404, "2016-05-10..2016-05-11"),
        ({"when": "today"}, 400, "unknown query parameter"),
    ],
)
def test_get_client_errors_are_4xx_with_a_reason(risk_server, params, status, words):
    answer = requests.get(f"{risk_server.url}/risk", params=params, timeout=10)
    assert answer.status_code == status
    assert words in answer.json()["error"]


@pytest.mark.parametrize(
    ("body", "headers", "status", "words"),
    [
        (b"{not json", {"Content-Type": "application/json"}, 400, "not valid UTF-8 JSON"),
        (b"[]", {"Content-Type": "application/json"}, 400, "points"),
        (
            b'{"points": [{"latitude": "abc", "longitude": 1}]}',
            {"Content-Type": "application/json"},
            400,
            "invalid point",
        ),
        (
            b'{"points": [{"latitude": 91, "longitude": 1}]}',
            {"Content-Type": "application/json"},
            400,
            "invalid point",
        ),
        (
            b'{"date": 5, "points": [{"latitude": 41, "longitude": -87}]}',
            {"Content-Type": "application/json"},
            400,
            "date",
        ),
        (b"latitude,longitude\n41,-87\n", {"Content-Type": "text/csv"}, 415, "application/json"),
        (
            b'[{"latitude": 41, "longitude": -87}]',
            {"Content-Type": "application/json", "Accept": "text/csv"},
            406,
            "application/json",
        ),
        (
            b"[" + b'{"latitude": 41.8, "longitude": -87.7},' * 2000 + b"{}]",
            {"Content-Type": "application/json"},
            413,
            "limit",
        ),
    ],
)
def test_post_client_errors_are_4xx_with_a_reason(risk_server, body, headers, status, words):
    answer = requests.post(f"{risk_server.url}/risk", data=body, headers=headers, timeout=10)
    assert answer.status_code == status, answer.text
    assert words in answer.json()["error"]


def test_invalid_point_errors_name_the_row(risk_server):
    points = [{"latitude": 41.85, "longitude": -87.7}, {"latitude": 41.85}]
    answer = requests.post(f"{risk_server.url}/risk", json={"points": points}, timeout=10)
    assert answer.status_code == 400
    assert answer.json()["details"] == [
        {"row": 1, "field": "longitude", "message": "missing or not a number"}
    ]


def test_a_tampered_risk_artifact_is_refused_and_the_classifier_still_serves(
    risk_model_dir, tmp_path
):
    model_dir, _ = risk_model_dir
    tampered = tmp_path / "street_risk"
    shutil.copytree(model_dir / "street_risk", tampered)
    with (tampered / "model.joblib").open("ab") as fh:
        fh.write(b"x")
    port = free_port()
    running = start_server(
        ["serve", "--model-dir", str(model_dir), "--port", str(port), "--workers", "1"],
        port,
        tmp_path / "server.log",
        server_env(SUPERDAN_RISK_DIR=str(tampered)),
    )
    try:
        answer = requests.get(f"{running.url}/risk", timeout=10)
        assert answer.status_code == 503
        assert "sha256" in answer.json()["error"]
        assert requests.get(f"{running.url}/ping", timeout=10).status_code == 200
    finally:
        stop_server(running)


def test_the_storage_folder_of_the_asset_is_served_as_is(risk_model_dir, tmp_path):
    """Local storage layout: models/<version>/ + models/production.json + forecasts/."""
    import json

    from superdan_assets.serving.risk import RiskService

    model_dir, _ = risk_model_dir
    source = model_dir / "street_risk"
    version = json.loads((source / "model.json").read_text())["version"]
    root = tmp_path / "street_risk"
    (root / "models").mkdir(parents=True)
    shutil.copytree(source, root / "models" / version, ignore=shutil.ignore_patterns("forecasts"))
    shutil.copytree(source / "forecasts", root / "forecasts")
    (root / "models" / "production.json").write_text(json.dumps({"version": version}))
    service = RiskService(root)
    assert service.version == version
    assert service.top(b"type=theft&top=3")["date"] == DAYS[-1]
    (root / "models" / "production.json").write_text(json.dumps({"version": "../x"}))
    with pytest.raises(Exception, match="invalid version"):
        RiskService(root)


def test_a_bundle_pointing_at_live_forecasts_serves_a_day_written_after_it_started(
    risk_model_dir, tmp_path
):
    """The real server on a bundle with ``live.json``: the next morning's forecast is served
    as soon as it is written, named for the model that made it; a day removed is a 404."""
    import json

    from superdan_assets.serving.risk import LIVE_POINTER, MODEL_VERSION_METADATA

    model_dir, forecasts = risk_model_dir
    bundle = tmp_path / "bundle"
    shutil.copytree(model_dir, bundle)
    live = tmp_path / "storage" / "street_risk" / "forecasts"
    shutil.copytree(model_dir / "street_risk" / "forecasts", live)
    (bundle / "street_risk" / LIVE_POINTER).write_text(json.dumps({"forecasts": str(live)}))
    port = free_port()
    running = start_server(
        ["serve", "--model-dir", str(bundle), "--port", str(port), "--workers", "1"],
        port,
        tmp_path / "server.log",
        server_env(),
    )
    try:
        latest = requests.get(f"{running.url}/risk", timeout=10).json()
        assert latest["date"] == DAYS[-1]
        later = forecasts[DAYS[-1]].assign(day=pd.Timestamp("2016-05-12"))
        (live / "2016-05-12.parquet").write_bytes(
            frame_to_parquet_bytes(later, {MODEL_VERSION_METADATA: "sr-next-morning"})
        )
        answer = requests.get(f"{running.url}/risk", params={"top": 3}, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["date"] == "2016-05-12"
        assert answer.json()["model_version"] == "sr-next-morning"
        # The asset run again for that day: the new file is served, not the cached one.
        (live / "2016-05-12.parquet").write_bytes(
            frame_to_parquet_bytes(later, {MODEL_VERSION_METADATA: "sr-rerun"})
        )
        again = requests.get(f"{running.url}/risk", params={"date": "2016-05-12"}, timeout=10)
        assert again.json()["model_version"] == "sr-rerun"
        (live / "2016-05-12.parquet").unlink()
        gone = requests.get(f"{running.url}/risk", params={"date": "2016-05-12"}, timeout=10)
        assert gone.status_code == 404 and "available" in gone.json()["error"]
    finally:
        stop_server(running)
