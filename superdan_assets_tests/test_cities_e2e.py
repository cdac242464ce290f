"""Cities by configuration, end to end: ``superdan pipeline --city SPEC --json`` in a subprocess.

- Rochester (the original project's city) from the shared snapshot, once through its ArcGIS
  source (the fake FeatureServer on 127.0.0.1) and once as a ``csv`` spec: the blocking checks
  pass on this valid data, a model is trained and gated, the endpoint answers Rochester
  incidents, the drift report runs.
- A new city that is only a spec file: a CSV in a foreign layout (other column names, UTC
  times in a day-first format, other offence words, no id column, no beats) built from real
  Chicago reports, and a spec written for it. No Python.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from superdan_assets_tests.conftest import SHARED_DATA
from superdan_assets_tests.fakes.arcgis_server import FakeArcGISServer, features_from_snapshot
from superdan_assets_tests.specs import spec_with_source

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

ROCHESTER_SNAPSHOT = SHARED_DATA / "rochester" / "day_2020-04-04.csv"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pipeline(home: Path, spec: Path, *extra: str) -> tuple[dict, subprocess.CompletedProcess]:
    port = _free_port()
    env = {
        **os.environ,
        "SUPERDAN_HOME": str(home / "superdan"),
        "DAGSTER_HOME": str(home / "dagster_home"),
        "SUPERDAN_ENDPOINT_PORT": str(port),
        "WANDB_MODE": "offline",
    }
    for name in ("SUPERDAN_EXPORT_PATH", "SUPERDAN_CITY", "SUPERDAN_CITIES"):
        env.pop(name, None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "superdan_assets.cli",
            "pipeline",
            "--city",
            str(spec),
            "--json",
            *extra,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    lines = [line for line in proc.stdout.strip().splitlines() if line.startswith("{")]
    assert lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads(lines[-1])
    summary["_port"] = port
    return summary, proc


def _stop(home: Path, city: str) -> None:
    from superdan_assets.deploy.local import LocalEndpoint

    LocalEndpoint(home / "superdan" / "endpoint" / city).stop()


def _invoke(port: int, instances: list[dict]) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/invocations",
        data=json.dumps({"instances": instances}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _require_snapshot() -> None:
    if not ROCHESTER_SNAPSHOT.exists():
        pytest.skip(f"Rochester snapshot not found at {ROCHESTER_SNAPSHOT} (../shared/data)")


def _assert_rochester_run(summary: dict, proc) -> None:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert summary["city"] == "rochester"
    assert summary["window"] == ["2020-02-03", "2020-04-01"]
    # The gates decided on ~150 held-out rows: the model must beat the class prior and the
    # original project's protocol on PR-AUC to be deployed at all.
    assert summary["pr_auc"] > summary["seed_protocol_pr_auc"] > summary["prior_pr_auc"] > 0
    assert summary["drift_verdict"] in ("OK", "WARN", "ALERT")
    # The deployment was smoke-tested with, and shows, one of Rochester's own incidents.
    assert '"longitude": -77.' in summary["endpoint"]["example"]
    answer = _invoke(
        summary["_port"],
        [
            {
                "date": "2020-04-02T03:00:00",
                "location_description": "Single Family Home",
                "latitude": 43.16,
                "longitude": -77.61,
            },
            {"date": "2020-04-02T14:00:00", "location_description": "Parking Lot"},
        ],
    )
    assert answer["model_version"] == summary["model_version"]
    assert len(answer["predictions"]) == 2
    assert all(0 <= p["burglary_probability"] <= 1 for p in answer["predictions"])


def test_rochester_through_its_arcgis_source(tmp_path):
    _require_snapshot()
    with FakeArcGISServer(features_from_snapshot(ROCHESTER_SNAPSHOT)) as server:
        spec = spec_with_source(
            "rochester", tmp_path / "rochester.toml", kind="arcgis", url=server.url, page_size=500
        )
        try:
            summary, proc = _pipeline(
                tmp_path, spec, "--start", "2020-02-03", "--end", "2020-04-01"
            )
            _assert_rochester_run(summary, proc)
        finally:
            _stop(tmp_path, "rochester")
    # The blocking checks passed on valid data, with the coordinate box learnt from Rochester
    # itself (the spec has no [bounds]), not Chicago's.
    for asset in ("raw_crimes", "crime_features"):
        check = f"Asset check '{asset}_blocking_quality' on 'rochester/{asset}'"
        assert f"{check} passed" in proc.stderr
        assert f"{check} failed" not in proc.stderr


def test_rochester_as_a_csv_spec(tmp_path):
    _require_snapshot()
    spec = spec_with_source(
        "rochester", tmp_path / "rochester.toml", kind="csv", path=str(ROCHESTER_SNAPSHOT)
    )
    try:
        summary, proc = _pipeline(tmp_path, spec)
        _assert_rochester_run(summary, proc)
    finally:
        _stop(tmp_path, "rochester")


FOREIGN_SPEC = """\
spec_version = 1

