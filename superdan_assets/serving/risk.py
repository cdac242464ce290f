"""``GET /risk`` and ``POST /risk``: the street-risk forecasts, served beside the classifier.

Where the forecasts come from: a street-risk directory, ``$SUPERDAN_RISK_DIR`` or else
``<model dir>/street_risk`` (so a SageMaker model archive can carry both)::

    model.json, model.joblib         the street-risk artifact (``ml/street_risk/artifact.py``)
    forecasts/<YYYY-MM-DD>.parquet   the ``street_risk`` asset's daily forecast frames

or the ``street_risk`` folder of local storage itself (``models/production.json`` names the
deployed version, whose artifact is ``models/<version>/``). A bundle made from local storage
also holds ``live.json``, ``{"forecasts": "<the storage's forecast folder>"}``: forecasts are
then read from there, so a local endpoint serves each new day's forecast as soon as the asset
wrote it (if that folder is gone, the bundled copies are served and a warning logged). Dates
are listed on every request. Each answer names the street-risk model that made the day's
forecast (kept in the Parquet file's metadata), which after a retraining may be newer than
the artifact verified at start.

The artifact's sha256 is verified when the server starts and a mismatch or a non-street-risk
manifest is refused (``/risk`` then answers 503 saying why; the classifier keeps serving). The
server never unpickles the street-risk model: it answers from the forecast frames, which are
Parquet (data, not code). A day's frame is read on first use and kept (a few MB per day; the
``cache_days`` most recent are kept).

Calls (errors follow ``/invocations``: 4xx with a JSON reason, never a 5xx from a request):

* ``GET /risk?date=YYYY-MM-DD&type=burglary&top=N``: the N riskiest places (default 20, at
  most 1000); ``type`` is ``burglary`` (default) or ``theft``; ``date`` defaults to the latest.
* ``POST /risk`` with ``{"date": ..., "points": [{"latitude": .., "longitude": ..}, ...]}``
  (or a bare list of points; ``lat``/``lon`` accepted): per point, its place (the nearest one
  within ``max_distance_m``, 250 m) and both types' risk, or ``"place": null`` with a reason.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import numpy as np
import pandas as pd

from superdan_assets.ml.artifact import ModelIntegrityError, read_manifest, verify_artifact
from superdan_assets.serving.protocol import ClientError

logger = logging.getLogger(__name__)

RISK_DIR_ENV = "SUPERDAN_RISK_DIR"
RISK_SUBDIR = "street_risk"
FORECASTS = "forecasts"
#: In a bundle: where the live forecasts are (written by ``assets/street_risk.endpoint_bundle``).
LIVE_POINTER = "live.json"
#: Parquet schema metadata key of a forecast file: the street-risk model version that made it.
MODEL_VERSION_METADATA = "superdan.street_risk_model_version"
CRIME_TYPES = ("burglary", "theft")
MAX_TOP = 1000
MAX_POINTS = 10_000
DEFAULT_TOP = 20
MAX_DISTANCE_M = 250.0
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass
class _Day:
    """One day's forecast, indexed for both calls."""

    frame: pd.DataFrame
    by_type: dict[str, pd.DataFrame]
    units: Any  # superdan_assets.ml.street_risk.units.Units of the day's places
    model_version: str


