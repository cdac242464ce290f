"""The code location loads, validates with the Dagster CLI, and wires what the UI shows."""

import importlib.util
import os
import subprocess
import sys

from dagster import AssetKey

import superdan_assets
from superdan_assets_tests.conftest import REPO_ROOT

ASSETS = (
    "raw_crimes",
    "crime_features",
    "crime_model",
    "model_endpoint",
    "drift_report",
    "street_risk",
)
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
            defs.get_assets_def(AssetKey([city, "raw_crimes"])).partitions_def.start.strftime(
                "%Y-%m-%d"
            ),
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
        "rochester/raw_crimes",
        "rochester/crime_features",
        "rochester/drift_report",
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


def test_project_applies_openmp_and_telemetry_defaults(tmp_path):
    """In a fresh interpreter whose environment has neither variable (this suite's conftest
    sets both, so checking ``os.environ`` here could not fail), loading the code location sets
    them before numpy/lightgbm/dagster read them, and a user's explicit value is kept."""
    probe = (
        "import os, sys\n"
        "assert 'numpy' not in sys.modules and 'dagster' not in sys.modules\n"
        "import superdan_assets.definitions\n"
        "print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('DAGSTER_DISABLE_TELEMETRY'))\n"
    )
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OMP_WAIT_POLICY", "DAGSTER_DISABLE_TELEMETRY")
    }
    clean.update(PYTHONPATH=str(REPO_ROOT), DAGSTER_HOME=str(tmp_path))

    def run(**extra: str) -> list[str]:
        done = subprocess.run(
            [sys.executable, "-c", probe],
            env={**clean, **extra},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout.split()[-2:]

    assert run() == ["passive", "1"]
    assert run(OMP_WAIT_POLICY="active", DAGSTER_DISABLE_TELEMETRY="0") == ["active", "0"]


def test_dagster_cli_validates_the_workspace():
    dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
    proc = subprocess.run(
        [dagster, "definitions", "validate", "-w", str(REPO_ROOT / "workspace.yaml")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dagster_cli_validates_two_cities():
    dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
    proc = subprocess.run(
        [dagster, "definitions", "validate", "-w", str(REPO_ROOT / "workspace.yaml")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "SUPERDAN_CITIES": "rochester"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
