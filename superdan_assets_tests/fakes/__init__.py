"""Real local HTTP fakes of the city APIs, with fault injection.

Why real servers rather than mocking ``requests``: the retry code must be exercised against
real sockets (timeouts, connections closed mid-body, status codes, headers), and the same
fakes serve end-to-end tests (a Dagster materialization pointed at ``server.url``).

Every fake binds ``127.0.0.1`` on a free port, serves from a background thread, records each
request it receives and can be told to misbehave. Use it as a context manager::

    with FakeSodaServer(records) as server:
        server.fail_next("429", times=2, retry_after=0)
        source = SodaSource(url=server.url)
        ...
        assert len(server.requests) == ...

Fault kinds (``FAULT_KINDS``), shared by both fakes:

- ``"429"``: HTTP 429 with ``Retry-After: <retry_after>`` (default ``"0"``).
- ``"500"``: HTTP 500 with a JSON error body.
- ``"hang"``: accept the request and send nothing for ``hang_seconds`` (longer than the
  client's timeout), then close the connection.
- ``"truncate"``: HTTP 200 announcing the full ``Content-Length`` but closing the connection
  after half of the body (a connection lost mid-transfer).
- ``"invalid_json"``: HTTP 200 with a complete response whose body is cut-off JSON (a proxy
  that truncated the payload).
- ``"error_payload"``: HTTP 200 whose body is an ArcGIS-style ``{"error": {"code": ...}}``
  (``error_code``, default 500).

A schema change (a renamed field) is not a one-off fault but a state: see each fake's
``rename_field``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

FAULT_KINDS = ("429", "500", "hang", "truncate", "invalid_json", "error_payload")


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it (query parameters decoded, last value wins)."""

    path: str
    params: dict[str, str]
    headers: dict[str, str]

    def header(self, name: str) -> str | None:
        """The header's value, looked up case-insensitively (None when absent)."""
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)


@dataclass
class Fault:
    """A misbehaviour answered instead of the real response, ``times`` times.

    ``offset`` restricts the fault to requests for that page offset (``$offset`` or
    ``resultOffset``); ``None`` matches any request.
    """

    kind: str
    times: int = 1
    offset: int | None = None
    retry_after: str | None = "0"
    hang_seconds: float = 2.0
    error_code: int = 500
    used: int = 0

    def matches(self, offset: int) -> bool:
        return self.used < self.times and (self.offset is None or self.offset == offset)


