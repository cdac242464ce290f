"""The production configuration and cluster.sh's refusals, checked without starting services."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from superdan_assets_tests.cluster.conftest import REPO_ROOT, SCRIPT

DEPLOY = REPO_ROOT / "deploy" / "cluster"


def _env_leaves(node, path=()):
    """(path, value) of every leaf that is not an ``{env: NAME}`` reference."""
    if isinstance(node, dict):
        if set(node) == {"env"}:
            return []
        return [leaf for k, v in node.items() for leaf in _env_leaves(v, (*path, k))]
    if isinstance(node, list):
        return [leaf for i, v in enumerate(node) for leaf in _env_leaves(v, (*path, i))]
    return [(path, node)]


def test_every_credential_host_and_url_comes_from_the_environment():
    config = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    literal = dict(_env_leaves(config))
    pg = config["storage"]["postgres"]["postgres_db"]
    for field in ("username", "password", "hostname", "port", "db_name"):
        assert set(pg[field]) == {"env"}, f"postgres_db.{field} must be an env: reference"
    assert pg["scheme"] == "postgresql+psycopg2"
    launcher = config["run_launcher"]["config"]
    assert set(launcher["broker"]) == {"env"} and set(launcher["backend"]) == {"env"}
    # Nothing that looks like a URL or a secret is written literally anywhere.
    for path, value in literal.items():
        text = str(value)
        assert "://" not in text and "password" not in text.lower(), (path, value)
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    server = workspace["load_from"][0]["grpc_server"]
    assert set(server["host"]) == {"env"} and set(server["port"]) == {"env"}


def test_instance_config_is_valid_and_wires_queue_launcher_monitoring_and_retries(
    tmp_path, monkeypatch
):
    """Dagster itself loads the file: Postgres storage, queue with a backfill limit, the
    monitored Celery launcher, monitoring and retries (no server needs to run for this)."""
    from dagster._core.instance.config import dagster_instance_config

    (tmp_path / "dagster.yaml").write_text((DEPLOY / "dagster.yaml").read_text())
    for name, value in {
        "SUPERDAN_PG_USER": "u",
        "SUPERDAN_PG_PASSWORD": "p",
        "SUPERDAN_PG_HOST": "127.0.0.1",
        "SUPERDAN_PG_PORT": "5432",
        "SUPERDAN_PG_DB": "d",
        "SUPERDAN_MAX_CONCURRENT_RUNS": "4",
        "SUPERDAN_CELERY_BROKER_URL": "redis://127.0.0.1:1/0",
        "SUPERDAN_CELERY_BACKEND_URL": "redis://127.0.0.1:1/1",
    }.items():
        monkeypatch.setenv(name, value)
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["run_launcher"]["class"] == "MonitoredCeleryRunLauncher"
    queue = config["run_coordinator"]["config"]
    assert {"key": "dagster/backfill", "limit": 3} in [
        {k: v for k, v in limit.items() if k in ("key", "limit")}
        for limit in queue["tag_concurrency_limits"]
    ]
    assert config["run_monitoring"]["enabled"] is True
    assert config["run_retries"] == {"enabled": True, "max_retries": 2}
    from superdan_assets.cluster.launcher import MonitoredCeleryRunLauncher

    launcher = MonitoredCeleryRunLauncher.from_config_value(
        None,
        {
            "broker": "redis://127.0.0.1:1/0",
            "backend": "redis://127.0.0.1:1/1",
            "default_queue": "dagster",
            "missed_pings": 3,
        },
    )
    assert launcher.missed_pings == 3 and launcher.supports_check_run_worker_health
    with pytest.raises(ValueError, match="missed_pings"):
        MonitoredCeleryRunLauncher(default_queue="dagster", missed_pings=0)


def _script(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SUPERDAN_")}
    base.update(
        SUPERDAN_CLUSTER_HOME=str(tmp_path / "cluster"),
        SUPERDAN_VENV=str(Path(sys.executable).parent.parent),
        **env,
    )
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        env=base,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_up_refuses_without_a_password_and_says_which_variable(tmp_path):
    done = _script(tmp_path, "up")
    assert done.returncode != 0
    assert "SUPERDAN_PG_PASSWORD is not set" in done.stderr
    assert not (tmp_path / "cluster" / "run").exists(), "nothing may start without a password"


def test_status_of_a_cluster_that_never_ran_lists_every_service_as_stopped(tmp_path):
    done = _script(tmp_path, "status", SUPERDAN_PG_PORT="15999")
    assert done.returncode != 0  # not everything runs
    for service in ("postgres", "redis", "code_server", "daemon", "webserver"):
        assert f"{service} " in done.stdout and "running" not in done.stdout
    assert "127.0.0.1:15999" in done.stdout


def test_env_prints_no_password_and_points_dagster_home_at_the_cluster(tmp_path):
    done = _script(tmp_path, "env", SUPERDAN_PG_PASSWORD="do-not-print-me")
    assert done.returncode == 0
    assert "do-not-print-me" not in done.stdout and "PASSWORD" not in done.stdout
    assert f"export DAGSTER_HOME={tmp_path / 'cluster' / 'dagster_home'}" in done.stdout


def test_bad_settings_are_refused_with_their_name(tmp_path):
    done = _script(tmp_path, "status", SUPERDAN_CLUSTER_WORKERS="two")
    assert done.returncode != 0 and "SUPERDAN_CLUSTER_WORKERS=two" in done.stderr
    done = _script(tmp_path, "frobnicate")
    assert done.returncode != 0 and "usage" in done.stderr


def test_cluster_code_location_is_the_project_with_one_process_per_run():
    from superdan_assets.cluster.definitions import defs as cluster_defs
    from superdan_assets.definitions import defs as project_defs

    assert cluster_defs.executor.name == "in_process"
    project = project_defs.get_repository_def()
    cluster = cluster_defs.get_repository_def()
    assert set(cluster.job_names) == set(project.job_names)
    assert {s.name for s in cluster.schedule_defs} == {s.name for s in project.schedule_defs}
    assert {s.name for s in cluster.sensor_defs} == {s.name for s in project.sensor_defs}
    assert (
        cluster_defs.resolve_asset_graph().get_all_asset_keys()
        == project_defs.resolve_asset_graph().get_all_asset_keys()
    )
