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
