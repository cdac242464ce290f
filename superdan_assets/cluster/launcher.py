"""``CeleryRunLauncher`` with a health check that notices a worker that died mid-run.

Why: the daemon's run monitoring asks the launcher whether each started run's worker is still
alive, and fails (then, with ``run_retries``, re-executes) the runs whose worker is gone.
dagster_celery answers from the task's state in the result backend only; a worker killed with
SIGKILL (or a host that lost power) never updates that state, so its run would stay STARTED
forever and its partitions would never be filled. Here a STARTED task's worker (its name is in
the STARTED state's payload, ``task_track_started``) must also answer a Celery ``ping``. It is
declared dead only after ``missed_pings`` consecutive checks without an answer (a busy or
briefly unreachable worker is not a dead one), and its task is then revoked with SIGKILL, so a
worker that was only partitioned away cannot keep running a run that is about to be retried.

Workers must use a pool whose main process answers control messages while a task runs
(``prefork``, as scripts/cluster.sh starts them): a ``--pool=solo`` worker cannot answer a
ping during a run and would be declared dead.

A second gap: a task that *ended* (SUCCESS or FAILURE in Celery) while its run is still STARTED
in Dagster means the run worker could not record the run's end (typically: the storage was
unreachable at that moment). dagster_celery reports SUCCESS, which run monitoring accepts, and
the run would stay STARTED forever; here it is reported as failed, so it is retried.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Self

from dagster import DagsterRun, DagsterRunStatus, Field
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._serdes import ConfigurableClassData
from dagster_celery.launcher import CeleryRunLauncher
from dagster_celery.tags import DAGSTER_CELERY_TASK_ID_TAG


class MonitoredCeleryRunLauncher(CeleryRunLauncher):
    """Launches runs as Celery tasks and reports a run whose worker stopped answering as failed."""

    def __init__(
        self,
        default_queue: str,
        broker: str | None = None,
        backend: str | None = None,
        include: list[str] | None = None,
        config_source: dict | None = None,
        ping_timeout_seconds: float = 2.0,
        missed_pings: int = 2,
        inst_data: ConfigurableClassData | None = None,
    ) -> None:
        if missed_pings < 1:
            raise ValueError(f"missed_pings must be at least 1, got {missed_pings}")
        self.ping_timeout_seconds = float(ping_timeout_seconds)
        self.missed_pings = int(missed_pings)
        self._misses: dict[str, int] = {}
        self._lock = threading.Lock()
        super().__init__(
            default_queue=default_queue,
            broker=broker,
            backend=backend,
            include=include,
            config_source=config_source,
            inst_data=inst_data,
        )

    @classmethod
    def config_type(cls):
        return {
            **super().config_type(),
            "ping_timeout_seconds": Field(
                float,
                is_required=False,
                default_value=2.0,
                description="How long one health check waits for the run's worker to answer.",
            ),
            "missed_pings": Field(
                int,
                is_required=False,
                default_value=2,
                description="Consecutive unanswered health checks before a worker is dead.",
            ),
        }

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]
    ) -> Self:
        return cls(inst_data=inst_data, **config_value)

    def worker_answers(self, hostname: str) -> bool:
        """True when the Celery worker ``hostname`` answers a ping within the timeout."""
        replies = self.celery.control.ping(
            destination=[hostname], timeout=self.ping_timeout_seconds
        )
        return any(hostname in reply for reply in replies or [])

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        task_id = run.tags.get(DAGSTER_CELERY_TASK_ID_TAG)
        if not task_id:
            return CheckRunHealthResult(
                WorkerStatus.FAILED,
                f"run {run.run_id} has no {DAGSTER_CELERY_TASK_ID_TAG} tag: it was never handed "
                "to Celery",
            )
        result = self.celery.AsyncResult(task_id)
        state = result.state
        if state in ("SUCCESS", "FAILURE"):
            self._forget(run.run_id)
            if self._still_started(run.run_id):
                return CheckRunHealthResult(
                    WorkerStatus.FAILED,
                    f"Celery task {task_id} ended ({state}) but run {run.run_id} never recorded "
                    "its end (was the Dagster storage unreachable?)",
                )
            if state == "SUCCESS":
                return CheckRunHealthResult(WorkerStatus.SUCCESS)
            return CheckRunHealthResult(WorkerStatus.FAILED, "Celery task failed.")
        if state != "STARTED":
            # PENDING/RETRY/REVOKED while Dagster thinks the run started: as dagster_celery.
            return CheckRunHealthResult(WorkerStatus.UNKNOWN, f"Unknown task status: {state}")
        info = result.info if isinstance(result.info, dict) else {}
        hostname = info.get("hostname")
        if not hostname or self.worker_answers(hostname):
            self._forget(run.run_id)
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        with self._lock:
            misses = self._misses.get(run.run_id, 0) + 1
            self._misses[run.run_id] = misses
        if misses < self.missed_pings:
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        self._forget(run.run_id)
        # If the worker is alive but unreachable, make sure it stops this run before the retry.
        self.celery.control.revoke(task_id, terminate=True, signal="SIGKILL")
        return CheckRunHealthResult(
            WorkerStatus.FAILED,
            f"Celery worker {hostname} (pid {info.get('pid')}) running task {task_id} did not "
            f"answer {misses} consecutive pings ({self.ping_timeout_seconds:g} s each): presumed "
            "dead; its task was revoked",
        )

    def _still_started(self, run_id: str) -> bool:
        """Whether the instance still has the run as STARTED (read again: the run may have
        finished between the monitor reading it and the task state being read)."""
        current = self._instance.get_run_by_id(run_id)
        return current is not None and current.status == DagsterRunStatus.STARTED

    def _forget(self, run_id: str) -> None:
        with self._lock:
            self._misses.pop(run_id, None)
