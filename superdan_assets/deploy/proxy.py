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
import os
import signal
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import h11

from superdan_assets.deploy import http1
from superdan_assets.deploy.http1 import ProtocolError

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
    """One keep-alive connection to an upstream, with its h11 state machine."""

    key: str
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    http: h11.Connection = field(default_factory=lambda: h11.Connection(h11.CLIENT))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()

    @property
    def reusable(self) -> bool:
        """Both sides finished the exchange and nobody asked to close (h11 knows)."""
        return self.http.our_state is h11.DONE and self.http.their_state is h11.DONE


@dataclass
class _Request:
    """A client's request as the proxy forwards it: h11's head and the whole (de-chunked) body."""

    head: h11.Request
    body: bytes

    @property
    def method(self) -> bytes:
        return self.head.method


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
        client = h11.Connection(h11.SERVER, max_incomplete_event_size=http1.MAX_HEAD_BYTES)
        try:
            while True:
                try:
                    async with asyncio.timeout(self.client_idle_s):
                        event = await http1.next_event(client, reader)
                except TimeoutError:
                    return
                except h11.RemoteProtocolError as exc:  # a malformed, oversized or cut head
                    await self._refuse(writer, exc.error_status_hint, str(exc))
                    return
                if not isinstance(event, h11.Request):
                    return  # the client closed its connection
                if http1.head_size(event) > http1.MAX_HEAD_BYTES:
                    # h11 bounds a head still arriving; one that came whole is measured here.
                    await self._refuse(
                        writer, 431, f"request head larger than {http1.MAX_HEAD_BYTES} bytes"
                    )
                    return
                self._enter()
                try:
                    await self._serve_request(client, event, reader, writer, client_ip)
                finally:
                    self._leave()
                if client.our_state is not h11.DONE or client.their_state is not h11.DONE:
                    return
                client.start_next_cycle()
        except (ConnectionError, OSError, h11.ProtocolError, asyncio.CancelledError):
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

    async def _refuse(self, writer: asyncio.StreamWriter, status: int, message: str) -> None:
        """Answer a request the proxy cannot take and close: the rest of it may be unread."""
        self.counters["client_errors"] += 1
        writer.write(http1.raw_json_response(status, {"error": message}))
        await writer.drain()

    async def _serve_request(
        self,
        client: h11.Connection,
        head: h11.Request,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        client_ip: str,
    ) -> None:
        """Read one request's body, forward the request, relay the answer."""
        self.counters["requests"] += 1
        try:
            declared = _content_length(head.headers)
            if declared is not None and declared > self.max_body_bytes:
                raise ProtocolError(413, f"request body larger than {self.max_body_bytes} bytes")
            if client.they_are_waiting_for_100_continue:
                # The client waits before sending: refuse now what the model server would
                # refuse once it is sent.
                limit = self.upstream_max_body_bytes
                if declared is not None and limit is not None and declared > limit:
                    raise ProtocolError(413, f"request body larger than {limit} bytes")
                writer.write(
                    client.send(
                        h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue")
                    )
                )
            body = await self._read_body(client, reader)
        except ProtocolError as exc:
            await self._refuse(writer, exc.status, str(exc))
            return
        except h11.RemoteProtocolError as exc:
            await self._refuse(writer, exc.error_status_hint, str(exc))
            return
        await self._forward(client, _Request(head, body), writer, client_ip)

    async def _read_body(self, client: h11.Connection, reader: asyncio.StreamReader) -> bytes:
        """The whole request body, refused with 413 past ``max_body_bytes``.

        Buffered on purpose: a request whose upstream connection fails before any response byte
        arrives is re-sent on a fresh connection, which needs the body.
        """
        parts: list[bytes] = []
        size = 0
        while True:
            event = await http1.next_event(client, reader)
            if isinstance(event, h11.EndOfMessage):
                return b"".join(parts)
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > self.max_body_bytes:
                    raise ProtocolError(
                        413, f"request body larger than {self.max_body_bytes} bytes"
                    )
                parts.append(event.data)

    async def _answer(
        self, client: h11.Connection, writer: asyncio.StreamWriter, status: int, payload: object
    ) -> None:
        """One of the proxy's own JSON answers on a connection that may stay open."""
        body = http1.json_body(status, payload)
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        if status == 504:
            headers.append((b"connection", b"close"))  # the upstream may still answer later
        writer.write(client.send(h11.Response(status_code=status, headers=headers)))
        writer.write(client.send(h11.Data(data=body)))
        writer.write(client.send(h11.EndOfMessage()))
        await writer.drain()

    def _upstream_head(self, request: _Request, upstream: Upstream, client_ip: str) -> h11.Request:
        headers = http1.end_to_end(
            request.head.headers, drop=frozenset({b"content-length", b"expect", b"x-forwarded-for"})
        )
        forwarded = http1.header(request.head.headers, b"x-forwarded-for")
        address = client_ip.encode()
        headers.append((b"x-forwarded-for", forwarded + b", " + address if forwarded else address))
        if http1.header(headers, b"host") is None:  # HTTP/1.0 clients may leave it out
            headers.append((b"host", upstream.key.encode()))
        if request.body or request.method not in (b"GET", b"HEAD", b"DELETE", b"OPTIONS"):
            headers.append((b"content-length", b"%d" % len(request.body)))
        if self._offer_body(request.body):
            headers.append((b"expect", b"100-continue"))
        return h11.Request(method=request.method, target=request.head.target, headers=headers)

    def _offer_body(self, body: bytes) -> bool:
        """Whether to ask the upstream before sending ``body`` (it is larger than it accepts)."""
        limit = self.upstream_max_body_bytes
        return limit is not None and len(body) > limit

    async def _forward(
        self,
        client: h11.Connection,
        request: _Request,
        writer: asyncio.StreamWriter,
        client_ip: str,
    ) -> None:
        for attempt in range(2):
            upstream = self.upstream
            if upstream is None:
                self.counters["no_upstream"] += 1
                await self._answer(
                    client,
                    writer,
                    503,
                    {"error": "no model server is deployed behind this endpoint"},
                )
                return
            # Counted before the first await, so a drain that starts later waits for it.
            self._inflight[upstream.key] += 1
            try:
                head = self._upstream_head(request, upstream, client_ip)
                connection, response = await self._exchange(
                    upstream, head, request.body, fresh=attempt > 0
                )
            except _RetryableUpstreamError as exc:
                self._inflight[upstream.key] -= 1
                if attempt == 0:
                    self.counters["retries"] += 1
                    continue
                self.counters["upstream_errors"] += 1
                await self._answer(
                    client, writer, 502, {"error": f"model server unreachable: {exc}"}
                )
                return
            except TimeoutError:
                self._inflight[upstream.key] -= 1
                self.counters["upstream_timeouts"] += 1
                await self._answer(
                    client, writer, 504, {"error": "model server did not answer in time"}
                )
                return
            try:
                await self._relay_response(client, response, connection, writer)
                return
            finally:
                self._inflight[upstream.key] -= 1

    async def _exchange(
        self, upstream: Upstream, head: h11.Request, body: bytes, *, fresh: bool
    ) -> tuple[_Connection, h11.Response]:
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
            http = connection.http
            if self._offer_body(body):
                connection.writer.write(http.send(head))
                await connection.writer.drain()
                early = await self._await_continue(connection)
                if early is not None:
                    return connection, early  # the body stays unsent: h11 will not pool this
                connection.writer.write(
                    http.send(h11.Data(data=body)) + http.send(h11.EndOfMessage())
                )
            else:
                data = http.send(head)
                if body:
                    data += http.send(h11.Data(data=body))
                connection.writer.write(data + http.send(h11.EndOfMessage()))
            await connection.writer.drain()
            async with asyncio.timeout(self.upstream_timeout_s):
                while True:
                    event = await http1.next_event(http, connection.reader)
                    if isinstance(event, h11.Response):
                        return connection, event
                    if not isinstance(event, h11.InformationalResponse):
                        raise _RetryableUpstreamError("connection closed before a response")
        except TimeoutError:
            if connection is not None:
                connection.close()
            raise
        except (OSError, h11.ProtocolError) as exc:
            if connection is not None:
                connection.close()
            raise _RetryableUpstreamError(str(exc) or type(exc).__name__) from exc
        except BaseException:
            if connection is not None:
                connection.close()
            raise

    async def _await_continue(self, connection: _Connection) -> h11.Response | None:
        """The upstream's final response to an offered body, or ``None`` to send the body.

        ``None`` after a ``100 Continue``, or when nothing came within :data:`CONTINUE_WAIT_S`
        (an upstream that ignores ``Expect``).
        """
        try:
            async with asyncio.timeout(CONTINUE_WAIT_S):
                event = await http1.next_event(connection.http, connection.reader)
        except TimeoutError:
            return None
        if isinstance(event, h11.Response):
            return event
        if isinstance(event, h11.InformationalResponse):
            return None
        raise _RetryableUpstreamError("connection closed before a response")

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
        client: h11.Connection,
        response: h11.Response,
        connection: _Connection,
        writer: asyncio.StreamWriter,
    ) -> None:
        """Stream the response to the client; pool the upstream connection if it stays usable.

        h11 frames the body for the client: as the upstream's ``Content-Length``, else chunked
        for an HTTP/1.1 client, else ended by closing the connection (HTTP/1.0).
        """
        headers = http1.end_to_end(response.headers)
        try:
            writer.write(
                client.send(
                    h11.Response(
                        status_code=response.status_code, headers=headers, reason=response.reason
                    )
                )
            )
            while True:
                event = await http1.next_event(connection.http, connection.reader)
                if isinstance(event, h11.Data):
                    writer.write(client.send(h11.Data(data=event.data)))
                    await writer.drain()
                elif isinstance(event, h11.EndOfMessage):
                    writer.write(client.send(h11.EndOfMessage()))
                    break
                else:
                    raise ConnectionError("upstream closed in the middle of its response")
            await writer.drain()
        except BaseException:
            # Half a response went out (or the client left): neither side can be reused.
            connection.close()
            self.counters["aborted_responses"] += 1
            raise
        current = self.upstream
        if connection.reusable and current is not None and current.key == connection.key:
            connection.http.start_next_cycle()
            self._idle[connection.key].append(connection)
        else:
            connection.close()


