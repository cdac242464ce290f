"""Benchmarks refuse to run without the real data, saying what is missing.

Why: a benchmark that quietly fell back to generated incidents or a stand-in model printed
figures that looked like the real ones; now each stops before measuring anything, with a
non-zero exit and a message naming the missing export.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from superdan_assets_tests.conftest import REPO_ROOT

#: script -> the option naming the export folder.
SCRIPTS = {
    "drift.py": "--export-path",
    "ingest.py": "--export-path",
    "lifecycle.py": "--data",
    "load.py": "--export-path",
    "model_quality.py": "--data",
    "quality.py": "--export-path",
    "scale.py": "--export-path",
    "select_model.py": "--data",
    "serving.py": "--export-path",
    "street_risk.py": "--data",
    "street_risk_ceiling.py": "--data",
}


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_a_benchmark_without_the_export_fails_loudly(script, tmp_path):
    missing = tmp_path / "no-export-here"
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / script), SCRIPTS[script], str(missing)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0, done.stdout[-2000:]
    assert str(missing) in done.stderr, done.stderr[-2000:]
    last = (done.stdout.strip().splitlines() or [""])[-1]
    with pytest.raises(ValueError):
        json.loads(last)  # no result line that could be mistaken for a measurement
