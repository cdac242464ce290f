"""A fake of the Rochester Police "Part I Crime" FeatureServer layer ``.../FeatureServer/2/query``.

Implements the query semantics the client uses, with ArcGIS' habits:

- ``where``: ``1=1`` or ``<field> >= timestamp 'YYYY-MM-DD hh:mm:ss' AND <field> <
  timestamp '...'`` on a date field; timestamps are UTC, as the service stores epoch ms UTC;
- ``outFields`` (``*`` or a list; a field the layer does not have is an error, as on the
  real server), ``returnGeometry``, ``orderByFields``, ``f=json`` (anything else refused);
- paging: ``resultOffset``/``resultRecordCount``; at most ``max_record_count`` features per
  answer, and ``exceededTransferLimit: true`` whenever more features remain;
- query errors come back as HTTP 200 with ``{"error": {"code": 400, ...}}``, as ArcGIS does.

Features are ``{"attributes": {...}, "geometry": {"x": lon, "y": lat}}`` (geometry may be
None); :func:`arcgis_feature` builds one and :func:`features_from_snapshot` loads the
shared-data CSV snapshot.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from superdan_assets_tests.fakes import FakeHTTPServer, Response

ARCGIS_PATH = "/arcgis/rest/services/RPD/RPD_Part_I_Crime/FeatureServer/2/query"
DEFAULT_MAX_RECORD_COUNT = 1000
ROCHESTER_TZ = ZoneInfo("America/New_York")

#: The layer's fields (name -> ArcGIS type), in the order the service lists them.
LAYER_FIELDS: dict[str, str] = {
    "OBJECTID": "esriFieldTypeOID",
    "OccurredFrom_Timestamp": "esriFieldTypeDate",
    "OccurredThrough_Timestamp": "esriFieldTypeDate",
    "Reported_Timestamp": "esriFieldTypeDate",
    "Statute_Text": "esriFieldTypeString",
    "Statute_Description": "esriFieldTypeString",
    "Weapon_Description": "esriFieldTypeString",
    "Larceny_Type": "esriFieldTypeString",
    "Location_Type": "esriFieldTypeString",
}
_INT_FIELDS = {n for n, t in LAYER_FIELDS.items() if t != "esriFieldTypeString"}

_RANGE = re.compile(
    r"^\s*(?P<field>\w+)\s*>=\s*timestamp\s*'(?P<start>[^']+)'\s+AND\s+(?P<field2>\w+)\s*<\s*"
    r"timestamp\s*'(?P<end>[^']+)'\s*$",
    re.IGNORECASE,
)


def epoch_ms(local: str, tz: ZoneInfo = ROCHESTER_TZ) -> int:
    """Epoch milliseconds of a local wall-clock time ``YYYY-MM-DD hh:mm[:ss]`` in ``tz``."""
    return int(datetime.fromisoformat(local).replace(tzinfo=tz).timestamp() * 1000)


def arcgis_feature(
    objectid: int,
    occurred: str | int,
    statute_text: str = "Larceny",
    *,
    x: float | None = -77.6,
    y: float | None = 43.16,
    **attributes: Any,
) -> dict:
    """A feature as the layer returns it.

    ``occurred`` is epoch ms or a Rochester local time string (see :func:`epoch_ms`);
    ``x``/``y`` None gives a feature without geometry; extra ``attributes`` override.
    """
    occurred_ms = occurred if isinstance(occurred, int) else epoch_ms(occurred)
    attrs: dict[str, Any] = {
        "OBJECTID": objectid,
        "OccurredFrom_Timestamp": occurred_ms,
        "OccurredThrough_Timestamp": occurred_ms,
        "Reported_Timestamp": occurred_ms + 3_600_000,
        "Statute_Text": statute_text,
        "Statute_Description": f"{statute_text} 3rd degree        ",
        "Weapon_Description": "* No Weapon Specified *",
        "Larceny_Type": "* No Larceny Type Specified *",
        "Location_Type": "Single Family Home",
    }
    attrs.update(attributes)
    geometry = None if x is None or y is None else {"x": x, "y": y}
    return {"attributes": attrs, "geometry": geometry}


def features_from_snapshot(path: str | Path) -> list[dict]:
    """The features of a CSV snapshot (``day_2020-04-04.csv`` format), to serve real data."""
    features = []
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            attrs = {
                name: (int(row[name]) if row[name] else None) if name in _INT_FIELDS else row[name]
                for name in LAYER_FIELDS
            }
            geometry = (
                {"x": float(row["x"]), "y": float(row["y"])} if row["x"] and row["y"] else None
            )
            features.append({"attributes": attrs, "geometry": geometry})
    return features


def _utc_ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def _query_error(details: str) -> Response:
    body = {
        "error": {
            "code": 400,
            "message": "Cannot perform query. Invalid query parameters.",
            "details": [details],
        }
    }
    return Response(200, body)


class _QueryError(ValueError):
    pass


class FakeArcGISServer(FakeHTTPServer):
    """Serves ``features`` as the Part I Crime layer at :attr:`url`."""

    path = ARCGIS_PATH

    def __init__(
        self, features: Iterable[dict] = (), max_record_count: int = DEFAULT_MAX_RECORD_COUNT
    ) -> None:
        super().__init__()
        self.max_record_count = max_record_count
        self._features: list[dict] = [_copy_feature(f) for f in features]
        self._renames: dict[str, str] = {}

    # -- data and schema ------------------------------------------------------------------
    def set_features(self, features: Iterable[dict]) -> None:
        """Replace the served features (safe while a client is paging)."""
        copied = [_copy_feature(f) for f in features]
        with self._lock:
            self._features = copied

    def rename_field(self, old: str, new: str) -> None:
        """The layer's field ``old`` is called ``new`` from now on (a schema change).

        As on the real server, queries naming ``old`` (``outFields``, ``where``) then fail
        with an HTTP-200 error payload, and ``outFields=*`` returns the new name.
        """
        with self._lock:
            self._renames[old] = new

    def _reset_schema(self) -> None:
        self._renames.clear()

    def _fields(self) -> list[str]:
        return [self._renames.get(name, name) for name in LAYER_FIELDS]

    # -- query semantics ------------------------------------------------------------------
    def page_offset(self, params: dict[str, str]) -> int:
        return int(params.get("resultOffset", "0"))

    def error_response(self, status: int, message: str) -> Response:
        return Response(status, {"error": {"code": status, "message": message, "details": []}})

    def handle(self, params: dict[str, str]) -> Response:
        with self._lock:
            features = [_renamed(f, self._renames) for f in self._features]
            fields = self._fields()
        try:
            if params.get("f") != "json":
                raise _QueryError(f"'f' must be json, got {params.get('f')!r}")
            selected = self._where(features, params.get("where", ""), fields)
            selected = self._order(selected, params.get("orderByFields", ""), fields)
            out_fields = self._out_fields(params.get("outFields", "*"), fields)
            offset = int(params.get("resultOffset", "0"))
            count = int(params.get("resultRecordCount", str(self.max_record_count)))
        except (_QueryError, ValueError) as exc:
            return _query_error(str(exc))
        size = min(count, self.max_record_count)
        page = selected[offset : offset + size]
        body: dict[str, Any] = {
            "objectIdFieldName": "OBJECTID",
            "geometryType": "esriGeometryPoint",
            "spatialReference": {"wkid": 4326, "latestWkid": 4326},
            "fields": [
                {"name": n, "type": LAYER_FIELDS.get(n, "esriFieldTypeString")} for n in out_fields
            ],
            "features": [
                _project(f, out_fields, params.get("returnGeometry", "true") != "false")
                for f in page
            ],
        }
        if offset + len(page) < len(selected):
            body["exceededTransferLimit"] = True
        return Response(200, body)

    @staticmethod
    def _where(features: list[dict], where: str, fields: list[str]) -> list[dict]:
        if where.strip() in ("1=1", ""):
            return features
        match = _RANGE.match(where)
        if match is None or match["field"] != match["field2"]:
            raise _QueryError(f"unsupported where clause {where!r}")
        name = match["field"]
        if name not in fields:
            raise _QueryError(f"Invalid field '{name}' in where clause")
        start, end = _utc_ms(match["start"]), _utc_ms(match["end"])
        return [
            f
            for f in features
            if f["attributes"].get(name) is not None and start <= f["attributes"][name] < end
        ]

    @staticmethod
    def _order(features: list[dict], order_by: str, fields: list[str]) -> list[dict]:
        ordered = list(features)
        terms = [t.strip() for t in order_by.split(",") if t.strip()]
        for term in reversed(terms):
            name, _, direction = term.partition(" ")
            if name not in fields:
                raise _QueryError(f"'orderByFields' parameter is invalid: {name!r}")
            ordered.sort(
                key=lambda f, n=name: (
                    f["attributes"].get(n) is not None,
                    f["attributes"].get(n) or 0,
                ),
                reverse=direction.strip().upper() == "DESC",
            )
        return ordered

    @staticmethod
    def _out_fields(out_fields: str, fields: list[str]) -> list[str]:
        if out_fields.strip() == "*":
            return fields
        wanted = [n.strip() for n in out_fields.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in fields]
        if unknown:
            raise _QueryError(f"'outFields' parameter is invalid: unknown field(s) {unknown}")
        return wanted


def _copy_feature(feature: dict) -> dict:
    geometry = feature.get("geometry")
    return {
        "attributes": dict(feature["attributes"]),
        "geometry": dict(geometry) if geometry else None,
    }


def _renamed(feature: dict, renames: dict[str, str]) -> dict:
    attrs = {renames.get(k, k): v for k, v in feature["attributes"].items()}
    return {"attributes": attrs, "geometry": feature["geometry"]}


def _project(feature: dict, out_fields: list[str], with_geometry: bool) -> dict:
    served: dict[str, Any] = {"attributes": {n: feature["attributes"].get(n) for n in out_fields}}
    if with_geometry and feature["geometry"] is not None:
        served["geometry"] = feature["geometry"]
    return served
