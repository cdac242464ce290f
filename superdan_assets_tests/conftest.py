"""Suite-wide test environment: a fresh, isolated Dagster instance and data folder per run.

Set before anything imports dagster or the definitions, so no test ever touches a user's
``DAGSTER_HOME``, a real W&B account or the network.
"""

import os
import tempfile
from pathlib import Path

import pytest

_RUN_DIR = Path(tempfile.mkdtemp(prefix="superdan-tests-"))
os.environ["DAGSTER_HOME"] = str(_RUN_DIR / "dagster_home")
(_RUN_DIR / "dagster_home").mkdir()
os.environ["DAGSTER_DISABLE_TELEMETRY"] = "1"
os.environ["SUPERDAN_HOME"] = str(_RUN_DIR / "superdan_home")
os.environ["WANDB_MODE"] = "disabled"
os.environ.setdefault("OMP_WAIT_POLICY", "passive")
# Never let a developer's real AWS credentials or region reach a test.
for _name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
    os.environ.pop(_name, None)
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The real data: ``../shared/data`` beside the checkout, or ``SUPERDAN_SHARED_DATA`` (a git
#: worktree elsewhere has no ``../shared`` beside it; without this its real-data tests skip).
SHARED_DATA = Path(os.environ.get("SUPERDAN_SHARED_DATA") or REPO_ROOT.parent / "shared" / "data")
CHICAGO_EXPORT = SHARED_DATA / "chicago"


@pytest.fixture(scope="session")
def chicago_export_dir() -> Path:
    """The real Chicago bulk export, or a skip that says why it is missing."""
    if not (CHICAGO_EXPORT / "crimes_2018.csv.gz").exists():
        pytest.skip(
            f"real Chicago export not found at {CHICAGO_EXPORT} (../shared/data beside the "
            "checkout); these tests need the real data"
        )
    return CHICAGO_EXPORT


@pytest.fixture(scope="session")
def export_cache_dir(tmp_path_factory) -> Path:
    """One parsed-export cache for the whole run, so real-data tests parse each file once."""
    return tmp_path_factory.mktemp("export-cache")
