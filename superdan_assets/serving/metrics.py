"""Prometheus metrics shared by all worker processes, rendered by whichever worker is asked.

Why shared memory: a scrape of ``/metrics`` lands on one worker, but the numbers must cover
them all. The master maps one anonymous shared block before forking; each worker owns one row
of fixed slots (counters and histogram buckets as float64) and is its only writer, so an update
is a plain memory write with no lock and no file I/O on the request path. A worker that dies is
replaced in the same row and keeps counting from where it stopped, so counters never go down.
The model version comes from the worker that renders (every worker loads the same artifact).
"""

from __future__ import annotations

import mmap
import time
from bisect import bisect_left

#: Endpoints counted separately; any other path is counted as ``other``.
ENDPOINTS: tuple[str, ...] = ("ping", "invocations", "metrics", "other")
#: Statuses the server answers with; anything else is counted as ``other``.
STATUSES: tuple[str, ...] = ("200", "400", "404", "405", "406", "413", "415", "500", "503", "other")
#: Upper bounds (seconds) of the ``/invocations`` latency histogram.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

_REQUESTS = 0
_REQUEST_SLOTS = len(ENDPOINTS) * len(STATUSES)
_BUCKETS = _REQUESTS + _REQUEST_SLOTS
_LATENCY_SUM = _BUCKETS + len(LATENCY_BUCKETS) + 1  # + the +Inf bucket
_LATENCY_COUNT = _LATENCY_SUM + 1
_INSTANCES = _LATENCY_COUNT + 1
_BATCHES = _INSTANCES + 1
_MODEL_LOADED = _BATCHES + 1
_HEARTBEAT = _MODEL_LOADED + 1
SLOTS_PER_WORKER = _HEARTBEAT + 1

_ENDPOINT_INDEX = {name: i for i, name in enumerate(ENDPOINTS)}
_STATUS_INDEX = {name: i for i, name in enumerate(STATUSES)}


