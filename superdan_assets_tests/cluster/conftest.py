"""One real cluster for the tests in this folder, started and stopped through scripts/cluster.sh.

Everything is real: PostgreSQL (initdb in a temporary folder), Redis, the gRPC code server, the
Dagster daemon, two Celery workers and the webserver, on random free ports of 127.0.0.1. The
source is a small bulk-export folder generated here (no network): 2018-01-01..2018-03-31 and
the last days before today (Chicago time), so the daily schedule's tick has data to fetch.

Tests find assets by the last component of their key and the schedule by a name fragment
(helpers below), so they keep working when keys gain a city prefix (``["chicago",
"raw_crimes"]``).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from superdan_assets_tests.datagen import export_rows, write_export

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "cluster.sh"
CHICAGO = ZoneInfo("America/Chicago")
ROWS_PER_DAY = 6
HISTORY_START, HISTORY_DAYS = "2018-01-01", 90
RECENT_DAYS = 6
#: Days the daily schedule re-fetches in these tests (kept small: every day costs checks).
REFETCH_DAYS = 2
#: Connection settings the test process needs to open the cluster's instance (dagster.yaml
#: reads them with ``env:``); they are set only while the cluster fixture is alive.
INSTANCE_ENV = (
    "SUPERDAN_PG_HOST",
    "SUPERDAN_PG_PORT",
    "SUPERDAN_PG_USER",
    "SUPERDAN_PG_DB",
    "SUPERDAN_PG_PASSWORD",
    "SUPERDAN_CELERY_BROKER_URL",
    "SUPERDAN_CELERY_BACKEND_URL",
    "SUPERDAN_CODE_SERVER_HOST",
    "SUPERDAN_CODE_SERVER_PORT",
    "SUPERDAN_MAX_CONCURRENT_RUNS",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(what: str, condition: Callable[[], object], timeout: float, poll: float = 1.0):
    """Return ``condition()``'s first truthy value; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(poll)


