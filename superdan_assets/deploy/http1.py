"""Just enough HTTP/1.1 for the rolling proxy: message heads, and bodies by length or by chunks.

Why hand-written rather than a framework: the proxy must relay bytes between two sockets with
keep-alive on both sides, retry a request on a fresh upstream connection when a pooled one
turns out to be closed, and stay small enough to start in a fraction of a second with nothing
but the standard library (it runs beside, not inside, the model server). The parts of RFC 9112
it needs are message framing and hop-by-hop headers; that is what this module implements, and
anything it does not understand is refused with a 4xx/5xx status rather than guessed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

#: Longest request or response head (start line + headers) accepted.
MAX_HEAD_BYTES = 64 * 1024
#: Size of the pieces a streamed body is relayed in.
RELAY_CHUNK = 64 * 1024
#: Headers that describe one connection, never forwarded by a proxy (RFC 9110 section 7.6.1).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)

Headers = list[tuple[str, str]]


class ProtocolError(Exception):
    """A message the proxy cannot handle; ``status`` is what to answer the client."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Message:
    """A parsed request or response head.

    For a request ``first``/``second``/``third`` are method, target, version; for a response
    they are version, status code, reason phrase.
    """

    first: str
    second: str
    third: str
    headers: Headers

    def get(self, name: str) -> str | None:
        """The value of header ``name`` (case-insensitive); repeated headers joined by commas."""
        name = name.lower()
        values = [value for key, value in self.headers if key.lower() == name]
        return ", ".join(values) if values else None

    def tokens(self, name: str) -> set[str]:
        """The comma-separated, lower-cased tokens of a list header such as ``Connection``."""
        value = self.get(name)
        if not value:
            return set()
        return {token.strip().lower() for token in value.split(",") if token.strip()}


async def read_head(reader: asyncio.StreamReader) -> bytes | None:
    """The next message head including its blank line, or ``None`` on a clean end of stream."""
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise ProtocolError(400, "connection closed in the middle of a message head") from None
    except asyncio.LimitOverrunError:
        raise ProtocolError(431, f"message head larger than {MAX_HEAD_BYTES} bytes") from None


def parse_head(raw: bytes) -> Message:
    """Split a head into its start line's three parts and its header list."""
    text = raw.decode("latin-1")
    lines = text.split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2:
        raise ProtocolError(400, f"malformed start line {lines[0][:80]!r}")
    if len(parts) == 2:
        parts.append("")
    headers: Headers = []
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t":
            raise ProtocolError(400, "obsolete header line folding is not accepted")
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise ProtocolError(400, f"malformed header line {line[:80]!r}")
        headers.append((name, value.strip()))
    return Message(parts[0], parts[1], parts[2], headers)


def parse_request(raw: bytes) -> Message:
    """A request head; refuses anything but HTTP/1.0 and HTTP/1.1."""
    message = parse_head(raw)
    if message.third not in ("HTTP/1.1", "HTTP/1.0"):
        raise ProtocolError(505, f"unsupported protocol version {message.third[:20]!r}")
    return message


def parse_response(raw: bytes) -> Message:
    """A response head; the status code must be three digits."""
    message = parse_head(raw)
    if not message.first.startswith("HTTP/1.") or not (
        len(message.second) == 3 and message.second.isdigit()
    ):
        raise ProtocolError(502, "upstream sent a malformed status line")
    return message


def wants_keep_alive(message: Message, version: str) -> bool:
    """Whether the sender of ``message`` keeps the connection open afterwards."""
    tokens = message.tokens("connection")
    if version == "HTTP/1.1":
        return "close" not in tokens
    return "keep-alive" in tokens


def content_length(message: Message) -> int | None:
    """The declared body length, or ``None``; conflicting or invalid values are refused."""
    values = {value.strip() for key, value in message.headers if key.lower() == "content-length"}
    values = {part.strip() for value in values for part in value.split(",")}
    if not values:
        return None
    if len(values) > 1 or not next(iter(values)).isdigit():
        raise ProtocolError(400, "invalid or conflicting Content-Length")
    return int(next(iter(values)))


