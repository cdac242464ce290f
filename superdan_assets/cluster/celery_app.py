"""The Celery app the cluster's workers run (``celery -A superdan_assets.cluster.celery_app``).

It is dagster_celery's app (same task names, queue and routing as ``CeleryRunLauncher``), with
the broker and result backend read from the environment, so no URL or password is ever
written to a file (``dagster-celery worker start`` writes them into a generated module).

Worker-side settings and why:
- ``broker_connection_retry_on_startup``: a worker started before Redis (or while it restarts)
  keeps trying instead of exiting.
- ``worker_prefetch_multiplier = 1``: a worker takes one run at a time; the queue, not an idle
  worker's prefetch buffer, holds the rest.
- ``task_track_started``: the launcher's health check reads the STARTED state and the worker
  name it carries (``superdan_assets.cluster.launcher``).
"""

from __future__ import annotations

import os

from dagster_celery.config import DEFAULT_CONFIG
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_execute_job_task, create_resume_job_task, create_task

BROKER_ENV = "SUPERDAN_CELERY_BROKER_URL"
BACKEND_ENV = "SUPERDAN_CELERY_BACKEND_URL"
QUEUE = "dagster"


def _required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(
            f"environment variable {name} is not set: the Celery worker needs the broker and "
            "result backend URLs (scripts/cluster.sh sets them; see deploy/cluster/README.md)"
        )
    return value


def worker_config() -> dict:
    """Celery settings shared by the workers (see the module docstring)."""
    return {
        **DEFAULT_CONFIG,
        "broker_connection_retry_on_startup": True,
        "worker_prefetch_multiplier": 1,
        "task_track_started": True,
    }


app = make_app(
    app_args={
        "broker": _required(BROKER_ENV),
        "backend": _required(BACKEND_ENV),
        "include": [],
        "config_source": worker_config(),
        "task_default_queue": QUEUE,
    }
)

execute_plan = create_task(app)
execute_job = create_execute_job_task(app)
resume_job = create_resume_job_task(app)