class SharedMetrics:
    """One row of float64 slots per worker in memory shared across ``fork``."""

    def __init__(self, workers: int):
        if workers < 1:
            raise ValueError("need at least one worker")
        self.workers = workers
        self._memory = mmap.mmap(-1, workers * SLOTS_PER_WORKER * 8)
        self._values = memoryview(self._memory).cast("d")

    def worker(self, index: int) -> WorkerMetrics:
        """The writer for worker ``index`` (0-based)."""
        if not 0 <= index < self.workers:
            raise IndexError(f"worker {index} of {self.workers}")
        return WorkerMetrics(self._values, index * SLOTS_PER_WORKER)

    def _total(self, slot: int) -> float:
        return sum(self._values[w * SLOTS_PER_WORKER + slot] for w in range(self.workers))

    def heartbeat_age(self, index: int) -> float:
        """Seconds since worker ``index`` last reported that its event loop runs."""
        return time.monotonic() - self._values[index * SLOTS_PER_WORKER + _HEARTBEAT]

    def reset_heartbeat(self, index: int) -> None:
        """Start a (new) worker's liveness clock now, before its first beat."""
        self._values[index * SLOTS_PER_WORKER + _HEARTBEAT] = time.monotonic()

    def render(self, model_version: str | None) -> str:
        """The Prometheus text exposition (format 0.0.4) of all workers together."""
        lines = [
            "# HELP superdan_requests_total HTTP requests answered, by endpoint and status.",
            "# TYPE superdan_requests_total counter",
        ]
        for e, endpoint in enumerate(ENDPOINTS):
            for s, status in enumerate(STATUSES):
                value = self._total(_REQUESTS + e * len(STATUSES) + s)
                if value or (endpoint == "invocations" and status == "200"):
                    lines.append(
                        f'superdan_requests_total{{endpoint="{endpoint}",status="{status}"}} '
                        f"{value:g}"
                    )
        client = server = 0.0
        # /ping's 503 is the contract's "not ready yet" while the model loads, not an error:
        # it stays visible in superdan_requests_total{endpoint="ping"} but is not counted here.
        counted = [e for e, endpoint in enumerate(ENDPOINTS) if endpoint != "ping"]
        for s, status in enumerate(STATUSES):
            total = sum(self._total(_REQUESTS + e * len(STATUSES) + s) for e in counted)
            if status.startswith("4"):
                client += total
            elif status.startswith("5"):
                server += total
        lines += [
            "# HELP superdan_request_errors_total Requests answered with an error status.",
            "# TYPE superdan_request_errors_total counter",
            f'superdan_request_errors_total{{kind="client"}} {client:g}',
            f'superdan_request_errors_total{{kind="server"}} {server:g}',
            "# HELP superdan_invocation_duration_seconds Time to answer /invocations.",
            "# TYPE superdan_invocation_duration_seconds histogram",
        ]
        cumulative = 0.0
        for b, bound in enumerate((*LATENCY_BUCKETS, float("inf"))):
            cumulative += self._total(_BUCKETS + b)
            le = "+Inf" if bound == float("inf") else f"{bound:g}"
            lines.append(f'superdan_invocation_duration_seconds_bucket{{le="{le}"}} {cumulative:g}')
        lines += [
            f"superdan_invocation_duration_seconds_sum {self._total(_LATENCY_SUM):.6f}",
            f"superdan_invocation_duration_seconds_count {self._total(_LATENCY_COUNT):g}",
            "# HELP superdan_instances_scored_total Incidents scored by the model.",
            "# TYPE superdan_instances_scored_total counter",
            f"superdan_instances_scored_total {self._total(_INSTANCES):g}",
            "# HELP superdan_model_calls_total Model calls (micro-batches of requests).",
            "# TYPE superdan_model_calls_total counter",
            f"superdan_model_calls_total {self._total(_BATCHES):g}",
            "# HELP superdan_workers Worker processes configured.",
            "# TYPE superdan_workers gauge",
            f"superdan_workers {self.workers}",
            "# HELP superdan_workers_ready Worker processes with the model loaded.",
            "# TYPE superdan_workers_ready gauge",
            f"superdan_workers_ready {self._total(_MODEL_LOADED):g}",
        ]
        if model_version is not None:
            escaped = model_version.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
            lines += [
                "# HELP superdan_model_info The model version being served.",
                "# TYPE superdan_model_info gauge",
                f'superdan_model_info{{version="{escaped}"}} 1',
            ]
        return "\n".join(lines) + "\n"


class WorkerMetrics:
    """The updates one worker makes to its own row (it is the row's only writer)."""

    def __init__(self, values: memoryview, offset: int):
        self._values = values
        self._offset = offset

    def request(self, endpoint: str, status: int, seconds: float) -> None:
        """Count one answered request; ``/invocations`` also feeds the latency histogram."""
        values, base = self._values, self._offset
        e = _ENDPOINT_INDEX.get(endpoint, _ENDPOINT_INDEX["other"])
        s = _STATUS_INDEX.get(str(status), _STATUS_INDEX["other"])
        values[base + _REQUESTS + e * len(STATUSES) + s] += 1.0
        if endpoint == "invocations":
            values[base + _BUCKETS + bisect_left(LATENCY_BUCKETS, seconds)] += 1.0
            values[base + _LATENCY_SUM] += seconds
            values[base + _LATENCY_COUNT] += 1.0

    def model_call(self, instances: int) -> None:
        """Count one call of the model over ``instances`` incidents."""
        self._values[self._offset + _INSTANCES] += instances
        self._values[self._offset + _BATCHES] += 1.0

    def model_loaded(self, loaded: bool) -> None:
        self._values[self._offset + _MODEL_LOADED] = 1.0 if loaded else 0.0

    def heartbeat(self) -> None:
        """Tell the master this worker's event loop is alive (see ``supervisor``)."""
        self._values[self._offset + _HEARTBEAT] = time.monotonic()
