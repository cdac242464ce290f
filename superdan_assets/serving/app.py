"""The ASGI application of the endpoint: ``GET /ping``, ``POST /invocations``, ``GET /metrics``.

A bare ASGI callable rather than a framework app: the endpoint has three routes and a fixed
contract (GUIDE section 3), and a framework's routing, dependency injection and response
objects would be most of the per-request work once the model call is shared by a batch.

The model is loaded on a thread when the worker starts (``/ping`` answers 503 until it is
ready, then 200); when the supervisor already holds a verified model the "load" just hands it
over. Every failure inside a request is caught: client mistakes become 4xx with a JSON body
naming the row and field, and only a fault of the server itself can produce a 5xx.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from superdan_assets.ml.artifact import LoadedModel
from superdan_assets.serving import protocol, responses
from superdan_assets.serving.batching import DEFAULT_MAX_WAIT_S, MicroBatcher
from superdan_assets.serving.incidents import IncidentColumns, to_frame
from superdan_assets.serving.metrics import SharedMetrics, WorkerMetrics
from superdan_assets.serving.protocol import ClientError
from superdan_assets.serving.risk import RiskService, answer_json, load_risk_service

logger = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_JSON_HEADERS = [(b"content-type", b"application/json")]
_ROUTES: dict[str, tuple[str, frozenset[str]]] = {
    "/ping": ("ping", frozenset({"GET", "HEAD"})),
    "/invocations": ("invocations", frozenset({"POST"})),
    "/metrics": ("metrics", frozenset({"GET"})),
    "/risk": ("risk", frozenset({"GET", "POST"})),
}


@dataclass(frozen=True)
class AppSettings:
    """What the application itself needs to know (the process-level settings live elsewhere)."""

    max_payload_bytes: int = 5 * 1024 * 1024
    micro_batching: bool = True
    batch_wait_s: float = DEFAULT_MAX_WAIT_S
    #: City written to the canonical ``city`` column when the manifest names none.
    default_city: str = "chicago"


class _Answer(Exception):
    """A finished response raised from deep inside a handler."""

    def __init__(self, status: int, body: bytes, headers: list[tuple[bytes, bytes]]):
        self.status, self.body, self.headers = status, body, headers


class InferenceApp:
    """The endpoint for one worker process.

    ``loader`` returns the verified model (it runs on a thread at startup); ``on_load_failure``
    is called with the exception if it raises, so the process can exit instead of answering
    503 forever.
    """

    def __init__(
        self,
        loader: Callable[[], LoadedModel],
        settings: AppSettings | None = None,
        metrics: SharedMetrics | None = None,
        worker_index: int = 0,
        on_load_failure: Callable[[BaseException], None] | None = None,
    ):
        self.settings = settings or AppSettings()
        self.shared_metrics = metrics or SharedMetrics(1)
        self.metrics: WorkerMetrics = self.shared_metrics.worker(worker_index)
        self._loader = loader
        self._on_load_failure = on_load_failure
        self.model: LoadedModel | None = None
        self.load_error: BaseException | None = None
        # Street-risk forecasts (serving/risk.py), found beside the model when it loads.
        self.risk: RiskService | None = None
        self._risk_unavailable = "street-risk forecasts are loading; retry"
        self._city = self.settings.default_city
        self._batcher = MicroBatcher(
            self._score,
            enabled=self.settings.micro_batching,
            max_wait_s=self.settings.batch_wait_s,
            on_call=self.metrics.model_call,
        )
        self._load_task: asyncio.Task[None] | None = None

    # -- model ------------------------------------------------------------------------
    async def load(self) -> None:
        """Load the model on a thread, so ``/ping`` keeps answering (503) meanwhile."""
        try:
            model = await asyncio.to_thread(self._loader)
        except Exception as exc:
            self.load_error = exc
            logger.error("model failed to load: %s", exc)
            if self._on_load_failure is not None:
                self._on_load_failure(exc)
            return
        self._city = str(model.manifest.get("city") or self.settings.default_city)
        try:
            self.risk, self._risk_unavailable = await asyncio.to_thread(
                load_risk_service, model.directory
            )
        except Exception as exc:  # /risk must never stop the classifier from serving
            logger.exception("street-risk forecasts failed to load")
            self._risk_unavailable = f"street-risk forecasts failed to load: {exc}"
        self.model = model
        self.metrics.model_loaded(True)
        logger.info("model %s ready (threshold %.4f)", model.version, model.threshold)

    def _score(self, incidents: IncidentColumns) -> np.ndarray:
        assert self.model is not None
        probabilities = self.model.predict_proba(to_frame(incidents, self._city))
        probabilities = np.asarray(probabilities, dtype=np.float64)
        if probabilities.shape != (incidents.rows,) or not np.isfinite(probabilities).all():
            raise RuntimeError(
                f"model returned {probabilities.shape} values (non-finite included?) for "
                f"{incidents.rows} incidents"
            )
        return probabilities

    def busy_seconds(self) -> float:
        """How long the model call in progress has been running (0 when idle)."""
        return self._batcher.busy_seconds()

    # -- ASGI -------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._load_task = asyncio.create_task(self.load())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._load_task is not None and not self._load_task.done():
                    self._load_task.cancel()
                self.metrics.model_loaded(False)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        endpoint, methods = _ROUTES.get(scope["path"], ("other", frozenset()))
        headers: list[tuple[bytes, bytes]] = []
        try:
            if endpoint == "other":
                raise ClientError(
                    404,
                    f"no such path {scope['path'][:100]!r}; use /ping, /invocations, /risk or "
                    "/metrics",
                )
            if scope["method"] not in methods:
                headers = [(b"allow", ", ".join(sorted(methods)).encode())]
                raise ClientError(405, f"{scope['method']} is not allowed on {scope['path']}")
            if endpoint == "invocations":
                status, body, headers = await self._invocations(scope, receive)
            elif endpoint == "risk":
                status, body, headers = await self._risk(scope, receive)
            elif endpoint == "ping":
                status, body, headers = self._ping()
            else:
                status, body, headers = self._metrics()
        except ClientError as exc:
            status = exc.status
            body = responses.error_json(exc.status, exc.message, exc.details)
            headers = [*_JSON_HEADERS, *headers]
            if exc.status == 413:
                # The rest of the body was never read: do not reuse the connection.
                headers.append((b"connection", b"close"))
        except _Answer as answer:
            status, body, headers = answer.status, answer.body, answer.headers
        except _Disconnected:
            self.metrics.request(endpoint, 499, time.perf_counter() - started)
            return
        except Exception:
            logger.exception("internal error answering %s %s", scope["method"], scope["path"])
            status = 500
            body = responses.error_json(500, "internal server error; the incident was logged")
            headers = list(_JSON_HEADERS)
        if self.model is not None:
            headers.append((b"x-model-version", self.model.version.encode("utf-8", "replace")))
        headers.append((b"content-length", str(len(body)).encode()))
        # Counted before sending, so a client that has its answer also sees it in /metrics.
        self.metrics.request(endpoint, status, time.perf_counter() - started)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )

    # -- routes -----------------------------------------------------------------------
    def _ping(self) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        if self.model is None:
            state = "failed" if self.load_error is not None else "loading"
            return 503, responses.error_json(503, f"model {state}"), list(_JSON_HEADERS)
        body = b'{"status":"ok","model_version":' + _json_string(self.model.version) + b"}"
        return 200, body, list(_JSON_HEADERS)

    def _metrics(self) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        version = self.model.version if self.model is not None else None
        body = self.shared_metrics.render(version).encode()
        return 200, body, [(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")]

    async def _invocations(
        self, scope: Scope, receive: Receive
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        request_headers = _headers(scope)
        kind, codec = protocol.request_format(request_headers.get("content-type"))
        answer_type = protocol.response_format(request_headers.get("accept"))
        body = await self._read_body(request_headers, receive)
        if self.model is None:
            raise _Answer(
                503,
                responses.error_json(503, "model is not loaded yet; retry"),
                [*_JSON_HEADERS, (b"retry-after", b"1")],
            )
        incidents = protocol.decode_incidents(body, kind, codec)
        probabilities = await self._batcher.score(incidents)
        model = self.model
        if answer_type == protocol.CSV:
            payload = responses.predictions_csv(probabilities, model.threshold)
            return 200, payload, [(b"content-type", b"text/csv; charset=utf-8")]
        payload = responses.predictions_json(model.version, probabilities, model.threshold)
        return 200, payload, list(_JSON_HEADERS)

    async def _risk(
        self, scope: Scope, receive: Receive
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """``GET /risk`` (top places) and ``POST /risk`` (points); see ``serving/risk.py``."""
        request_headers = _headers(scope)
        if protocol.response_format(request_headers.get("accept")) != protocol.JSON:
            raise ClientError(406, "/risk answers application/json only")
        body = b""
        if scope["method"] == "POST":
            kind, _ = protocol.request_format(request_headers.get("content-type"))
            if kind != protocol.JSON:
                raise ClientError(415, "POST /risk takes application/json")
            body = await self._read_body(request_headers, receive)
        if self.risk is None:
            raise _Answer(
                503, responses.error_json(503, self._risk_unavailable), list(_JSON_HEADERS)
            )
        if scope["method"] == "POST":
            document = await asyncio.to_thread(self.risk.points, body)
        else:
            document = await asyncio.to_thread(self.risk.top, scope.get("query_string", b""))
        return 200, answer_json(document), list(_JSON_HEADERS)

    async def _read_body(self, request_headers: dict[str, str], receive: Receive) -> bytes:
        """The request body, or a 413 once it is known to exceed the limit.

        A body over the limit is still read (and dropped), up to :func:`discard_limit`, before
        the 413 goes out: closing a connection with unread data makes the kernel reset it,
        and a client still sending would get a connection reset instead of the 413. A client
        that sent ``Expect: 100-continue`` has not sent its body yet, so it is refused at once.
        """
        limit = self.settings.max_payload_bytes
        too_large = ClientError(
            413, f"request body exceeds the limit of {limit} bytes (SAGEMAKER_MAX_PAYLOAD_IN_MB)"
        )
        declared = request_headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            waiting = "100-continue" in request_headers.get("expect", "").lower()
            if waiting or int(declared) > discard_limit(limit):
                raise too_large
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                chunks.clear()
                if size > discard_limit(limit):
                    raise too_large
            else:
                chunks.append(chunk)
            if not message.get("more_body", False):
                if size > limit:
                    raise too_large
                return b"".join(chunks)


def discard_limit(limit: int) -> int:
    """How much of a too-large body is read and dropped so its 413 arrives (see ``_read_body``).

    Four times the limit, at least 16 MiB: covers SageMaker's own 6 MB cap whatever the limit;
    beyond it the connection is closed without reading on (reading costs the server little,
    but not without bound).
    """
    return max(4 * limit, 16 * 1024 * 1024)


class _Disconnected(Exception):
    """The client went away before sending its whole request."""


def _headers(scope: Scope) -> dict[str, str]:
    """Request headers by lower-case name (latin-1, as HTTP/1.1 defines them)."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}


def _json_string(text: str) -> bytes:
    return json.dumps(text).encode()