def _content_length(headers) -> int | None:
    value = http1.header(headers, b"content-length")
    return int(value) if value is not None and value.isdigit() else None


class ControlServer:
    """The token-protected control API on a loopback port: status, switch, drain."""

    def __init__(self, proxy: ReverseProxy, token: str):
        self.proxy = proxy
        self._token = token.encode()
        self.port = 0  # set once the control socket is bound

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One request per connection (the deployer makes a handful of calls per roll)."""
        http = h11.Connection(h11.SERVER, max_incomplete_event_size=http1.MAX_HEAD_BYTES)
        try:
            request = await http1.next_event(http, reader)
            if not isinstance(request, h11.Request):
                return
            body = b""
            while not isinstance(event := await http1.next_event(http, reader), h11.EndOfMessage):
                if isinstance(event, h11.Data):
                    body += event.data
                    if len(body) > 64 * 1024:
                        raise ProtocolError(413, "control request body larger than 64 KiB")
            status, payload = await self._dispatch(request, body)
        except (KeyError, ValueError, TypeError) as exc:
            status, payload = 400, {"error": f"bad control request: {exc!r}"}
        except ProtocolError as exc:
            status, payload = exc.status, {"error": str(exc)}
        except h11.RemoteProtocolError as exc:
            status, payload = exc.error_status_hint, {"error": str(exc)}
        except (ConnectionError, OSError):
            return
        try:
            writer.write(http1.raw_json_response(status, payload))
            await writer.drain()
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    def _authorised(self, request: h11.Request) -> bool:
        supplied = (http1.header(request.headers, b"authorization") or b"").removeprefix(b"Bearer ")
        return hmac.compare_digest(supplied, self._token)

    async def _dispatch(self, request: h11.Request, body: bytes) -> tuple[int, object]:
        if not self._authorised(request):
            return 401, {"error": "missing or wrong bearer token"}
        try:
            data = json.loads(body) if body else {}
        except json.JSONDecodeError as exc:
            return 400, {"error": f"body is not JSON: {exc}"}
        route = (request.method.decode(), request.target.decode("latin-1"))
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
        return 404, {"error": f"no control route {route[0]} {route[1][:100]}"}


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