[city]
name = "springfield"
timezone = "America/Chicago"
first_day = 2018-01-01

[source]
kind = "csv"
path = "exports"

[columns]
date = "Occurred (UTC)"
block = "Address"
location_description = "Premise"
district = "Precinct"
latitude = "Lat"
longitude = "Lon"

[date]
format = "%d.%m.%Y %H:%M"
timezone = "UTC"

[labels]
column = "Offence"
burglary = ["break and enter"]
theft = ["stealing"]
drop = ["stealing - identity"]
"""


def _foreign_export(chicago_export_dir: Path, export_cache_dir: Path, folder: Path) -> int:
    """Real Chicago reports of 2018-01..04 rewritten in a foreign layout; returns the rows."""
    from superdan_assets.sources.export import ExportSource

    raw = ExportSource(chicago_export_dir, cache_dir=export_cache_dir).fetch(
        pd.Timestamp("2018-01-01"), pd.Timestamp("2018-05-01")
    )
    words = {
        "BURGLARY": "Break and Enter",
        "THEFT": "Stealing",
        "MOTOR VEHICLE THEFT": "Auto Theft",
        "ROBBERY": "Robbery",
    }
    raw = raw[raw["primary_type"].isin(list(words))].copy()
    identity = raw["iucr"].isin(["0840", "0841", "0842", "0843"])
    offence = raw["primary_type"].map(words)
    offence[identity] = "Stealing - Identity"
    utc = (
        raw["date"]
        .dt.tz_localize("America/Chicago", ambiguous="NaT", nonexistent="shift_forward")
        .dt.tz_convert("UTC")
    )
    frame = pd.DataFrame(
        {
            "Occurred (UTC)": utc.dt.strftime("%d.%m.%Y %H:%M"),
            "Offence": offence,
            "Address": raw["block"],
            "Premise": raw["location_description"].str.title(),
            "Precinct": raw["district"],
            "Lat": raw["latitude"],
            "Lon": raw["longitude"],
            "Arrested": raw["arrest"],  # a column the spec does not map: ignored
        }
    ).dropna(subset=["Occurred (UTC)"])
    folder.mkdir(parents=True)
    frame.to_csv(folder / "springfield_2018.csv.gz", index=False)
    return len(frame)


def test_a_new_city_needs_only_a_spec_file(tmp_path, chicago_export_dir, export_cache_dir):
    rows = _foreign_export(chicago_export_dir, export_cache_dir, tmp_path / "exports")
    spec = tmp_path / "springfield.toml"
    spec.write_text(FOREIGN_SPEC)
    check = subprocess.run(
        [sys.executable, "-m", "superdan_assets.cli", "city", "check", str(spec), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert check.returncode == 0, check.stdout[-2000:] + check.stderr[-2000:]
    report = json.loads(check.stdout.strip().splitlines()[-1])
    assert report["date_parse_share"] == 1.0
    assert set(report["label_values"]["burglary"]) == {"Break and Enter"}
    assert "Auto Theft" in report["label_values"]["other"]
    assert "Auto Theft" not in report["label_values"]["theft"]
    try:
        summary, proc = _pipeline(tmp_path, spec, "--holdout-days", "21")
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert summary["city"] == "springfield"
        assert summary["window"][0] == "2018-01-01"
        assert summary["pr_auc"] > summary["seed_protocol_pr_auc"] > summary["prior_pr_auc"]
        answer = _invoke(
            summary["_port"],
            [
                {
                    "date": "2018-05-02T10:00:00",
                    "block": "045XX S MARSHFIELD AVE",
                    "location_description": "Residence",
                    "latitude": 41.81,
                    "longitude": -87.66,
                },
            ],
        )
        assert answer["model_version"] == summary["model_version"]
    finally:
        _stop(tmp_path, "springfield")
    from superdan_assets.storage.blobstore import make_blob_store
    from superdan_assets.storage.partitions import PartitionStore

    store = PartitionStore(
        make_blob_store("local", str(tmp_path / "superdan" / "data" / "springfield"), None, "")
    )
    days = store.list_partitions("raw_crimes")
    assert len(days) >= 119
    stored = sum(len(store.read("raw_crimes", d)) for d in days)
    assert stored == rows
    sample = store.read("raw_crimes", "2018-03-01")
    assert sample["id"].notna().all() and sample["id"].is_unique
    assert sample["beat"].isna().all()
