"""A city's ArcGIS FeatureServer layer (e.g. the Rochester (NY) Police "Part I Crime" layer,
the original super_dan project's source) as a crime source.

Rochester's layer stores times as epoch milliseconds UTC, while the platform partitions by the
city's local wall-clock day, so:

- the requested local range is turned into a UTC range for the ``where`` clause, widened
  at DST fall-back (an ambiguous local boundary takes its earliest reading for the start and
  its latest for the end), and the rows are then filtered exactly on local time after
  conversion, so ``start <= date < end`` holds even across a DST change;
- paging follows the service: ``resultOffset``/``resultRecordCount`` ordered by the id field,
  continuing while ``exceededTransferLimit`` is true and advancing by the number of features
  actually returned (a server may cap a page below the requested count);
- ArcGIS reports many failures as HTTP 200 with an ``{"error": {...}}`` body: those with a
  5xx/429-like code are retried, the others (bad query, unknown field: a schema change) fail.

Which attribute is which canonical field is the city spec's ``[columns]``; the source columns
``x`` and ``y`` name the point geometry (``outSR=4326``: longitude and latitude). The same
mapping serves the live layer and a CSV snapshot of it (a ``csv`` spec with the same columns).
"""

from __future__ import annotations

import os
from pathlib import Path
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
from superdan_assets.sources.http import JsonHttpClient, TransientResponseError

#: Source column names that are read from each feature's point geometry, not its attributes.
GEOMETRY_FIELDS = ("x", "y")
#: ArcGIS error codes worth retrying (server-side or throttling trouble).
_RETRYABLE_CODES = frozenset({429, 500, 502, 503, 504})


def _rochester() -> CitySpec:
    from superdan_assets.cities.catalog import resolve_spec

    return resolve_spec("rochester")


def rochester_to_canonical(frame: pd.DataFrame, source: str = "rochester") -> pd.DataFrame:
    """Rochester rows (layer attribute names, plus ``x``/``y`` lon/lat) as a canonical frame,
    by the packaged Rochester spec."""
    if frame.empty and len(frame.columns) == 0:
        return empty_frame()
    return SpecMapper(_rochester()).to_canonical(frame, where=source)


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


def features_to_canonical(
    features: Any, where: str, mapper: SpecMapper | None = None
) -> pd.DataFrame:
    """One page of ArcGIS features (``attributes`` + point ``geometry``) as a canonical frame."""
    mapper = mapper or SpecMapper(_rochester())
    if not isinstance(features, list):
        raise SchemaError(f"{where}: 'features' is {type(features).__name__}, not a list")
    if not features:
        return empty_frame()
    required = [mapper.columns[f] for f in mapper.strict_fields()]
    rows = []
    for i, feature in enumerate(features):
        attributes = feature.get("attributes") if isinstance(feature, dict) else None
        if not isinstance(attributes, dict):
            raise SchemaError(f"{where}: feature {i} has no 'attributes' object: {feature!r:.200}")
        lacking = [f for f in required if f not in attributes and f not in GEOMETRY_FIELDS]
        if lacking:
            raise SchemaError(
                f"{where}: feature {i} lacks required field(s) {lacking} (the layer's schema "
                f"changed?); its fields: {sorted(attributes)}"
            )
        geometry = feature.get("geometry") or {}
        rows.append({**attributes, "x": geometry.get("x"), "y": geometry.get("y")})
    return mapper.to_canonical(pd.DataFrame.from_records(rows), where=where)


# -- querying --------------------------------------------------------------------------------


def utc_range(start: pd.Timestamp, end: pd.Timestamp, tz: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The naive UTC range covering local ``[start, end)``, widened at ambiguous boundaries."""
    utc_start = start.tz_localize(tz, ambiguous=True, nonexistent="shift_forward").tz_convert("UTC")
    utc_end = end.tz_localize(tz, ambiguous=False, nonexistent="shift_forward").tz_convert("UTC")
    return utc_start.tz_localize(None), utc_end.tz_localize(None)


def where_clause(
    utc_start: pd.Timestamp, utc_end: pd.Timestamp, field: str = "OccurredFrom_Timestamp"
) -> str:
    """ArcGIS standardized SQL selecting ``utc_start <= field < utc_end``."""
    fmt = "%Y-%m-%d %H:%M:%S"
    return (
        f"{field} >= timestamp '{utc_start.strftime(fmt)}' AND "
        f"{field} < timestamp '{utc_end.strftime(fmt)}'"
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


class ArcGISSource(SpecFeed):
    """A city's ArcGIS layer as a :class:`~superdan_assets.sources.base.CrimeSource`.

    ``spec``: the city (default: Rochester's packaged spec); ``url`` (the layer's ``/query``
    endpoint) and ``page_size`` (``resultRecordCount`` per request, at most 2000) default to
    its ``[source]``. ``max_attempts``, ``timeout`` (seconds per request), ``backoff`` (first
    retry delay, doubling, jittered) and ``max_delay``: the retry policy of each request.
    ``client``: an HTTP client to use instead, whose policy then applies.
    """

    kind = "arcgis"
    max_page_size = 2000

    def __init__(
        self,
        spec: CitySpec | None = None,
        url: str | None = None,
        *,
        page_size: int | None = None,
        max_attempts: int | None = None,
        timeout: float | None = None,
        backoff: float | None = None,
        max_delay: float = 30.0,
        client: JsonHttpClient | None = None,
    ):
        spec = spec or _rochester()
        self._configure(spec, url, page_size, max_attempts, timeout, backoff, max_delay, client)
        self.out_fields = [c for c in self.mapper.source_columns if c not in GEOMETRY_FIELDS]

    def __repr__(self) -> str:
        return (
            f"ArcGISSource(city={self.city!r}, url={self.url!r}, page_size={self.page_size}, "
            f"policy={self.client.policy!r})"
        )

    def _params(self, where: str, offset: int) -> dict[str, Any]:
        return {
            "where": where,
            "outFields": ",".join(self.out_fields),
            "returnGeometry": "true",
            "outSR": 4326,
            "orderByFields": self.mapper.id_column or self.mapper.date_column,
            "resultOffset": offset,
            "resultRecordCount": self.page_size,
            "f": "json",
        }

    def fetch(
        self, start: pd.Timestamp, end: pd.Timestamp, progress: Progress | None = None
    ) -> pd.DataFrame:
        """Every incident with ``start <= date < end`` (the city's local time), canonical."""
        progress = progress or noop_progress
        tz = self.spec.timezone
        start, end = naive_local(start, tz), naive_local(end, tz)
        if end <= start:
            return empty_frame()
        if self.spec.date.timezone == "UTC":
            query_range = utc_range(start, end, tz)
        else:
            query_range = (start, end)
        where = where_clause(*query_range, field=self.mapper.date_column)
        parts, offset, page = [], 0, 0
        while True:
            page += 1
            label = f"ArcGIS page {page} (resultOffset {offset}) of [{start} .. {end})"
            payload = self.client.get_json(
                self.url, self._params(where, offset), check=check_arcgis_payload, what=label
            )
            features = payload.get("features")
            frame = features_to_canonical(features, label, self.mapper)
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
