"""The rolling proxy process against small stdlib upstreams: framing, switching, draining, retry.

The proxy runs as the real ``python -m superdan_assets.deploy.proxy`` process; the upstreams
are ``http.server`` instances on loopback whose paths misbehave on purpose.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from superdan_assets.deploy import processes
from superdan_assets.deploy.proxy import TOKEN_ENV
from superdan_assets.deploy.proxy_control import ProxyControl, ProxyControlError
from superdan_assets_tests.waiting import wait_until

TOKEN = "test-token"
#: The upstreams' body limit, passed to the proxy as --upstream-max-body-bytes.
UPSTREAM_LIMIT = 300


class _Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _UpstreamServer

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"alpha-", b"beta-", b"gamma"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/drop-first":
            # The first request on the server is read and never answered: the connection is
            # just closed, as a server does to an idle keep-alive connection it times out.
            with self.server.lock:
                drop = not self.server.dropped
                self.server.dropped = True
            if drop:
                self.close_connection = True
                return
            self._send(200, b"answered on retry")
        elif self.path == "/held":
            # Answered only once the test releases it: a request that stays in flight for as
            # long as the test needs, with no guess at how long that is.
            self.server.held.set()
            assert self.server.release.wait(30), "the test never released /held"
            self.server.held_answered_at = time.monotonic()
            self._send(200, self.server.name.encode())
        else:
            self._send(200, self.server.name.encode(), {"X-Upstream": self.server.name})

    def do_HEAD(self) -> None:
        # Headers of the GET answer, Content-Length included, and no body.
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.server.name)))
        self.end_headers()

    def handle_expect_100(self) -> bool:
        """Like the model server: refuse an offered body over the limit before it is sent."""
        if int(self.headers.get("Content-Length", 0)) > UPSTREAM_LIMIT:
            self.server.offers_refused += 1
            self._send(413, b"upstream refused the offered body", {"Connection": "close"})
            return False
        return super().handle_expect_100()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        echo = json.dumps({"got": body.decode(), "forwarded_for": self.headers["X-Forwarded-For"]})
        self._send(200, echo.encode())


class _UpstreamServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, name: str):
        super().__init__(("127.0.0.1", 0), _Upstream)
        self.name = name
        self.dropped = False
        self.offers_refused = 0
        self.held = threading.Event()
        self.release = threading.Event()
        self.held_answered_at = 0.0
        self.lock = threading.Lock()

    @property
    def port(self) -> int:
        return self.server_address[1]


@pytest.fixture
def upstreams() -> Iterator[tuple[_UpstreamServer, _UpstreamServer]]:
    servers = (_UpstreamServer("blue"), _UpstreamServer("green"))
    for server in servers:
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield servers
    for server in servers:
        server.release.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[tuple[int, ProxyControl]]:
    """A real proxy process on a free port; yields (public port, control client)."""
    port = processes.free_port()
    ready = tmp_path / "proxy.ready"
    handle = processes.spawn(
        [
            sys.executable,
            "-m",
            "superdan_assets.deploy.proxy",
            "--port",
            str(port),
            "--ready-file",
            str(ready),
            "--max-body-bytes",
            "1000",
            "--upstream-max-body-bytes",
            str(UPSTREAM_LIMIT),
        ],
        log_path=tmp_path / "proxy.log",
        env={**os.environ, TOKEN_ENV: TOKEN},
    )
    wait_until(ready.exists, timeout_s=15, what=f"the proxy's ready file ({tmp_path})")
    info = json.loads(ready.read_text())
    assert info["pid"] == handle.pid and info["port"] == port
    yield port, ProxyControl(info["control_port"], TOKEN)
    assert processes.terminate(handle, grace_s=5.0), "the proxy drains and exits on SIGTERM"


def _get(port: int, path: str, connection: http.client.HTTPConnection | None = None):
    connection = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path)
    response = connection.getresponse()
    return response, response.read()


def test_without_upstream_answers_503_and_control_needs_the_token(proxy):
    port, control = proxy
    response, body = _get(port, "/ping")
    assert response.status == 503
    assert "no model server" in json.loads(body)["error"]
    intruder = ProxyControl(control.control_port, "wrong-token")
    with pytest.raises(ProxyControlError, match="401"):
        intruder.set_upstream("127.0.0.1", 1)
    assert control.status()["upstream"] is None


def test_switch_sends_new_requests_to_the_new_upstream_on_the_same_connection(proxy, upstreams):
    port, control = proxy
    blue, green = upstreams
    control.set_upstream("127.0.0.1", blue.port, label="v1")
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    response, body = _get(port, "/", client)
    assert (response.status, body, response.getheader("X-Upstream")) == (200, b"blue", "blue")

    switched = control.set_upstream("127.0.0.1", green.port, label="v2")
    assert switched["previous"]["label"] == "v1" and switched["upstream"]["label"] == "v2"
    response, body = _get(port, "/", client)  # the same keep-alive client connection
    assert body == b"green"
    assert control.drain("127.0.0.1", blue.port, timeout_s=1.0) == {
        "upstream": f"127.0.0.1:{blue.port}",
        "inflight": 0,
        "drained": True,
    }


def test_drain_waits_for_requests_in_flight_to_the_old_upstream(proxy, upstreams):
    port, control = proxy
    blue, green = upstreams
    control.set_upstream("127.0.0.1", blue.port)
    answers: list[bytes] = []
    held = threading.Thread(target=lambda: answers.append(_get(port, "/held")[1]))
    held.start()
    assert blue.held.wait(10), "the request never reached blue"
    control.set_upstream("127.0.0.1", green.port)
    # While the request is held, a drain cannot finish: it says so when its time runs out.
    assert control.drain("127.0.0.1", blue.port, timeout_s=0.2) == {
        "upstream": f"127.0.0.1:{blue.port}",
        "inflight": 1,
        "drained": False,
    }
    assert _get(port, "/")[1] == b"green", "new requests already go to green"
    # A drain in progress returns only after the held request was answered.
    drained: list[dict] = []
    drainer = threading.Thread(
        target=lambda: drained.append(
            {**control.drain("127.0.0.1", blue.port, timeout_s=10.0), "at": time.monotonic()}
        )
    )
    drainer.start()
    blue.release.set()
    drainer.join(20)
    held.join(20)
    assert drained and drained[0]["drained"] and drained[0]["inflight"] == 0
    assert blue.held_answered_at <= drained[0]["at"]
    assert answers == [b"blue"], "the request in flight finished on the old upstream"


def test_a_connection_closed_before_the_response_is_retried(proxy, upstreams):
    port, control = proxy
    blue, _ = upstreams
    control.set_upstream("127.0.0.1", blue.port)
    response, body = _get(port, "/drop-first")
    assert (response.status, body) == (200, b"answered on retry")
    assert control.status()["counters"]["retries"] == 1


def test_framing_chunked_bodies_and_limits(proxy, upstreams):
    port, control = proxy
    blue, _ = upstreams
    control.set_upstream("127.0.0.1", blue.port)

    response, body = _get(port, "/chunked")
    assert (response.status, body) == (200, b"alpha-beta-gamma")
    assert response.getheader("Transfer-Encoding") == "chunked"

    client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    client.request(
        "POST", "/invocations", body=b'{"instances": []}', headers={"X-Forwarded-For": "10.0.0.1"}
    )
    echoed = json.loads(client.getresponse().read())
    assert echoed == {"got": '{"instances": []}', "forwarded_for": "10.0.0.1, 127.0.0.1"}

    # A chunked request body is de-chunked and forwarded with a Content-Length.
    client.putrequest("POST", "/invocations")
    client.putheader("Transfer-Encoding", "chunked")
    client.endheaders()
    client.send(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    assert json.loads(client.getresponse().read())["got"] == "hello world"

    client.request("POST", "/invocations", body=b"x" * 2000)
    too_big = client.getresponse()
    assert too_big.status == 413 and "larger than 1000" in json.loads(too_big.read())["error"]

    assert _raw_exchange(port, b"NONSENSE\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    huge_head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Filler: " + b"x" * 70_000 + b"\r\n\r\n"
    assert _raw_exchange(port, huge_head).startswith(b"HTTP/1.1 431 ")


def _raw_exchange(port: int, *messages: bytes, read_between: bool = False) -> bytes:
    """Send ``messages`` on one raw connection and read until the proxy closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        received = b""
        for message in messages:
            raw.sendall(message)
            if read_between:
                received += raw.recv(1000)
        raw.shutdown(socket.SHUT_WR)
        while chunk := raw.recv(65536):
            received += chunk
        return received


