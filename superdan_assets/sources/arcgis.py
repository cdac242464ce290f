"""The Rochester (NY) Police "Part I Crime" ArcGIS FeatureServer layer as a crime source.

This was the original super_dan project's source. The layer stores times as epoch
milliseconds UTC, while the platform partitions by the city's local wall-clock day, so:

- the requested local range is turned into a UTC range for the ``where`` clause, widened
  at DST fall-back (an ambiguous local boundary takes its earliest reading for the start and
  its latest for the end), and the rows are then filtered exactly on local time after
  conversion, so ``start <= date < end`` holds even across a DST change;
- paging follows the service: ``resultOffset``/``resultRecordCount`` ordered by ``OBJECTID``,
  continuing while ``exceededTransferLimit`` is true and advancing by the number of features
  actually returned (a server may cap a page below the requested count);
- ArcGIS reports many failures as HTTP 200 with an ``{"error": {...}}`` body: those with a
  5xx/429-like code are retried, the others (bad query, unknown field: a schema change) fail.

The same mapping (:func:`rochester_to_canonical`) serves the live layer and the CSV snapshot
(:func:`read_rochester_snapshot`), so both produce identical canonical rows.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from superdan_assets.ml.schema import (
    CANONICAL_COLUMNS,
    SchemaError,
    concat_canonical,
    empty_frame,
    to_canonical,
)
from superdan_assets.sources.base import Progress, SourceError, naive_local, noop_progress
from superdan_assets.sources.http import JsonHttpClient, TransientResponseError, retrying_client

DEFAULT_ARCGIS_URL = "https://maps.cityofrochester.gov/arcgis/rest/services/RPD/RPD_Part_I_Crime/FeatureServer/2/query"
ROCHESTER_TZ = "America/New_York"
DATE_FIELD = "OccurredFrom_Timestamp"
OUT_FIELDS: tuple[str, ...] = (
    "OBJECTID",
    "OccurredFrom_Timestamp",
    "OccurredThrough_Timestamp",
    "Reported_Timestamp",
    "Statute_Text",
    "Statute_Description",
    "Weapon_Description",
    "Larceny_Type",
    "Location_Type",
)
#: Without these a Rochester row cannot be identified, dated or labelled.
REQUIRED_FIELDS: tuple[str, ...] = ("OBJECTID", DATE_FIELD, "Statute_Text")
DEFAULT_PAGE_SIZE = 1000
#: ArcGIS error codes worth retrying (server-side or throttling trouble).
_RETRYABLE_CODES = frozenset({429, 500, 502, 503, 504})


# -- mapping ---------------------------------------------------------------------------------


def _numbers(values: pd.Series, column: str, source: str) -> pd.Series:
    raw = values.astype("string").str.strip()
    raw = raw.mask(raw == "", pd.NA)
    parsed = pd.to_numeric(raw, errors="coerce")
    bad = raw.notna() & parsed.isna() & ~raw.str.lower().isin(["nan", "null", "none"]).fillna(False)
    if bad.any():
        examples = values[bad].head(5).tolist()
        raise SchemaError(f"{source}: column {column!r} must be numeric; got e.g. {examples}")
    return parsed.astype("float64")


def epoch_ms_to_local(
    values: pd.Series, column: str, source: str, tz: str = ROCHESTER_TZ
) -> pd.Series:
    """Epoch milliseconds (UTC) as naive local wall-clock time in ``tz``; nulls stay NaT."""
    ms = _numbers(values, column, source)
    try:
        utc = pd.to_datetime(ms, unit="ms", utc=True)
    except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime) as exc:
        raise SchemaError(
            f"{source}: column {column!r} holds epoch ms out of range: {exc}"
        ) from None
    return utc.dt.tz_convert(tz).dt.tz_localize(None).astype("datetime64[ns]")


def _object_ids(values: pd.Series, source: str) -> pd.Series:
    numbers = _numbers(values, "OBJECTID", source)
    fractional = numbers.notna() & (numbers % 1 != 0)
    if fractional.any():
        raise SchemaError(
            f"{source}: OBJECTID must be an integer; got e.g. {values[fractional].head(5).tolist()}"
        )
    return numbers.astype("Int64").astype("string")


def _text(values: pd.Series, upper: bool = False) -> pd.Series:
    text = values.astype("string").str.strip()
    return text.str.upper() if upper else text


def rochester_to_canonical(frame: pd.DataFrame, source: str = "rochester") -> pd.DataFrame:
    """Rochester rows (layer attribute names, plus ``x``/``y`` lon/lat) as a canonical frame.

    ``id`` is OBJECTID, ``date`` OccurredFrom_Timestamp in Rochester local time,
    ``primary_type`` Statute_Text upper-cased (``LARCENY``, ``BURGLARY``), ``description``
    Statute_Description, ``location_description`` Location_Type upper-cased; Chicago-only
    fields are null. Raises :class:`SchemaError` naming ``source`` when a required field is
    missing or a value cannot be converted.
    """
    missing = [c for c in REQUIRED_FIELDS if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"{source}: required Rochester field(s) {missing} missing (the layer's schema "
            f"changed?); got {sorted(frame.columns)}"
        )
    frame = frame.reset_index(drop=True)
    null = pd.Series(pd.NA, index=frame.index, dtype="object")
    mapped = pd.DataFrame(
        {
            "id": _object_ids(frame["OBJECTID"], source),
            "date": epoch_ms_to_local(frame[DATE_FIELD], DATE_FIELD, source),
            "primary_type": _text(frame["Statute_Text"], upper=True),
            "description": _text(frame.get("Statute_Description", null)),
            "location_description": _text(frame.get("Location_Type", null), upper=True),
            "longitude": _numbers(frame.get("x", null), "x", source),
            "latitude": _numbers(frame.get("y", null), "y", source),
        }
    )
    return to_canonical(mapped, "rochester", source=source)


def read_rochester_snapshot(path: str | os.PathLike) -> pd.DataFrame:
    """The CSV snapshot format (``day_2020-04-04.csv``: layer fields plus ``x``/``y``)."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except FileNotFoundError:
        raise SourceError(f"Rochester snapshot {str(path)!r} does not exist") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise SchemaError(f"{path}: cannot parse the Rochester snapshot CSV: {exc}") from None
    return rochester_to_canonical(frame, source=str(path))


