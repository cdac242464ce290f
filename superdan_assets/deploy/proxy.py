"""The always-on reverse proxy that gives a local endpoint a stable URL across model rolls.

Why a proxy and not a socket handover: the model server binds its own socket (``SO_REUSEADDR``
only), and handing a port over with ``SO_REUSEPORT`` loses requests, because connections
waiting in the old socket's accept backlog are reset when it closes, and a client's idle
keep-alive connection to the old process is closed under it. Here clients only ever talk to
this process, which owns the stable port for the endpoint's whole life; the model servers
behind it listen on private ephemeral ports, and a roll is:

1. ``PUT /upstream`` on the control port: every request that starts from now on goes to the
   new server (an attribute assignment inside one event loop, so it is atomic);
2. ``POST /drain``: wait until the requests already sent to the old server have been answered,
   and close the pooled keep-alive connections to it;
3. only then does the deployer SIGTERM the old server, which has nothing left to do.

A body larger than the model server accepts (``--upstream-max-body-bytes``, the server's
``SAGEMAKER_MAX_PAYLOAD_IN_MB``) is offered with ``Expect: 100-continue``: the server refuses it
with its own 413 (counted in its ``/metrics``) before a byte of it is sent. Sent whole, the
server would answer 413 and close with the body unread, the kernel would reset the connection
under the proxy's write, and the client would get a 502 instead.

A request is re-sent once, on a fresh connection to the *current* upstream, when its upstream
connection fails before a single response byte arrived (typically a pooled keep-alive
connection the server closed at its idle timeout just as it was reused). That is safe for this
API: ``/ping`` and ``/invocations`` have no side effects, and nothing has reached the client.

The control port is bound to loopback and every call must carry the bearer token the deployer
passes in the ``SUPERDAN_PROXY_TOKEN`` environment variable (never on the command line, which
other local users can read). Run as ``python -m superdan_assets.deploy.proxy``; the process
writes a ready file (pid, ports) once both sockets listen, and drains on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import json
import logging
import math
import os
import signal
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from superdan_assets.deploy import http1
from superdan_assets.deploy.http1 import Message, ProtocolError

logger = logging.getLogger("superdan.proxy")

TOKEN_ENV = "SUPERDAN_PROXY_TOKEN"
#: Bodies are buffered for the retry; SageMaker itself caps real-time payloads at 6 MB.
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
#: The server's own request timeout is 60 s (SAGEMAKER_MODEL_SERVER_TIMEOUT); wait a bit more.
DEFAULT_UPSTREAM_TIMEOUT_S = 65.0
DEFAULT_CONNECT_TIMEOUT_S = 5.0
#: Close a client's keep-alive connection after this long without a request.
DEFAULT_CLIENT_IDLE_S = 75.0
DEFAULT_DRAIN_TIMEOUT_S = 30.0
#: How long an ``Expect: 100-continue`` offer waits for the upstream's answer before the body
#: is sent anyway (RFC 9110 section 10.1.1: a client must not wait indefinitely).
CONTINUE_WAIT_S = 2.0

_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    413: "Payload Too Large",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
}


@dataclass(frozen=True)
class Upstream:
    """A model server behind the proxy; ``label`` (the model version) is for status only."""

    host: str
    port: int
    label: str = ""

    @property
    def key(self) -> str:
        return f"{self.host}:{self.port}"


class _RetryableUpstreamError(Exception):
    """The upstream connection failed before any response byte: the request may be re-sent."""


@dataclass
class _Connection:
    """One keep-alive connection to an upstream."""

    key: str
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    #: The upstream answered before the request body was sent: it still expects that body,
    #: so the connection cannot carry another request.
    body_unsent: bool = False

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


def json_response(status: int, payload: object, *, keep_alive: bool) -> bytes:
    """A complete JSON response, for the proxy's own answers and the control API.

    Error payloads (a dict with ``error``) get the ``status`` field the model server's own
    error bodies carry, so a client reads a refusal the same way whoever made it.
    """
    if isinstance(payload, dict) and "error" in payload and "status" not in payload:
        payload = {**payload, "status": status}
    body = json.dumps(payload).encode()
    head = http1.serialize_head(
        f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Connection", "keep-alive" if keep_alive else "close"),
        ],
    )
    return head + body


class ReverseProxy:
    """Routes each request to the current upstream, pooling keep-alive connections per upstream."""

    def __init__(
        self,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        upstream_max_body_bytes: int | None = None,
        upstream_timeout_s: float = DEFAULT_UPSTREAM_TIMEOUT_S,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        client_idle_s: float = DEFAULT_CLIENT_IDLE_S,
    ):
        self.max_body_bytes = max_body_bytes
        #: Larger bodies are offered with ``Expect: 100-continue`` (``None``: never).
        self.upstream_max_body_bytes = upstream_max_body_bytes
        self.upstream_timeout_s = upstream_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.client_idle_s = client_idle_s
        self.upstream: Upstream | None = None
        self.generation = 0
        self.counters: Counter[str] = Counter()
        self._idle: defaultdict[str, list[_Connection]] = defaultdict(list)
        self._inflight: Counter[str] = Counter()
        self._busy = 0
        self._quiet = asyncio.Event()
        self._quiet.set()
        self._client_tasks: set[asyncio.Task] = set()

    # -- control ---------------------------------------------------------------------------

    def set_upstream(self, upstream: Upstream | None) -> Upstream | None:
        """Send every request that starts from now on to ``upstream``; return the previous one."""
        previous, self.upstream = self.upstream, upstream
        self.generation += 1
        logger.info(
            "upstream switched from %s to %s (generation %d)",
            previous.key if previous else None,
            upstream.key if upstream else None,
            self.generation,
        )
        return previous

    async def drain(self, key: str, timeout_s: float) -> int:
        """Wait until no request is in flight to upstream ``key``; close its idle connections.

        Returns the number of requests still in flight when ``timeout_s`` ran out (0 = drained).
        """
        deadline = time.monotonic() + timeout_s
        while self._inflight[key] and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for connection in self._idle.pop(key, []):
            connection.close()
        return self._inflight[key]

    def status(self) -> dict:
        return {
            "pid": os.getpid(),
            "upstream": asdict(self.upstream) if self.upstream else None,
            "generation": self.generation,
            "inflight": {key: count for key, count in self._inflight.items() if count},
            "counters": dict(self.counters),
        }

    async def shutdown(self, timeout_s: float) -> None:
        """Let requests in progress finish (up to ``timeout_s``), then drop idle clients."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._quiet.wait()
        for task in list(self._client_tasks):
            task.cancel()
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()

    # -- client side -----------------------------------------------------------------------

    async def handle_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Serve one client connection: requests one after another while it stays alive."""
        task = asyncio.current_task()
        if task is not None:
            self._client_tasks.add(task)
        peer = writer.get_extra_info("peername")
        client_ip = peer[0] if isinstance(peer, tuple) else ""
        try:
            while True:
                try:
                    async with asyncio.timeout(self.client_idle_s):
                        raw = await http1.read_head(reader)
                except TimeoutError:
                    return
                except ProtocolError as exc:  # an oversized or truncated head
                    writer.write(json_response(exc.status, {"error": str(exc)}, keep_alive=False))
                    await writer.drain()
                    return
                if raw is None:
                    return
                self._enter()
                try:
                    keep_alive = await self._serve_request(raw, reader, writer, client_ip)
                finally:
                    self._leave()
                if not keep_alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ProtocolError, OSError):
            return
        except asyncio.CancelledError:
            return
        finally:
            if task is not None:
                self._client_tasks.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    def _enter(self) -> None:
        self._busy += 1
        self._quiet.clear()

    def _leave(self) -> None:
        self._busy -= 1
        if not self._busy:
            self._quiet.set()

    async def _serve_request(
        self,
        raw: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        client_ip: str,
    ) -> bool:
        """Read one request, answer it; return whether the client connection stays open."""
        self.counters["requests"] += 1
        try:
            request = http1.parse_request(raw)
            keep_alive = http1.wants_keep_alive(request, request.third)
            if "100-continue" in request.tokens("expect") and request.third == "HTTP/1.1":
                # The client waits before sending: refuse now what the proxy or the model
                # server would refuse once it is sent.
                declared = http1.content_length(request)
                limit = min(self.max_body_bytes, self.upstream_max_body_bytes or math.inf)
                if declared is not None and declared > limit:
                    raise ProtocolError(413, f"request body larger than {limit} bytes")
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = await http1.read_body(reader, request, self.max_body_bytes)
        except ProtocolError as exc:
            # The rest of the request may still be unread: never reuse this connection.
            self.counters["client_errors"] += 1
            writer.write(json_response(exc.status, {"error": str(exc)}, keep_alive=False))
            await writer.drain()
            return False
        return await self._forward(request, body, writer, client_ip, keep_alive)

    def _upstream_head(self, request: Message, body: bytes, client_ip: str) -> bytes:
        headers = http1.end_to_end(
            request.headers,
            request,
            drop=frozenset({"content-length", "expect", "x-forwarded-for"}),
        )
        forwarded = request.get("x-forwarded-for")
        headers.append(("X-Forwarded-For", f"{forwarded}, {client_ip}" if forwarded else client_ip))
        if body or request.first not in ("GET", "HEAD", "DELETE", "OPTIONS"):
            headers.append(("Content-Length", str(len(body))))
        if self._offer_body(body):
            headers.append(("Expect", "100-continue"))
        headers.append(("Connection", "keep-alive"))
        return http1.serialize_head(f"{request.first} {request.second} HTTP/1.1", headers)

    def _offer_body(self, body: bytes) -> bool:
        """Whether to ask the upstream before sending ``body`` (it is larger than it accepts)."""
        limit = self.upstream_max_body_bytes
        return limit is not None and len(body) > limit

    async def _forward(
        self,
        request: Message,
        body: bytes,
        writer: asyncio.StreamWriter,
        client_ip: str,
        keep_alive: bool,
    ) -> bool:
        head = self._upstream_head(request, body, client_ip)
        for attempt in range(2):
            upstream = self.upstream
            if upstream is None:
                self.counters["no_upstream"] += 1
                writer.write(
                    json_response(
                        503,
                        {"error": "no model server is deployed behind this endpoint"},
                        keep_alive=keep_alive,
                    )
                )
                await writer.drain()
                return keep_alive
            # Counted before the first await, so a drain that starts later waits for it.
            self._inflight[upstream.key] += 1
            try:
                connection, response = await self._exchange(
                    upstream, head, body, fresh=attempt > 0
                )
            except _RetryableUpstreamError as exc:
                self._inflight[upstream.key] -= 1
                if attempt == 0:
                    self.counters["retries"] += 1
                    continue
                self.counters["upstream_errors"] += 1
                writer.write(
                    json_response(
                        502, {"error": f"model server unreachable: {exc}"}, keep_alive=keep_alive
                    )
                )
                await writer.drain()
                return keep_alive
            except TimeoutError:
                self._inflight[upstream.key] -= 1
                self.counters["upstream_timeouts"] += 1
                writer.write(
                    json_response(
                        504, {"error": "model server did not answer in time"}, keep_alive=False
                    )
                )
                await writer.drain()
                return False
            try:
                return await self._relay_response(request, response, connection, writer, keep_alive)
            finally:
                self._inflight[upstream.key] -= 1
        raise AssertionError("unreachable")  # pragma: no cover

    async def _exchange(
        self, upstream: Upstream, head: bytes, body: bytes, *, fresh: bool
    ) -> tuple[_Connection, Message]:
        """Send the request and read the response head (skipping interim 1xx responses).

        An offered body (see :meth:`_offer_body`) is sent only after the upstream's
        ``100 Continue`` (or after :data:`CONTINUE_WAIT_S` without an answer); a final answer
        instead, typically its 413, is returned with the body never sent.
        """
        connection = None if fresh else self._pooled(upstream.key)
        try:
            if connection is None:
                async with asyncio.timeout(self.connect_timeout_s):
                    reader, upstream_writer = await asyncio.open_connection(
                        upstream.host, upstream.port, limit=http1.MAX_HEAD_BYTES
                    )
                connection = _Connection(upstream.key, reader, upstream_writer)
            if self._offer_body(body):
                connection.writer.write(head)
                await connection.writer.drain()
                early = await self._await_continue(connection)
                if early is not None:
                    connection.body_unsent = True
                    return connection, early
                connection.writer.write(body)
            else:
                connection.writer.write(head + body)
            await connection.writer.drain()
            async with asyncio.timeout(self.upstream_timeout_s):
                while True:
                    raw = await http1.read_head(connection.reader)
                    if raw is None:
                        raise _RetryableUpstreamError("connection closed before a response")
                    response = http1.parse_response(raw)
                    if not response.second.startswith("1") or response.second == "101":
                        return connection, response
        except TimeoutError:
            if connection is not None:
                connection.close()
            raise
        except (OSError, asyncio.IncompleteReadError, ProtocolError) as exc:
            if connection is not None:
                connection.close()
            raise _RetryableUpstreamError(str(exc) or type(exc).__name__) from exc
        except BaseException:
            if connection is not None:
                connection.close()
            raise

    async def _await_continue(self, connection: _Connection) -> Message | None:
        """The upstream's final response to an offered body, or ``None`` to send the body.

        ``None`` after a ``100 Continue``, or when nothing came within :data:`CONTINUE_WAIT_S`
        (an upstream that ignores ``Expect``; a partly read head stays in the buffer).
        """
        try:
            async with asyncio.timeout(CONTINUE_WAIT_S):
                while True:
                    raw = await http1.read_head(connection.reader)
                    if raw is None:
                        raise _RetryableUpstreamError("connection closed before a response")
                    response = http1.parse_response(raw)
                    if response.second == "100":
                        return None
                    if not response.second.startswith("1") or response.second == "101":
                        return response
        except TimeoutError:
            return None

    def _pooled(self, key: str) -> _Connection | None:
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()
            if not connection.reader.at_eof() and not connection.writer.is_closing():
                return connection
            connection.close()
        return None

    async def _relay_response(
        self,
        request: Message,
        response: Message,
        connection: _Connection,
        writer: asyncio.StreamWriter,
        keep_alive: bool,
    ) -> bool:
        """Stream the response to the client; pool the upstream connection if it stays usable."""
        status = int(response.second)
        client_http11 = request.third == "HTTP/1.1"
        no_body = request.first == "HEAD" or status in (204, 304) or 100 <= status < 200
        try:
            chunked = not no_body and http1.is_chunked(response)
            length = None if no_body or chunked else http1.content_length(response)
        except ProtocolError:
            connection.close()
            raise
        until_eof = not no_body and not chunked and length is None
        reusable = (
            http1.wants_keep_alive(response, response.first)
            and not until_eof
            and not connection.body_unsent
        )
        if until_eof or (chunked and not client_http11):
            keep_alive = False  # the body ends when the connection does
        headers = http1.end_to_end(response.headers, response)
        if chunked:
            headers = [(n, v) for n, v in headers if n.lower() != "content-length"]
            if client_http11:
                headers.append(("Transfer-Encoding", "chunked"))
        headers.append(("Connection", "keep-alive" if keep_alive else "close"))
        try:
            writer.write(
                http1.serialize_head(f"HTTP/1.1 {response.second} {response.third}", headers)
            )
            if chunked:
                await http1.relay_chunked(connection.reader, writer, dechunk=not client_http11)
            elif length:
                await http1.relay_exact(connection.reader, writer, length)
            elif until_eof:
                await http1.relay_until_eof(connection.reader, writer)
            await writer.drain()
        except BaseException:
            # Half a response went out (or the client left): neither side can be reused.
            connection.close()
            self.counters["aborted_responses"] += 1
            raise
        current = self.upstream
        if reusable and current is not None and current.key == connection.key:
            self._idle[connection.key].append(connection)
        else:
            connection.close()
        return keep_alive


class ControlServer:
    """The token-protected control API on a loopback port: status, switch, drain."""

    def __init__(self, proxy: ReverseProxy, token: str):
        self.proxy = proxy
        self._token = token.encode()
        self.port = 0  # set once the control socket is bound

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One request per connection (the deployer makes a handful of calls per roll)."""
        try:
            raw = await http1.read_head(reader)
            if raw is None:
                return
            request = http1.parse_request(raw)
            body = await http1.read_body(reader, request, 64 * 1024)
            status, payload = await self._dispatch(request, body)
        except (KeyError, ValueError, TypeError) as exc:
            status, payload = 400, {"error": f"bad control request: {exc!r}"}
        except ProtocolError as exc:
            status, payload = exc.status, {"error": str(exc)}
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            return
        try:
            writer.write(json_response(status, payload, keep_alive=False))
            await writer.drain()
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    def _authorised(self, request: Message) -> bool:
        supplied = (request.get("authorization") or "").removeprefix("Bearer ").encode()
        return hmac.compare_digest(supplied, self._token)

    async def _dispatch(self, request: Message, body: bytes) -> tuple[int, object]:
        if not self._authorised(request):
            return 401, {"error": "missing or wrong bearer token"}
        try:
            data = json.loads(body) if body else {}
        except json.JSONDecodeError as exc:
            return 400, {"error": f"body is not JSON: {exc}"}
        route = (request.first, request.second)
        if route == ("GET", "/status"):
            return 200, {**self.proxy.status(), "control_port": self.port}
        if route == ("PUT", "/upstream"):
            if data.get("port") is None:
                previous = self.proxy.set_upstream(None)
            else:
                upstream = Upstream(
                    str(data.get("host", "127.0.0.1")),
                    int(data["port"]),
                    str(data.get("label", "")),
                )
                previous = self.proxy.set_upstream(upstream)
            return 200, {"previous": asdict(previous) if previous else None, **self.proxy.status()}
        if route == ("POST", "/drain"):
            key = f"{data.get('host', '127.0.0.1')}:{int(data['port'])}"
            remaining = await self.proxy.drain(
                key, float(data.get("timeout_s", DEFAULT_DRAIN_TIMEOUT_S))
            )
            return 200, {"upstream": key, "inflight": remaining, "drained": remaining == 0}
        return 404, {"error": f"no control route {request.first} {request.second}"}