@dataclass
class Response:
    """What a fake's query handler wants sent back."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class FakeHTTPServer:
    """Shared machinery: the server thread, request log, faults and hooks.

    Subclasses implement :meth:`handle` (the API's query semantics) and :meth:`page_offset`.
    """

    #: The path the API is served on (``url`` points at it); other paths answer 404.
    path: str = "/"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._faults: list[Fault] = []
        self._hooks: list[Callable[[RecordedRequest], None]] = []
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> Self:
        """Bind 127.0.0.1 on a free port and serve from a daemon thread."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, release hanging handlers and the port."""
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` of the running server."""
        if self._httpd is None:
            raise RuntimeError(f"{type(self).__name__} is not started; use it as a context manager")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        """The full URL of the API endpoint, to give to the source."""
        return self.base_url + self.path

    # -- observation ----------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of every request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        """Forget the recorded requests (e.g. between two phases of a test)."""
        with self._lock:
            self._requests.clear()

    def add_hook(self, hook: Callable[[RecordedRequest], None]) -> None:
        """Call ``hook(request)`` for each request before it is answered.

        Lets a test change the served data mid-paging (``hook`` may call ``set_records``).
        """
        with self._lock:
            self._hooks.append(hook)

    # -- fault injection ------------------------------------------------------------------
    def fail_next(self, kind: str, times: int = 1, **options: Any) -> Fault:
        """Answer the next ``times`` requests with fault ``kind`` (see ``FAULT_KINDS``).

        ``options``: ``retry_after`` (str or None for no header), ``hang_seconds``,
        ``error_code``.
        """
        return self._add_fault(Fault(kind=kind, times=times, **options))

    def fail_at_offset(self, offset: int, kind: str, times: int = 1, **options: Any) -> Fault:
        """Like :meth:`fail_next`, but only for requests of the page at ``offset``."""
        return self._add_fault(Fault(kind=kind, times=times, offset=offset, **options))

    def reset_faults(self) -> None:
        """Drop pending faults and any schema change: behave like the real API again."""
        with self._lock:
            self._faults.clear()
            self._reset_schema()

    def _add_fault(self, fault: Fault) -> Fault:
        if fault.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {fault.kind!r}; choose from {FAULT_KINDS}")
        with self._lock:
            self._faults.append(fault)
        return fault

    def _take_fault(self, offset: int) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(offset):
                    fault.used += 1
                    return fault
        return None

    # -- subclass API ---------------------------------------------------------------------
    def handle(self, params: dict[str, str]) -> Response:
        """Answer one query (``params`` decoded); implemented by each fake."""
        raise NotImplementedError

    def page_offset(self, params: dict[str, str]) -> int:
        """The page offset a request asks for (fault matching by offset)."""
        raise NotImplementedError

    def error_response(self, status: int, message: str) -> Response:
        """The API's error body for ``status`` (overridden by fakes whose APIs differ)."""
        return Response(status, {"error": True, "message": message})

    def _reset_schema(self) -> None:
        """Undo ``rename_field``; called with the lock held."""

    # -- request dispatch (runs on handler threads) ---------------------------------------
    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        split = urlsplit(handler.path)
        params = dict(parse_qsl(split.query, keep_blank_values=True))
        request = RecordedRequest(split.path, params, dict(handler.headers.items()))
        with self._lock:
            self._requests.append(request)
            hooks = list(self._hooks)
        for hook in hooks:
            hook(request)
        if split.path != self.path:
            _send(handler, self.error_response(404, f"no such path {split.path!r}"))
            return
        try:
            offset = self.page_offset(params)
        except ValueError:
            offset = -1
        fault = self._take_fault(offset)
        if fault is None:
            _send(handler, self.handle(params))
        else:
            self._misbehave(handler, fault, params)

    def _misbehave(
        self, handler: BaseHTTPRequestHandler, fault: Fault, params: dict[str, str]
    ) -> None:
        if fault.kind == "429":
            response = self.error_response(429, "Too Many Requests")
            if fault.retry_after is not None:
                response.headers["Retry-After"] = fault.retry_after
            _send(handler, response)
        elif fault.kind == "500":
            _send(handler, self.error_response(500, "Internal Server Error (injected)"))
        elif fault.kind == "hang":
            self._stopping.wait(fault.hang_seconds)
            handler.close_connection = True
        elif fault.kind == "error_payload":
            body = {"error": {"code": fault.error_code, "message": "injected error", "details": []}}
            _send(handler, Response(200, body))
        else:
            body = _encode(self.handle(params).body)
            _send_truncated(handler, body, announce_full_length=fault.kind == "truncate")


def _encode(body: Any) -> bytes:
    return json.dumps(body).encode("utf-8")


def _send(handler: BaseHTTPRequestHandler, response: Response) -> None:
    payload = _encode(response.body)
    try:
        handler.send_response(response.status)
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(payload)
    except (BrokenPipeError, ConnectionResetError):
        # The client gave up (e.g. it timed out); nothing left to tell it.
        handler.close_connection = True


def _send_truncated(
    handler: BaseHTTPRequestHandler, body: bytes, *, announce_full_length: bool
) -> None:
    cut = body[: max(1, len(body) // 2)]
    try:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(body) if announce_full_length else len(cut)))
        handler.end_headers()
        handler.wfile.write(cut)
        handler.wfile.flush()
    except (BrokenPipeError, ConnectionResetError):
        pass
    handler.close_connection = True


def _handler_for(server: FakeHTTPServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server._serve(self)

        def log_message(self, format: str, *args: Any) -> None:
            """Silence the per-request stderr line: tests read ``server.requests`` instead."""

    return Handler
