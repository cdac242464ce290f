"""The image, built and run for real: scripts/container-check.sh under pytest.

It needs root, podman (the script installs it on Debian) and minutes of CPU, so it runs only
when asked: ``SUPERDAN_CONTAINER_CHECK=1``. The script checks everything itself and prints one
JSON object as its last line; this test holds it to that contract.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from superdan_assets_tests.serving.conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "container-check.sh"
EXPECTED_CHECKS = [
    "build",
    "image_size",
    "train",
    "ping",
    "invocations",
    "unsupported_media_type",
    "healthcheck",
    "sigterm_drain",
]


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("SUPERDAN_CONTAINER_CHECK") != "1",
    reason="builds and runs the image with podman (root, minutes): set SUPERDAN_CONTAINER_CHECK=1",
)
def test_image_builds_trains_serves_and_drains():
    done = subprocess.run(
        ["bash", str(SCRIPT)], capture_output=True, text=True, timeout=1800, cwd=REPO_ROOT
    )
    lines = done.stdout.strip().splitlines()
    assert lines, f"container-check printed nothing; stderr:\n{done.stderr[-3000:]}"
    result = json.loads(lines[-1])
    assert done.returncode == 0 and result["ok"], (
        f"container-check failed at {result.get('failed_step')}: {result.get('error')}\n"
        f"{done.stderr[-3000:]}"
    )
    assert result["checks"] == EXPECTED_CHECKS
    assert result["image_mb"] <= result["image_max_mb"] <= 600