def features_to_canonical(features: Any, where: str) -> pd.DataFrame:
    """One page of ArcGIS features (``attributes`` + point ``geometry``) as a canonical frame."""
    if not isinstance(features, list):
        raise SchemaError(f"{where}: 'features' is {type(features).__name__}, not a list")
    if not features:
        return empty_frame()
    rows = []
    for i, feature in enumerate(features):
        attributes = feature.get("attributes") if isinstance(feature, dict) else None
        if not isinstance(attributes, dict):
            raise SchemaError(f"{where}: feature {i} has no 'attributes' object: {feature!r:.200}")
        lacking = [f for f in REQUIRED_FIELDS if f not in attributes]
        if lacking:
            raise SchemaError(
                f"{where}: feature {i} lacks required field(s) {lacking} (the layer's schema "
                f"changed?); its fields: {sorted(attributes)}"
            )
        geometry = feature.get("geometry") or {}
        rows.append({**attributes, "x": geometry.get("x"), "y": geometry.get("y")})
    return rochester_to_canonical(pd.DataFrame.from_records(rows), source=where)


# -- querying --------------------------------------------------------------------------------


def utc_range(
    start: pd.Timestamp, end: pd.Timestamp, tz: str = ROCHESTER_TZ
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The naive UTC range covering local ``[start, end)``, widened at ambiguous boundaries."""
    utc_start = start.tz_localize(tz, ambiguous=True, nonexistent="shift_forward").tz_convert("UTC")
    utc_end = end.tz_localize(tz, ambiguous=False, nonexistent="shift_forward").tz_convert("UTC")
    return utc_start.tz_localize(None), utc_end.tz_localize(None)


def where_clause(utc_start: pd.Timestamp, utc_end: pd.Timestamp) -> str:
    """ArcGIS standardized SQL selecting ``utc_start <= OccurredFrom_Timestamp < utc_end``."""
    fmt = "%Y-%m-%d %H:%M:%S"
    return (
        f"{DATE_FIELD} >= timestamp '{utc_start.strftime(fmt)}' AND "
        f"{DATE_FIELD} < timestamp '{utc_end.strftime(fmt)}'"
    )


def check_arcgis_payload(payload: Any) -> None:
    """Raise for an ArcGIS error body: retryable for 5xx/429-like codes, permanent otherwise."""
    if not isinstance(payload, dict):
        raise SourceError(f"expected a JSON object, got {type(payload).__name__}")
    error = payload.get("error")
    if error is None:
        return
    error = error if isinstance(error, dict) else {"message": error}
    try:
        code = int(error.get("code"))
    except (TypeError, ValueError):
        code = None
    text = f"ArcGIS error {code}: {error.get('message')} {error.get('details') or ''}".strip()
    if code is not None and (code in _RETRYABLE_CODES or code >= 500):
        raise TransientResponseError(text)
    raise SourceError(text)


class ArcGISSource:
    """The Rochester Part I Crime layer as a :class:`~superdan_assets.sources.base.CrimeSource`.

    ``url``: the layer's ``/query`` endpoint. ``page_size``: ``resultRecordCount`` per
    request. ``max_attempts``, ``timeout`` (seconds per request), ``backoff`` (first retry delay,
    doubling, jittered) and ``max_delay``: the retry policy of each request. ``client``: an
    HTTP client to use instead, whose policy then applies.
    """

    name = "rochester_arcgis"
    city = "rochester"

    def __init__(
        self,
        url: str = DEFAULT_ARCGIS_URL,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        max_attempts: int = 5,
        timeout: float = 30.0,
        backoff: float = 1.0,
        max_delay: float = 30.0,
        client: JsonHttpClient | None = None,
    ):
        if page_size < 1:
            raise ValueError(f"page_size must be >= 1, got {page_size}")
        self.url = url
        self.page_size = page_size
        self.client = client or retrying_client(max_attempts, timeout, backoff, max_delay)

    def __repr__(self) -> str:
        return (
            f"ArcGISSource(url={self.url!r}, page_size={self.page_size}, "
            f"policy={self.client.policy!r})"
        )

    def _params(self, where: str, offset: int) -> dict[str, Any]:
        return {
            "where": where,
            "outFields": ",".join(OUT_FIELDS),
            "returnGeometry": "true",
            "outSR": 4326,
            "orderByFields": "OBJECTID",
            "resultOffset": offset,
            "resultRecordCount": self.page_size,
            "f": "json",
        }

    def fetch(
        self, start: pd.Timestamp, end: pd.Timestamp, progress: Progress | None = None
    ) -> pd.DataFrame:
        """Every incident with ``start <= date < end`` (Rochester local time), canonical."""
        progress = progress or noop_progress
        start, end = naive_local(start, ROCHESTER_TZ), naive_local(end, ROCHESTER_TZ)
        if end <= start:
            return empty_frame()
        where = where_clause(*utc_range(start, end))
        parts, offset, page = [], 0, 0
        while True:
            page += 1
            label = f"ArcGIS page {page} (resultOffset {offset}) of [{start} .. {end})"
            payload = self.client.get_json(
                self.url, self._params(where, offset), check=check_arcgis_payload, what=label
            )
            features = payload.get("features")
            frame = features_to_canonical(features, label)
            progress(f"{label}: {len(frame)} features")
            parts.append(frame)
            if not payload.get("exceededTransferLimit"):
                break
            if not features:
                raise SourceError(
                    f"{label}: exceededTransferLimit is true but no features came back"
                )
            offset += len(features)
        return self._finish(concat_canonical(parts), start, end, progress)

    @staticmethod
    def _finish(
        frame: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, progress: Progress
    ) -> pd.DataFrame:
        """Exact local-time filter (the UTC query may be wider at DST) and de-duplication."""
        frame = frame[(frame["date"] >= start) & (frame["date"] < end)]
        duplicated = frame["id"].duplicated(keep="last")
        if duplicated.any():
            progress(
                f"ArcGIS: {int(duplicated.sum())} feature(s) came back twice (the layer changed "
                f"while paging); kept the later copy, e.g. ids {frame.loc[duplicated, 'id'].head(5).tolist()}"
            )
            frame = frame[~duplicated]
        return frame[CANONICAL_COLUMNS].reset_index(drop=True)
