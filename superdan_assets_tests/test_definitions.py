"""The code location loads, validates with the Dagster CLI, and wires what the UI shows."""

import importlib.util
import os
import subprocess
import sys

from dagster import AssetKey

import superdan_assets
from superdan_assets_tests.conftest import REPO_ROOT

ASSETS = ("raw_crimes", "crime_features", "crime_model", "model_endpoint", "drift_report")
JOBS = ("ingest_job", "training_job", "train_and_deploy_job", "drift_job", "daily_job")


def _fresh_definitions(monkeypatch, **env):
    """``superdan_assets/definitions.py`` loaded anew under ``env`` (the imported module, which
    other tests share, is left alone)."""
    for name in ("SUPERDAN_CITY", "SUPERDAN_CITIES", "SUPERDAN_EXPORT_PATH"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    path = os.path.join(os.path.dirname(superdan_assets.__file__), "definitions.py")
    spec = importlib.util.spec_from_file_location("superdan_definitions_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.defs


def test_definitions_load_and_resolve():
    from superdan_assets.definitions import defs

    repo = defs.get_repository_def()
    keys = {key.to_user_string() for key in repo.asset_graph.get_all_asset_keys()}
    # The default city alone, every asset under its name.
    assert keys == {f"chicago/{asset}" for asset in ASSETS}
    raw = defs.get_assets_def(AssetKey(["chicago", "raw_crimes"]))
    assert raw.partitions_def.timezone == "America/Chicago"
    assert raw.partitions_def.start.strftime("%Y-%m-%d") == "2012-01-01"
    assert raw.group_names_by_key[AssetKey(["chicago", "raw_crimes"])] == "chicago"


def test_superdan_cities_adds_each_city_with_its_jobs_and_schedule(monkeypatch):
    defs = _fresh_definitions(monkeypatch, SUPERDAN_CITIES="rochester")
    repo = defs.get_repository_def()
    keys = {key.to_user_string() for key in repo.asset_graph.get_all_asset_keys()}
    assert keys == {f"{city}/{asset}" for city in ("chicago", "rochester") for asset in ASSETS}
    calendars = {
        city: (
            defs.get_assets_def(AssetKey([city, "raw_crimes"])).partitions_def.timezone,
            defs.get_assets_def(AssetKey([city, "raw_crimes"])).partitions_def.start
            .strftime("%Y-%m-%d"),
        )
        for city in ("chicago", "rochester")
    }
    assert calendars == {
        "chicago": ("America/Chicago", "2012-01-01"),
        "rochester": ("America/New_York", "2019-01-01"),
    }
    assert {f"{city}__{job}" for city in ("chicago", "rochester") for job in JOBS} <= set(
        repo.job_names
    )
    rochester_daily = repo.get_job("rochester__daily_job")
    assert {k.to_user_string() for k in rochester_daily.asset_layer.executable_asset_keys} == {
        "rochester/raw_crimes", "rochester/crime_features", "rochester/drift_report",
    }
    schedules = {
        s.name: (s.job_name, s.cron_schedule, s.execution_timezone) for s in repo.schedule_defs
    }
    # Each city's morning in its own timezone.
    assert schedules == {
        "chicago__daily_schedule": ("chicago__daily_job", "0 6 * * *", "America/Chicago"),
        "rochester__daily_schedule": ("rochester__daily_job", "0 6 * * *", "America/New_York"),
    }


def test_superdan_city_makes_another_city_the_default(monkeypatch):
    defs = _fresh_definitions(monkeypatch, SUPERDAN_CITY="rochester")
    repo = defs.get_repository_def()
    keys = {key.to_user_string() for key in repo.asset_graph.get_all_asset_keys()}
    assert keys == {f"rochester/{asset}" for asset in ASSETS}
    assert [s.name for s in repo.schedule_defs] == ["rochester__daily_schedule"]


def test_project_applies_openmp_and_telemetry_defaults():
    import superdan_assets.definitions  # noqa: F401

    assert os.environ["OMP_WAIT_POLICY"] == "passive"
    assert os.environ["DAGSTER_DISABLE_TELEMETRY"] == "1"


def test_dagster_cli_validates_the_workspace():
    dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
    proc = subprocess.run(
        [dagster, "definitions", "validate", "-w", str(REPO_ROOT / "workspace.yaml")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dagster_cli_validates_two_cities():
    dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
    proc = subprocess.run(
        [dagster, "definitions", "validate", "-w", str(REPO_ROOT / "workspace.yaml")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "SUPERDAN_CITIES": "rochester"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
