"""The code location loads, validates with the Dagster CLI, and wires what the UI shows."""

import os
import subprocess
import sys

from dagster import AssetKey

from superdan_assets_tests.conftest import REPO_ROOT


def test_definitions_load_and_resolve():
    from superdan_assets.definitions import defs

    repo = defs.get_repository_def()
    keys = {key.to_user_string() for key in repo.asset_graph.get_all_asset_keys()}
    assert "raw_crimes" in keys
    raw = defs.get_assets_def(AssetKey("raw_crimes"))
    assert raw.partitions_def.timezone == "America/Chicago"
    assert raw.partitions_def.start.strftime("%Y-%m-%d") == "2012-01-01"


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
            [sys.executable, "-c", probe], env={**clean, **extra}, cwd=tmp_path,
            capture_output=True, text=True, timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout.split()[-2:]

    assert run() == ["passive", "1"]
    assert run(OMP_WAIT_POLICY="active", DAGSTER_DISABLE_TELEMETRY="0") == ["active", "0"]


def test_dagster_cli_validates_the_workspace():
    dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
    proc = subprocess.run(
        [dagster, "definitions", "validate", "-w", str(REPO_ROOT / "workspace.yaml")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
