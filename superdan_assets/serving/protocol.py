"""The wire format of ``/invocations``: content negotiation and request body decoding.

Every way a request can be wrong ends here as a :class:`ClientError` carrying the HTTP status
and a message a person can act on (which row, which field); nothing a client sends may surface
as an unhandled exception, because that would be a 5xx for a client's mistake.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

from superdan_assets.serving.incidents import (
    IncidentColumns,
    InvalidIncidents,
    columns_from_records,
    columns_from_table,
)

JSON = "application/json"
CSV = "text/csv"
#: Request body types ``/invocations`` reads.
CONTENT_TYPES: tuple[str, ...] = (JSON, CSV)
#: Response body types ``/invocations`` writes, in order of preference.
ACCEPT_TYPES: tuple[str, ...] = (JSON, CSV)


@dataclass
class ClientError(Exception):
    """A request the server refuses: HTTP ``status``, a message, optional per-row details."""

    status: int
    message: str
    details: list[dict[str, Any]] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.status}: {self.message}"


def parse_media_type(header: str) -> tuple[str, dict[str, str]]:
    """``"text/csv; charset=UTF-8"`` -> ``("text/csv", {"charset": "UTF-8"})``."""
    kind, _, rest = header.partition(";")
    params: dict[str, str] = {}
    for part in rest.split(";"):
        name, eq, value = part.partition("=")
        if eq:
            params[name.strip().lower()] = value.strip().strip('"')
    return kind.strip().lower(), params


def request_format(content_type: str | None) -> tuple[str, str]:
    """The body's media type and codec name, or a 415 naming what is supported."""
    supported = " or ".join(CONTENT_TYPES)
    if not content_type:
        raise ClientError(415, f"missing Content-Type; send {supported}")
    kind, params = parse_media_type(content_type)
    if kind not in CONTENT_TYPES:
        raise ClientError(415, f"unsupported Content-Type {kind!r}; send {supported}")
    charset = params.get("charset", "utf-8")
    try:
        codec = codecs.lookup(charset).name
        # Only text encodings: str.encode refuses bytes-to-bytes codecs such as base64 or zlib,
        # which ``bytes.decode`` would refuse too, but only once the body has been read.
        "".encode(codec)
    except LookupError:
        raise ClientError(415, f"unsupported charset {charset[:40]!r}; send utf-8") from None
    return kind, codec


def response_format(accept: str | None) -> str:
    """The response media type for an ``Accept`` header (q-values honoured), or a 406."""
    if not accept or not accept.strip():
        return JSON
    best: tuple[float, int, str] | None = None
    for position, item in enumerate(accept.split(",")):
        kind, params = parse_media_type(item)
        try:
            quality = float(params.get("q", "1"))
        except ValueError:
            quality = 0.0
        if quality <= 0:
            continue
        for offered in ACCEPT_TYPES:
            if kind in (offered, "*/*", offered.split("/")[0] + "/*"):
                # Highest q wins; on a tie the client's order (then ours: JSON first).
                rank = (quality, -position, offered)
                if best is None or rank[:2] > best[:2]:
                    best = rank
                break
    if best is None:
        raise ClientError(
            406, f"cannot answer with {accept.strip()[:100]!r}; accept {' or '.join(ACCEPT_TYPES)}"
        )
    return best[2]


def decode_incidents(body: bytes, kind: str, codec: str) -> IncidentColumns:
    """Parse and validate a request body into incident columns, or raise a 400."""
    if not body.strip():
        raise ClientError(400, "empty request body; send at least one incident")
    try:
        text = body.decode(codec)
    except UnicodeError as exc:  # UnicodeDecodeError, and what idna/punycode raise instead
        raise ClientError(400, f"body is not valid {codec}: {str(exc)[:200]}") from None
    text = text.removeprefix("\ufeff")
    try:
        incidents = _decode_json(text) if kind == JSON else _decode_csv(text)
    except InvalidIncidents as exc:
        raise ClientError(
            400,
            f"invalid incident(s): {exc}",
            [error.as_dict() for error in exc.errors],
        ) from None
    if incidents.rows == 0:
        raise ClientError(400, "no incidents in the request")
    return incidents


def _decode_json(text: str) -> IncidentColumns:
    try:
        document = json.loads(text)
    except RecursionError:
        raise ClientError(400, "body is not valid JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, and integers too long to convert
        raise ClientError(400, f"body is not valid JSON: {exc}") from None
    if isinstance(document, dict):
        if "instances" not in document:
            raise ClientError(
                400,
                'expected {"instances": [ {...}, ... ]} or a JSON list of incident objects; '
                f"the object has keys {sorted(document)[:10]}",
            )
        document = document["instances"]
        where = '"instances"'
    else:
        where = "the body"
    if not isinstance(document, list):
        raise ClientError(400, f"{where} must be a JSON list of incident objects")
    return columns_from_records(document)


def _decode_csv(text: str) -> IncidentColumns:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header: list[str] | None = None
        rows: list[list[str]] = []
        for record in reader:
            if not record or (len(record) == 1 and not record[0].strip()):
                continue  # blank line
            if header is None:
                header = [name.strip() for name in record]
                _check_header(header)
                continue
            if len(record) != len(header):
                raise ClientError(
                    400,
                    f"row {len(rows)} (line {reader.line_num}) has {len(record)} field(s); "
                    f"the header has {len(header)}",
                    [{"row": len(rows), "field": "*", "message": "wrong number of fields"}],
                )
            rows.append(record)
    except csv.Error as exc:
        raise ClientError(400, f"body is not valid CSV (line {reader.line_num}): {exc}") from None
    if header is None:
        raise ClientError(400, "CSV body has no header row")
    return columns_from_table(header, rows)


def _check_header(header: list[str]) -> None:
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise ClientError(400, f"CSV header names column {name!r} twice")
        seen.add(name)