def _write_ready_file(path: Path, payload: dict) -> None:
    """Atomically publish the proxy's pid and ports (the deployer waits for this file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh)
    os.replace(tmp, path)


async def run_proxy(args: argparse.Namespace, token: str) -> None:
    """Listen on the stable port and the control port until SIGTERM/SIGINT, then drain."""
    proxy = ReverseProxy(
        max_body_bytes=args.max_body_bytes,
        upstream_max_body_bytes=args.upstream_max_body_bytes,
        upstream_timeout_s=args.upstream_timeout_s,
        client_idle_s=args.client_idle_s,
    )
    server = await asyncio.start_server(
        proxy.handle_client, args.host, args.port, limit=http1.MAX_HEAD_BYTES, backlog=2048
    )
    control = ControlServer(proxy, token)
    control_server = await asyncio.start_server(
        control.handle, "127.0.0.1", args.control_port, limit=http1.MAX_HEAD_BYTES
    )
    control_port = control.port = control_server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    _write_ready_file(
        Path(args.ready_file),
        {
            "pid": os.getpid(),
            "host": args.host,
            "port": server.sockets[0].getsockname()[1],
            "control_port": control_port,
        },
    )
    logger.info("proxy listening on %s:%s (control port %s)", args.host, args.port, control_port)
    await stop.wait()
    logger.info("stopping: draining requests in progress")
    server.close()
    await proxy.shutdown(args.drain_timeout_s)
    control_server.close()
    logger.info("stopped")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m superdan_assets.deploy.proxy", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True, help="the stable public port")
    parser.add_argument(
        "--control-port", type=int, default=0, help="loopback control port (0: any free)"
    )
    parser.add_argument(
        "--ready-file", required=True, help="written with pid and ports once listening"
    )
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES)
    parser.add_argument(
        "--upstream-max-body-bytes",
        type=int,
        default=None,
        help="the model server's body limit: larger bodies are offered with Expect: 100-continue",
    )
    parser.add_argument("--upstream-timeout-s", type=float, default=DEFAULT_UPSTREAM_TIMEOUT_S)
    parser.add_argument("--client-idle-s", type=float, default=DEFAULT_CLIENT_IDLE_S)
    parser.add_argument("--drain-timeout-s", type=float, default=DEFAULT_DRAIN_TIMEOUT_S)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    token = os.environ.pop(TOKEN_ENV, "")
    if not token:
        print(f"error: the control token must be passed in ${TOKEN_ENV}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s [pid %(process)d] %(name)s: %(message)s",
    )
    asyncio.run(run_proxy(args, token))
    return 0


if __name__ == "__main__":
    sys.exit(main())