class RiskService:
    """Answers the ``/risk`` calls from a verified street-risk directory."""

    def __init__(self, directory: str | os.PathLike, cache_days: int = 8):
        self.directory = Path(directory)
        artifact = _artifact_dir(self.directory)
        verify_artifact(artifact)  # raises ModelIntegrityError on a mismatch
        self.manifest = read_manifest(artifact)
        if self.manifest.get("kind") != "street_risk":
            raise ModelIntegrityError(
                f"{str(self.directory)!r} holds a {self.manifest.get('kind', 'classifier')!r} "
                "artifact, not a 'street_risk' one"
            )
        self.version = str(self.manifest["version"])
        self.forecasts = _forecast_folder(self.directory)
        self._cache: OrderedDict[str, tuple[tuple[int, int, int], _Day]] = OrderedDict()
        self._cache_days = cache_days
        self._lock = threading.Lock()

    # -- forecasts --------------------------------------------------------------------
    def dates(self) -> list[str]:
        folder = self.forecasts
        if not folder.is_dir():
            return []
        return sorted(p.stem for p in folder.glob("*.parquet") if _DATE.match(p.stem))

    def _day(self, date: str | None) -> tuple[str, _Day]:
        available = self.dates()
        if not available:
            raise ClientError(404, "no street-risk forecast has been deployed yet")
        if date is None:
            date = available[-1]
        elif not _DATE.match(date) or not _valid_date(date):
            raise ClientError(400, f"date {date[:40]!r} is not a YYYY-MM-DD day")
        if date not in available:
            raise ClientError(
                404,
                f"no street-risk forecast for {date}; available {available[0]}..{available[-1]}",
            )
        # Keyed by the file's identity too: a day forecast again (a re-run of the asset
        # replaces the file, so its inode and time change) is read afresh, not from the cache.
        try:
            stat = (self.forecasts / f"{date}.parquet").stat()
            stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            raise ClientError(
                404, f"the street-risk forecast for {date} was just removed"
            ) from None
        with self._lock:
            cached = self._cache.get(date)
            if cached is not None and cached[0] == stamp:
                self._cache.move_to_end(date)
                return date, cached[1]
        day = self._load(date)
        with self._lock:
            self._cache[date] = (stamp, day)
            while len(self._cache) > self._cache_days:
                self._cache.popitem(last=False)
        return date, day

    def _load(self, date: str) -> _Day:
        import pyarrow.parquet as pq

        from superdan_assets.ml.street_risk.units import Units, reference_latitude

        table = pq.read_table(self.forecasts / f"{date}.parquet")
        made_by = (table.schema.metadata or {}).get(MODEL_VERSION_METADATA.encode())
        frame = table.to_pandas()
        by_type = {
            t: frame[frame["crime_type"] == t].set_index("unit", drop=False).sort_values("rank")
            for t in CRIME_TYPES
        }
        places = frame.drop_duplicates("unit").reset_index(drop=True)
        units = Units(
            kind="cell" if str(places["unit"].iloc[0]).startswith("cell:") else "block",
            keys=places["unit"].astype(str).to_numpy(dtype=object),
            latitude=places["latitude"].to_numpy(dtype=float),
            longitude=places["longitude"].to_numpy(dtype=float),
            ref_lat=reference_latitude(places["latitude"]),
        )
        return _Day(frame, by_type, units, made_by.decode() if made_by else self.version)

    # -- calls ------------------------------------------------------------------------
    def top(self, query_string: bytes) -> dict[str, Any]:
        params = _query(query_string)
        crime_type = _crime_type(params.get("type"))
        top = _top(params.get("top"))
        date, day = self._day(params.get("date"))
        rows = day.by_type[crime_type].head(top)
        return {
            "date": date,
            "type": crime_type,
            "model_version": day.model_version,
            "places": int(len(day.by_type[crime_type])),
            "top": [_place(row) for row in rows.itertuples(index=False)],
        }

    def points(self, body: bytes) -> dict[str, Any]:
        document = _json_body(body)
        date = None
        if isinstance(document, dict):
            date = document.get("date")
            if date is not None and not isinstance(date, str):
                raise ClientError(400, "date must be a string YYYY-MM-DD")
            points = document.get("points", document.get("instances"))
        else:
            points = document
        if not isinstance(points, list) or not points:
            raise ClientError(
                400, 'expected {"points": [{"latitude": .., "longitude": ..}, ...]} or a list'
            )
        if len(points) > MAX_POINTS:
            raise ClientError(413, f"{len(points)} points; at most {MAX_POINTS} per request")
        lat, lon = _coordinates(points)
        date, day = self._day(date)
        index, distance = day.units.nearest(lat, lon, MAX_DISTANCE_M)
        results = []
        for i, d in zip(index.tolist(), distance.tolist(), strict=True):
            if i < 0:
                results.append(
                    {"place": None, "reason": f"no forecast place within {MAX_DISTANCE_M:g} m"}
                )
                continue
            key = day.units.keys[i]
            entry: dict[str, Any] = {"place": str(key), "distance_m": round(d, 1)}
            for crime_type in CRIME_TYPES:
                row = day.by_type[crime_type].loc[key]
                entry[crime_type] = {
                    "probability": float(row["probability"]),
                    "expected_count": float(row["expected_count"]),
                    "rank": int(row["rank"]),
                    "percentile": float(row["percentile"]),
                    "flagged_1pct": bool(row["flagged_1pct"]),
                }
            results.append(entry)
        return {"date": date, "model_version": day.model_version, "risks": results}


def _forecast_folder(directory: Path) -> Path:
    """The live forecast folder a bundle's ``live.json`` names, else the bundled one."""
    bundled = directory / FORECASTS
    pointer = directory / LIVE_POINTER
    if not pointer.is_file():
        return bundled
    try:
        live = Path(json.loads(pointer.read_text())["forecasts"])
    except (ValueError, KeyError, TypeError, OSError) as exc:
        logger.warning("ignoring %s (%s): serving the bundled forecasts", pointer, exc)
        return bundled
    if not live.is_dir():
        logger.warning("live forecasts %s are gone: serving the bundled forecasts", live)
        return bundled
    logger.info("serving the live street-risk forecasts in %s", live)
    return live