@dataclass
class Cluster:
    """A running cluster and what the tests need to drive and inspect it."""

    home: Path
    env: dict[str, str]
    ui_url: str
    export_rows: list[dict[str, str]] = field(default_factory=list)
    _instance: object = None

    # -- the script ------------------------------------------------------------------------
    def script(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        """Run ``scripts/cluster.sh ARGS``; fail with its output (and log tails) if it fails."""
        done = subprocess.run(
            ["bash", str(SCRIPT), *args],
            env=self.env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0 and args[0] != "status":
            pytest.fail(
                f"scripts/cluster.sh {' '.join(args)} exited {done.returncode}\n"
                f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}\n{self.log_tails()}"
            )
        return done

    def log_tails(self, lines: int = 30) -> str:
        logs = self.home / "logs"
        parts = []
        for log in sorted(logs.glob("*.log")) if logs.exists() else []:
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {log.name} (last {len(tail)} lines)\n" + "\n".join(tail))
        return "\n".join(parts)

    # -- processes ------------------------------------------------------------------------
    def pid(self, service: str) -> int | None:
        """The pid ``up`` recorded for ``service`` if that process is alive."""
        pidfile = self.home / "run" / f"{service}.pid"
        if not pidfile.exists():
            return None
        pid = int(pidfile.read_text().strip())
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def kill(self, service: str, sig: int, timeout: float = 60, group: bool = True) -> int:
        """Send ``sig`` to the service's process group (``group``) or only its recorded
        process, and wait until that process exits."""
        pid = self.pid(service)
        assert pid, f"{service} is not running:\n{self.script('status').stdout}"
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
        wait_until(f"{service} (pid {pid}) to exit", lambda: not _alive(pid), timeout, 0.2)
        return pid

    # -- the instance (Postgres) and lookups ------------------------------------------------
    @property
    def instance(self):
        if self._instance is None:
            from dagster import DagsterInstance
            from dagster._core.instance.ref import InstanceRef

            self._instance = DagsterInstance.from_ref(
                InstanceRef.from_dir(str(self.home / "dagster_home"))
            )
        return self._instance

    @property
    def data_dir(self) -> Path:
        return Path(self.env["SUPERDAN_HOME"]) / "data"

    def asset_key(self, name: str):
        """The asset whose key ends with ``name`` (``raw_crimes`` or ``chicago/raw_crimes``)."""
        from dagster import AssetKey

        from superdan_assets.cluster.client import find_asset_key

        return AssetKey(find_asset_key(self.ui_url, name))

    def expected_ids(self, day: str) -> set[int]:
        """Ids the generated export has for the local day ``day`` (YYYY-MM-DD)."""
        wanted = datetime.fromisoformat(day).strftime("%m/%d/%Y")
        return {int(r["ID"]) for r in self.export_rows if r["Date"].startswith(wanted)}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of ours counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def find_schedule(repository, fragment: str = "daily"):
    """The repository's schedule whose name contains ``fragment`` (the Chicago one if several
    cities have one)."""
    found = [s for s in repository.get_schedules() if fragment in s.name]
    if len(found) > 1:
        found = [s for s in found if "chicago" in s.name] or found
    assert len(found) == 1, (
        f"expected one schedule named *{fragment}*, found {[s.name for s in found]}"
    )
    return found[0]


def _generated_export(folder: Path) -> list[dict[str, str]]:
    history = export_rows(HISTORY_START, HISTORY_DAYS, ROWS_PER_DAY, seed=11)
    # One report a day without coordinates: more than usual (a WARN check the alert sensor must
    # report, in a range validated in one pass too), far from the share that blocks a day.
    for row in history[::ROWS_PER_DAY]:
        row["Latitude"] = row["Longitude"] = ""
        row["X Coordinate"] = row["Y Coordinate"] = ""
    today = datetime.now(CHICAGO).date()
    recent = export_rows(
        (today - timedelta(days=RECENT_DAYS)).isoformat(), RECENT_DAYS, ROWS_PER_DAY, seed=12
    )
    for row in recent:  # export_rows numbers every call from the same first id
        row["ID"] = str(int(row["ID"]) + 5_000_000)
    write_export(folder / "crimes_2018.csv", history)
    write_export(folder / f"crimes_{today.year}.csv", recent)
    return history + recent


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    # Not pytest's tmp_path: its parents are private to root and PostgreSQL runs as `postgres`.
    home = Path(tempfile.mkdtemp(prefix="superdan-cluster-"))
    home.chmod(0o755)
    export_dir = home / "export"
    rows = _generated_export(export_dir)
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env.update(
        SUPERDAN_CLUSTER_HOME=str(home),
        SUPERDAN_VENV=str(Path(sys.executable).parent.parent),
        SUPERDAN_CLUSTER_WORKERS="2",
        SUPERDAN_PG_PORT=str(free_port()),
        SUPERDAN_REDIS_PORT=str(free_port()),
        SUPERDAN_CODE_SERVER_PORT=str(free_port()),
        SUPERDAN_CLUSTER_UI_PORT=str(free_port()),
        SUPERDAN_PG_PASSWORD=secrets.token_urlsafe(18),
        SUPERDAN_CLUSTER_TIMEOUT="300",
        SUPERDAN_HOME=str(home / "superdan_home"),
        SUPERDAN_SOURCE="export",
        SUPERDAN_EXPORT_PATH=str(export_dir),
        SUPERDAN_REFETCH_DAYS=str(REFETCH_DAYS),
        WANDB_MODE="disabled",
        PYTHONPATH=str(REPO_ROOT),
        DAGSTER_DISABLE_TELEMETRY="1",
        OMP_WAIT_POLICY="passive",
    )
    handle = Cluster(
        home=home,
        env=env,
        ui_url=f"http://127.0.0.1:{env['SUPERDAN_CLUSTER_UI_PORT']}",
        export_rows=rows,
    )
    saved = {name: os.environ.get(name) for name in INSTANCE_ENV}
    try:
        handle.script("up", timeout=900)
        for line in handle.script("env").stdout.splitlines():
            name, _, value = line.removeprefix("export ").partition("=")
            if name in INSTANCE_ENV:
                env[name] = value
        for name in INSTANCE_ENV:
            os.environ[name] = env[name]
        yield handle
    finally:
        if handle._instance is not None:
            handle._instance.dispose()
        subprocess.run(["bash", str(SCRIPT), "down"], env=env, cwd=REPO_ROOT, timeout=300)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(home, ignore_errors=True)


# -- shared steps of the tests ---------------------------------------------------------------


def days(start: str, count: int) -> list[str]:
    first = date.fromisoformat(start)
    return [(first + timedelta(days=i)).isoformat() for i in range(count)]


def backfill_runs(instance, backfill_id: str):
    from dagster import RunsFilter

    return instance.get_runs(RunsFilter(tags={"dagster/backfill": backfill_id}))


def stored_ids(cluster: Cluster, asset_key, day: str) -> list[int]:
    """The ids stored for one day of an asset (its daily Parquet file)."""
    import pandas as pd

    path = cluster.data_dir.joinpath(*asset_key.path) / f"{day}.parquet"
    assert path.exists(), (
        f"partition {day} of {asset_key.to_user_string()} was never written ({path})"
    )
    return [int(i) for i in pd.read_parquet(path, columns=["id"])["id"]]


def celery_state(cluster: Cluster, task_id: str):
    """(state, info) of a Celery task in the cluster's result backend."""
    from celery import Celery

    app = Celery(backend=cluster.env["SUPERDAN_CELERY_BACKEND_URL"])
    result = app.AsyncResult(task_id)
    return result.state, result.info


def read_alerts(cluster: Cluster) -> list[dict]:
    path = Path(cluster.env["SUPERDAN_HOME"]) / "alerts" / "alerts.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