def test_expect_continue_and_http10_clients(proxy, upstreams):
    port, control = proxy
    blue, _ = upstreams
    control.set_upstream("127.0.0.1", blue.port)

    head = (
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
        b"Expect: 100-continue\r\nConnection: close\r\n\r\n"
    )
    answer = _raw_exchange(port, head, b"hello", read_between=True)
    assert answer.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 ")
    assert b'"got": "hello"' in answer

    # An HTTP/1.0 client cannot read chunked bodies: it gets the bytes, ended by the close.
    answer = _raw_exchange(port, b"GET /chunked HTTP/1.0\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"200" in head.split(b"\r\n")[0] and b"chunked" not in head.lower()
    assert b"Connection: close" in head and body == b"alpha-beta-gamma"


def test_a_body_over_the_upstream_limit_is_offered_and_refused_before_it_is_sent(proxy, upstreams):
    """The upstream's own 413 reaches the client (not a 502 from a reset connection)."""
    port, control = proxy
    blue, _ = upstreams
    control.set_upstream("127.0.0.1", blue.port)
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    client.request("POST", "/invocations", body=b"y" * (UPSTREAM_LIMIT + 1))
    refused = client.getresponse()
    assert (refused.status, refused.read()) == (413, b"upstream refused the offered body")
    assert blue.offers_refused == 1
    # The client sent its whole body, so its connection stays usable; the upstream's is not.
    client.request("POST", "/invocations", body=b"z" * UPSTREAM_LIMIT)
    assert json.loads(client.getresponse().read())["got"] == "z" * UPSTREAM_LIMIT
    counters = control.status()["counters"]
    assert counters.get("retries", 0) == 0 and counters.get("upstream_errors", 0) == 0

    # A client that itself waits for "100 Continue" is refused by the proxy from the head.
    head = (
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
        b"Expect: 100-continue\r\n\r\n" % (UPSTREAM_LIMIT + 1)
    )
    answer = _raw_exchange(port, head)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["status"] == 413


def test_a_head_answer_has_no_body_and_the_connection_carries_on(proxy, upstreams):
    port, control = proxy
    blue, _ = upstreams
    control.set_upstream("127.0.0.1", blue.port)
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    client.request("HEAD", "/")
    head = client.getresponse()
    assert (head.status, head.getheader("Content-Length"), head.read()) == (200, "4", b"")
    response, body = _get(port, "/", client)  # the same connection, and the pooled upstream one
    assert (response.status, body) == (200, b"blue")