def _artifact_dir(directory: Path) -> Path:
    """The artifact inside a street-risk directory (flat, or the storage's registry layout)."""
    production = directory / "models" / "production.json"
    if not (directory / "model.json").is_file() and production.is_file():
        try:
            version = str(json.loads(production.read_text())["version"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelIntegrityError(f"{production} is not a production pointer: {exc}") from exc
        if not version or "/" in version or version.startswith("."):
            raise ModelIntegrityError(f"{production} names an invalid version {version!r}")
        return directory / "models" / version
    return directory


def load_risk_service(model_dir: str | os.PathLike | None) -> tuple[RiskService | None, str]:
    """The service for ``$SUPERDAN_RISK_DIR`` or ``<model_dir>/street_risk``, and why not.

    Returns ``(None, reason)`` when there is no street-risk directory or it fails
    verification (logged): the classifier keeps serving either way.
    """
    configured = os.environ.get(RISK_DIR_ENV)
    directory = (
        Path(configured)
        if configured
        else (Path(model_dir) / RISK_SUBDIR if model_dir is not None else None)
    )
    if directory is None or not directory.is_dir():
        where = f" ({directory})" if directory is not None else ""
        return None, f"street-risk forecasts are not deployed on this endpoint{where}"
    try:
        return RiskService(directory), ""
    except ModelIntegrityError as exc:
        logger.error("refusing the street-risk directory: %s", exc)
        return None, f"street-risk artifact refused: {exc}"


def answer_json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, allow_nan=False).encode()


# -- request parsing ------------------------------------------------------------------
def _query(query_string: bytes) -> dict[str, str]:
    try:
        parsed = parse_qs(
            query_string.decode("utf-8"), keep_blank_values=True, strict_parsing=False
        )
    except UnicodeDecodeError:
        raise ClientError(400, "query string is not UTF-8") from None
    allowed = {"date", "type", "top"}
    unknown = sorted(set(parsed) - allowed)
    if unknown:
        raise ClientError(400, f"unknown query parameter(s) {unknown[:5]}; use date, type, top")
    for name, values in parsed.items():
        if len(values) > 1:
            raise ClientError(400, f"query parameter {name!r} given {len(values)} times")
    return {name: values[0] for name, values in parsed.items()}


def _crime_type(value: str | None) -> str:
    if value is None or value == "":
        return "burglary"
    lowered = value.lower()
    if lowered not in CRIME_TYPES:
        raise ClientError(400, f"type {value[:40]!r} is not one of {list(CRIME_TYPES)}")
    return lowered


def _top(value: str | None) -> int:
    if value is None or value == "":
        return DEFAULT_TOP
    if not value.isdigit() or not 1 <= int(value) <= MAX_TOP:
        raise ClientError(400, f"top {value[:40]!r} must be an integer from 1 to {MAX_TOP}")
    return int(value)


def _valid_date(text: str) -> bool:
    try:
        pd.Timestamp(text)
    except ValueError:
        return False
    return True


def _json_body(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ClientError(400, f"body is not valid UTF-8 JSON: {exc}") from None
    except RecursionError:
        raise ClientError(400, "body JSON is nested too deeply") from None


def _coordinates(points: list) -> tuple[np.ndarray, np.ndarray]:
    lat = np.empty(len(points))
    lon = np.empty(len(points))
    details = []
    for row, point in enumerate(points):
        if not isinstance(point, dict):
            details.append({"row": row, "message": "a point must be an object"})
            continue
        for target, names in ((lat, ("latitude", "lat")), (lon, ("longitude", "lon"))):
            value = next((point[n] for n in names if n in point), None)
            field = names[0]
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                details.append({"row": row, "field": field, "message": "missing or not a number"})
                continue
            try:
                number = float(value)
            except ValueError:
                details.append(
                    {"row": row, "field": field, "message": f"{str(value)[:40]!r} is not a number"}
                )
                continue
            bound = 90.0 if field == "latitude" else 180.0
            if not math.isfinite(number) or abs(number) > bound:
                details.append(
                    {"row": row, "field": field, "message": f"must be within +-{bound:g}"}
                )
                continue
            target[row] = number
    if details:
        raise ClientError(400, f"{len(details)} invalid point field(s)", details[:100])
    return lat, lon


def _place(row) -> dict[str, Any]:
    return {
        "rank": int(row.rank),
        "place": str(row.unit),
        "latitude": None if pd.isna(row.latitude) else float(row.latitude),
        "longitude": None if pd.isna(row.longitude) else float(row.longitude),
        "expected_count": float(row.expected_count),
        "probability": float(row.probability),
        "flagged_1pct": bool(row.flagged_1pct),
    }
