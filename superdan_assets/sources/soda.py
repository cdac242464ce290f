"""A city's Socrata (SODA) dataset, e.g. Chicago's ``ijzp-q8t2``, as a crime source.

How a range is fetched, and why:

- The range is split into chunks (calendar months by default), so a year-long backfill is a
  series of modest queries whose progress can be followed and whose failure costs one chunk.
- Each chunk is a ``$where`` on the spec's date column with *floating* timestamps (Chicago's
  dataset stores wall-clock time without a zone, so no conversion is wanted; a spec with
  ``[date] timezone = "UTC"`` is queried in UTC), paged with ``$limit``/``$offset`` under the
  stable order ``$order=<date>,<id>``: without a total order,
  offset paging may skip or repeat rows. A page shorter than ``$limit`` is the last one.
- Rows can still move while we page (the portal updates records), so rows are de-duplicated
  by ``id`` keeping the most recently updated copy, and the number dropped is reported.
- Every page is checked against the expected record shape before conversion: a missing
  required key or a value that cannot be converted fails with the page and the change named,
  rather than loading a half-understood feed.

The app token (which raises Socrata's throttling limits) is read from an environment variable
at request time, sent as the ``X-App-Token`` header, and never kept on the object, logged or
put into a message.
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from superdan_assets.cities.mapping import SpecMapper
from superdan_assets.cities.spec import CitySpec
from superdan_assets.ml.schema import (
    CANONICAL_COLUMNS,
    SchemaError,
    concat_canonical,
    empty_frame,
)
from superdan_assets.sources.base import Progress, SourceError, naive_local, noop_progress
from superdan_assets.sources.feed import SpecFeed
from superdan_assets.sources.http import JsonHttpClient

APP_TOKEN_HEADER = "X-App-Token"


def soda_timestamp(ts: pd.Timestamp) -> str:
    """A floating timestamp literal for ``$where`` (milliseconds only when needed)."""
    text = ts.strftime("%Y-%m-%dT%H:%M:%S")
    if ts.microsecond or ts.nanosecond:
        text += f".{ts.microsecond // 1000:03d}"
    return text


def where_clause(start: pd.Timestamp, end: pd.Timestamp, field: str = "date") -> str:
    """``$where`` selecting ``start <= field < end`` (inclusive start, exclusive end)."""
    return f"{field} >= '{soda_timestamp(start)}' AND {field} < '{soda_timestamp(end)}'"


def split_range(
    start: pd.Timestamp, end: pd.Timestamp, freq: str | None
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """``[start, end)`` cut at the boundaries of pandas frequency ``freq`` (None: one chunk)."""
    if end <= start:
        return []
    if not freq:
        return [(start, end)]
    cuts = [t for t in pd.date_range(start, end, freq=freq) if start < t < end]
    bounds = [start, *cuts, end]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def records_to_canonical(
    records: list[Any], where: str, mapper: SpecMapper | None = None
) -> pd.DataFrame:
    """One page of SODA JSON records as a canonical frame; ``where`` names the page in errors.

    Raises :class:`SchemaError` if the page is not a list of objects, lacks a required key,
    carries a nested value where a scalar belongs, or has a value that cannot be converted.
    ``mapper``: the city's spec mapping (default: Chicago's packaged spec).
    """
    mapper = mapper or SpecMapper(_chicago())
    if not isinstance(records, list):
        raise SchemaError(f"{where}: expected a JSON list of records, got {type(records).__name__}")
    if not records:
        return empty_frame()
    wanted = set(mapper.source_columns)
    _check_record_shape(records, where, mapper, wanted)
    frame = pd.DataFrame.from_records(
        [{k: v for k, v in r.items() if k in wanted} for r in records]
    )
    try:
        return mapper.to_canonical(frame, where=where, strict=False)
    except SchemaError as exc:
        raise SchemaError(f"{exc} (the SODA dataset's types may have changed)") from None


def _chicago():
    from superdan_assets.cities.catalog import resolve_spec

    return resolve_spec("chicago")


def _check_record_shape(
    records: list[Any], where: str, mapper: SpecMapper, wanted: set[str]
) -> None:
    required = [mapper.columns[f] for f in mapper.strict_fields()]
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise SchemaError(f"{where}: record {i} is {type(record).__name__}, not an object")
        missing = [k for k in required if k not in record]
        if missing:
            new_keys = sorted(set(record) - wanted - {"year", "location"})
            hint = f"; keys not in the city spec: {new_keys}" if new_keys else ""
            raise SchemaError(
                f"{where}: record {i} lacks required key(s) {missing} (the SODA dataset's schema "
                f"changed?){hint}; record keys: {sorted(record)}"
            )
        nested = sorted(k for k, v in record.items() if k in wanted and isinstance(v, dict | list))
        if nested:
            raise SchemaError(
                f"{where}: record {i} has nested values for scalar field(s) {nested}: "
                f"{ {k: record[k] for k in nested} }"
            )


def deduplicate_latest(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Keep one row per ``id``: the most recently updated (the later page on ties).

    Returns the frame (rows in their original order) and the ids that had duplicates.
    """
    if frame.empty or not frame["id"].duplicated().any():
        return frame, []
    dup_ids = sorted(frame.loc[frame["id"].duplicated(), "id"].unique())
    order = frame.assign(_pos=range(len(frame))).sort_values(
        ["updated_on", "_pos"], na_position="first", kind="stable"
    )
    kept = order.drop_duplicates("id", keep="last").sort_values("_pos").drop(columns="_pos")
    return kept.reset_index(drop=True), dup_ids


