"""HTTP/1.1 for the rolling proxy, through h11: reading events off a stream, and what a proxy
must not forward.

Why h11: the proxy relays requests and responses with keep-alive on both sides, de-chunks
request bodies, streams chunked or close-delimited response bodies (and re-frames them for an
HTTP/1.0 client), and honours ``Expect: 100-continue``. Message framing is where proxies get
request smuggling wrong, so it is left to a maintained, sans-I/O state machine; this module is
only the glue between h11 and asyncio streams, plus the hop-by-hop header rule of RFC 9110.
"""

from __future__ import annotations

import asyncio
import json

import h11

#: Longest request or response head (start line + headers) accepted; beyond it, 431.
MAX_HEAD_BYTES = 64 * 1024
#: Size of the reads a body is relayed in.
RELAY_CHUNK = 64 * 1024
#: Headers that describe one connection, never forwarded by a proxy (RFC 9110 section 7.6.1).
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
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
}

Headers = list[tuple[bytes, bytes]]


class ProtocolError(Exception):
    """A request the proxy refuses; ``status`` is what to answer the client."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


async def next_event(connection: h11.Connection, reader: asyncio.StreamReader):
    """The next h11 event of ``connection``, reading from ``reader`` as needed.

    End of stream is handed to h11, which turns it into ``ConnectionClosed``, the end of a
    close-delimited body, or a ``RemoteProtocolError`` in the middle of a message.
    """
    while True:
        event = connection.next_event()
        if event is not h11.NEED_DATA:
            return event
        connection.receive_data(await reader.read(RELAY_CHUNK))


def head_size(request: h11.Request) -> int:
    """About how many bytes a request's head took on the wire."""
    return len(request.target) + sum(len(name) + len(value) + 4 for name, value in request.headers)


def header(headers, name: bytes) -> bytes | None:
    """The value of header ``name`` (lower-case), repeated ones joined by commas."""
    values = [value for key, value in headers if key == name]
    return b", ".join(values) if values else None


def tokens(headers, name: bytes) -> set[bytes]:
    """The comma-separated, lower-cased tokens of a list header such as ``Connection``."""
    value = header(headers, name)
    if not value:
        return set()
    return {token.strip().lower() for token in value.split(b",") if token.strip()}


def end_to_end(headers, drop: frozenset[bytes] = frozenset()) -> Headers:
    """``headers`` without hop-by-hop ones, those the ``Connection`` header names, and ``drop``."""
    listed = tokens(headers, b"connection")
    return [
        (name, value)
        for name, value in headers
        if name not in HOP_BY_HOP and name not in listed and name not in drop
    ]


def json_body(status: int, payload: object) -> bytes:
    """A JSON body; an error payload gets the ``status`` field the model server's errors have."""
    if isinstance(payload, dict) and "error" in payload and "status" not in payload:
        payload = {**payload, "status": status}
    return json.dumps(payload).encode()


def raw_json_response(status: int, payload: object) -> bytes:
    """A complete response that closes the connection, written without a state machine.

    For answers on a connection h11 has given up on (the client sent something unparseable),
    and for the one-request control connections.
    """
    body = json_body(status, payload)
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body