def is_chunked(message: Message) -> bool:
    """Whether the body is chunked; any other transfer coding is refused."""
    codings = [token for token in message.tokens("transfer-encoding") if token != "identity"]
    if not codings:
        return False
    if codings != ["chunked"]:
        raise ProtocolError(
            501, f"unsupported Transfer-Encoding {message.get('transfer-encoding')!r}"
        )
    return True


def end_to_end(headers: Headers, message: Message, drop: frozenset[str] = frozenset()) -> Headers:
    """``headers`` without hop-by-hop ones, those ``Connection`` names, and ``drop``."""
    listed = message.tokens("connection")
    return [
        (name, value)
        for name, value in headers
        if (lowered := name.lower()) not in HOP_BY_HOP
        and lowered not in listed
        and lowered not in drop
    ]


def serialize_head(start_line: str, headers: Headers) -> bytes:
    """A head ready to write: start line, headers, blank line."""
    lines = [start_line, *(f"{name}: {value}" for name, value in headers), "", ""]
    return "\r\n".join(lines).encode("latin-1")


async def _chunk_size(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """The size announced by the next chunk-size line, and the raw line."""
    try:
        line = await reader.readuntil(b"\r\n")
    except asyncio.LimitOverrunError:
        raise ProtocolError(400, "chunk-size line too long") from None
    try:
        return int(line.split(b";", 1)[0].strip(), 16), line
    except ValueError:
        raise ProtocolError(400, f"invalid chunk size {line[:20]!r}") from None


async def _trailers(reader: asyncio.StreamReader) -> bytes:
    """Trailer lines after the last chunk, through the terminating blank line."""
    raw = b""
    while True:
        line = await reader.readuntil(b"\r\n")
        raw += line
        if line == b"\r\n":
            return raw
        if len(raw) > MAX_HEAD_BYTES:
            raise ProtocolError(400, "chunked trailers too large")


async def read_body(reader: asyncio.StreamReader, message: Message, limit: int) -> bytes:
    """A whole request body (de-chunked), refusing one larger than ``limit`` bytes with 413.

    Request bodies are buffered on purpose: a request whose upstream connection fails before
    any response byte arrives is re-sent on a fresh connection, which needs the body.
    """
    if is_chunked(message):
        parts: list[bytes] = []
        total = 0
        while True:
            size, _ = await _chunk_size(reader)
            if size == 0:
                await _trailers(reader)
                return b"".join(parts)
            total += size
            if total > limit:
                raise ProtocolError(413, f"request body larger than {limit} bytes")
            data = await reader.readexactly(size + 2)
            if not data.endswith(b"\r\n"):
                raise ProtocolError(400, "chunk not terminated by CRLF")
            parts.append(data[:-2])
    length = content_length(message) or 0
    if length > limit:
        raise ProtocolError(413, f"request body larger than {limit} bytes")
    return await reader.readexactly(length) if length else b""


async def relay_exact(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, length: int
) -> None:
    """Copy exactly ``length`` bytes, streaming; a short read raises ``IncompleteReadError``."""
    remaining = length
    while remaining:
        data = await reader.read(min(RELAY_CHUNK, remaining))
        if not data:
            raise asyncio.IncompleteReadError(b"", remaining)
        writer.write(data)
        await writer.drain()
        remaining -= len(data)


async def relay_chunked(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, dechunk: bool
) -> None:
    """Copy a chunked body chunk by chunk: as is, or de-chunked for an HTTP/1.0 client."""
    while True:
        size, line = await _chunk_size(reader)
        if size == 0:
            trailers = await _trailers(reader)
            if not dechunk:
                writer.write(line + trailers)
                await writer.drain()
            return
        if not dechunk:
            writer.write(line)
        await relay_exact(reader, writer, size)
        crlf = await reader.readexactly(2)
        if crlf != b"\r\n":
            raise ProtocolError(502, "upstream chunk not terminated by CRLF")
        if not dechunk:
            writer.write(crlf)
        await writer.drain()


async def relay_until_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy a body delimited by the end of the connection."""
    while data := await reader.read(RELAY_CHUNK):
        writer.write(data)
        await writer.drain()