class SodaSource(SpecFeed):
    """A city's Socrata (SODA) dataset as a :class:`~superdan_assets.sources.base.CrimeSource`.

    ``spec``: the city (default: Chicago's packaged spec); ``url``, ``page_size`` (``$limit``
    per request) and ``app_token_env`` (the environment variable holding the optional app
    token) default to the spec's ``[source]``. ``chunk_freq``: pandas frequency the range is
    split at (``"MS"`` months; None: no split). ``max_attempts``, ``timeout`` (seconds per
    request), ``backoff`` (first retry delay, doubling, jittered) and ``max_delay``: the retry
    policy of each request (see :class:`~superdan_assets.sources.http.RetryPolicy`).
    ``client``: an HTTP client to use instead, whose policy then applies.
    """

    kind = "soda"

    def __init__(
        self,
        spec: CitySpec | None = None,
        url: str | None = None,
        *,
        page_size: int | None = None,
        app_token_env: str | None = None,
        chunk_freq: str | None = "MS",
        max_attempts: int | None = None,
        timeout: float | None = None,
        backoff: float | None = None,
        max_delay: float = 30.0,
        client: JsonHttpClient | None = None,
    ):
        spec = spec or _chicago()
        self._configure(spec, url, page_size, max_attempts, timeout, backoff, max_delay, client)
        self.app_token_env = app_token_env or spec.source.app_token_env or "SUPERDAN_SODA_APP_TOKEN"
        self.chunk_freq = chunk_freq

    def __repr__(self) -> str:
        # The token's *variable name* only: its value must never reach logs or metadata.
        return (
            f"SodaSource(city={self.city!r}, url={self.url!r}, page_size={self.page_size}, "
            f"app_token_env={self.app_token_env!r}, chunk_freq={self.chunk_freq!r}, "
            f"policy={self.client.policy!r})"
        )

    def _headers(self) -> dict[str, str]:
        token = os.environ.get(self.app_token_env, "").strip()
        return {APP_TOKEN_HEADER: token} if token else {}

    def fetch(
        self, start: pd.Timestamp, end: pd.Timestamp, progress: Progress | None = None
    ) -> pd.DataFrame:
        """Every incident with ``start <= date < end`` (the city's local time), canonical."""
        progress = progress or noop_progress
        tz = self.spec.timezone
        start, end = naive_local(start, tz), naive_local(end, tz)
        chunks = split_range(start, end, self.chunk_freq)
        parts = []
        for number, (chunk_start, chunk_end) in enumerate(chunks, 1):
            part, pages = self._fetch_chunk(chunk_start, chunk_end, progress)
            progress(
                f"SODA chunk {number}/{len(chunks)} [{chunk_start} .. {chunk_end}): "
                f"{len(part)} rows in {pages} page(s)"
            )
            parts.append(part)
        frame = concat_canonical(parts)
        frame, dup_ids = deduplicate_latest(frame)
        if dup_ids:
            progress(
                f"SODA: {len(dup_ids)} id(s) were returned more than once (the data changed "
                f"while paging); kept the last-updated row of each, e.g. {dup_ids[:5]}"
            )
        return frame[CANONICAL_COLUMNS].reset_index(drop=True)

    def _fetch_chunk(
        self, start: pd.Timestamp, end: pd.Timestamp, progress: Progress
    ) -> tuple[pd.DataFrame, int]:
        query_start, query_end = start, end
        if self.spec.date.timezone == "UTC":
            from superdan_assets.sources.arcgis import utc_range

            query_start, query_end = utc_range(start, end, self.spec.timezone)
        where = where_clause(query_start, query_end, self.mapper.date_column)
        order = ",".join(c for c in (self.mapper.date_column, self.mapper.id_column) if c)
        parts, offset, page = [], 0, 0
        while True:
            page += 1
            label = f"SODA page {page} (offset {offset}) of [{start} .. {end})"
            params = {
                "$where": where,
                "$order": order,
                "$limit": self.page_size,
                "$offset": offset,
            }
            records = self.client.get_json(self.url, params, headers=self._headers(), what=label)
            frame = records_to_canonical(records, label, self.mapper)
            outside = (frame["date"] < start) | (frame["date"] >= end)
            if outside.any():
                raise SourceError(
                    f"{label}: the server returned {int(outside.sum())} row(s) outside the "
                    f"requested range (e.g. ids {frame.loc[outside, 'id'].head(3).tolist()}); "
                    "it does not honour the $where filter"
                )
            progress(f"{label}: {len(records)} rows")
            parts.append(frame)
            if len(records) < self.page_size:
                return concat_canonical(parts), page
            offset += self.page_size
