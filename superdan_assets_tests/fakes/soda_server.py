"""A fake of the Chicago SODA endpoint ``/resource/ijzp-q8t2.json``.

Implements the subset of SoQL the client uses, strictly enough that a client bug shows up as
a 400 rather than as silently wrong data:

- ``$where=date >= 'YYYY-MM-DDThh:mm:ss[.fff]' AND date < '...'`` (floating timestamps);
  absent means every record;
- ``$order`` as a comma-separated field list, each optionally ``ASC``/``DESC``; ``id`` and
  other all-digit values sort as numbers, ``date`` as a timestamp;
- ``$limit`` (default 1000, as SODA) and ``$offset`` (default 0).

Records are given as the API returns them (see :func:`soda_record`): snake_case keys, values
mostly strings, null fields omitted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from superdan_assets_tests.fakes import FakeHTTPServer, Response

SODA_PATH = "/resource/ijzp-q8t2.json"
DEFAULT_LIMIT = 1000

_WHERE = re.compile(
    r"^\s*date\s*>=\s*'(?P<start>[^']+)'\s+AND\s+date\s*<\s*'(?P<end>[^']+)'\s*$",
    re.IGNORECASE,
)


def soda_record(
    record_id: int | str, date: str, primary_type: str = "THEFT", **fields: Any
) -> dict:
    """A record shaped like the live API's JSON (numbers as strings, nested ``location``).

    ``date`` is ``YYYY-MM-DDThh:mm:ss`` (the API's ``.000`` is appended). Pass ``field=None``
    to omit a key, as the API does for nulls.
    """
    stamp = date if "." in date else f"{date}.000"
    record: dict[str, Any] = {
        "id": str(record_id),
        "case_number": f"JA{int(record_id) % 1_000_000:06d}" if str(record_id).isdigit() else "JA0",
        "date": stamp,
        "block": "001XX N STATE ST",
        "iucr": "0820" if primary_type == "THEFT" else "0610",
        "primary_type": primary_type,
        "description": "$500 AND UNDER" if primary_type == "THEFT" else "FORCIBLE ENTRY",
        "location_description": "STREET",
        "arrest": False,
        "domestic": False,
        "beat": "0111",
        "district": "001",
        "ward": "42",
        "community_area": "32",
        "fbi_code": "06" if primary_type == "THEFT" else "05",
        "x_coordinate": "1176352",
        "y_coordinate": "1901000",
        "year": stamp[:4],
        "updated_on": "2019-01-01T15:50:00.000",
        "latitude": "41.883",
        "longitude": "-87.628",
        "location": {"latitude": "41.883", "longitude": "-87.628", "human_address": "{}"},
    }
    for key, value in fields.items():
        if value is None:
            record.pop(key, None)
        else:
            record[key] = value
    return record


def _parse_timestamp(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _sort_value(value: Any) -> tuple:
    """Sort key: missing first, then numbers (all-digit strings), then timestamps/strings."""
    if value is None:
        return (0, 0, "")
    text = str(value)
    if text.lstrip("-").isdigit():
        return (1, int(text), "")
    return (2, 0, text)


class FakeSodaServer(FakeHTTPServer):
    """Serves ``records`` as the SODA resource ``ijzp-q8t2`` at :attr:`url`."""

    path = SODA_PATH

    def __init__(self, records: Iterable[dict] = ()) -> None:
        super().__init__()
        self._records: list[dict] = [dict(r) for r in records]
        self._renames: dict[str, str] = {}

    # -- data and schema ------------------------------------------------------------------
    def set_records(self, records: Iterable[dict]) -> None:
        """Replace the served records (safe while a client is paging)."""
        copied = [dict(r) for r in records]
        with self._lock:
            self._records = copied

    @property
    def records(self) -> list[dict]:
        """A copy of the served records."""
        with self._lock:
            return [dict(r) for r in self._records]

    def rename_field(self, old: str, new: str) -> None:
        """Serve key ``old`` as ``new`` from now on (a schema change upstream).

        Filtering and ordering still use the original field, as the real dataset would.
        """
        with self._lock:
            self._renames[old] = new

    def _reset_schema(self) -> None:
        self._renames.clear()

    # -- query semantics ------------------------------------------------------------------
    def page_offset(self, params: dict[str, str]) -> int:
        return int(params.get("$offset", "0"))

    def error_response(self, status: int, message: str) -> Response:
        return Response(status, {"code": f"http.{status}", "error": True, "message": message})

    def handle(self, params: dict[str, str]) -> Response:
        try:
            limit = int(params.get("$limit", DEFAULT_LIMIT))
            offset = int(params.get("$offset", "0"))
            if limit < 0 or offset < 0:
                raise ValueError("negative $limit/$offset")
            with self._lock:
                records = list(self._records)
                renames = dict(self._renames)
            selected = self._order(self._where(records, params.get("$where")), params.get("$order"))
        except ValueError as exc:
            return self.error_response(400, f"query.compiler.malformed: {exc}")
        page = selected[offset : offset + limit]
        return Response(200, [_renamed(r, renames) for r in page])

    @staticmethod
    def _where(records: list[dict], where: str | None) -> list[dict]:
        if where is None:
            return records
        match = _WHERE.match(where)
        if match is None:
            raise ValueError(f"unsupported $where {where!r}")
        start = _parse_timestamp(match["start"])
        end = _parse_timestamp(match["end"])
        return [r for r in records if "date" in r and start <= _parse_timestamp(r["date"]) < end]

    @staticmethod
    def _order(records: list[dict], order: str | None) -> list[dict]:
        if not order:
            return records
        ordered = list(records)
        # Sort by the last key first: Python's sort is stable, so earlier keys win.
        for term in reversed([t.strip() for t in order.split(",") if t.strip()]):
            name, _, direction = term.partition(" ")
            direction = direction.strip().upper() or "ASC"
            if direction not in ("ASC", "DESC"):
                raise ValueError(f"unsupported $order term {term!r}")
            ordered.sort(key=lambda r, n=name: _sort_value(r.get(n)), reverse=direction == "DESC")
        return ordered


def _renamed(record: dict, renames: dict[str, str]) -> dict:
    return {renames.get(k, k): v for k, v in record.items()}
