"""A city's source rows -> the canonical incident schema, as its spec says.

The one place where a city's column names, date format and timezone are applied, used by every
source kind (csv files, SODA, ArcGIS), so a city behaves the same whichever feed it comes from.

Column matching is exact first, then on a normalised name (lower case, runs of anything but
letters and digits as one ``_``): the Chicago export's ``Primary Type`` header and the API's
``primary_type`` field are one column, so one spec serves both feeds.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from superdan_assets.cities.spec import CitySpec
from superdan_assets.ml.schema import SchemaError, empty_frame, to_canonical

_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def normalise_header(name: str) -> str:
    """``"Primary Type"`` -> ``"primary_type"``; ``"OBJECTID"`` -> ``"objectid"``."""
    return _NON_ALNUM.sub("_", str(name).strip().lower()).strip("_")


def _examples(values: pd.Series, mask: pd.Series, limit: int = 5) -> str:
    bad = values[mask]
    shown = ", ".join(f"row {i}: {str(v)[:60]!r}" for i, v in list(bad.items())[:limit])
    return shown + (f" (+{len(bad) - limit} more)" if len(bad) > limit else "")


def parse_dates(
    values: pd.Series,
    formats: tuple[str, ...],
    timezone_mode: str,
    city_timezone: str,
    *,
    column: str,
    where: str,
) -> pd.Series:
    """Occurrence times as the city's naive local wall-clock time.

    Each value is parsed with the first of ``formats`` that reads it (``iso``, ``epoch_ms``,
    ``epoch_s`` or a strptime pattern). ``timezone_mode`` ``"UTC"`` converts from UTC to
    ``city_timezone``; ``"local"`` keeps the wall clock (an explicit offset in an ISO value is
    honoured). A non-empty value no format reads raises :class:`SchemaError` with examples.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            parsed = values.dt.tz_convert(city_timezone).dt.tz_localize(None)
        elif timezone_mode == "UTC":
            parsed = values.dt.tz_localize("UTC").dt.tz_convert(city_timezone).dt.tz_localize(None)
        return parsed.astype("datetime64[ns]")
    raw = values.astype("string").str.strip()
    raw = raw.mask(raw == "", pd.NA)
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    todo = raw.notna()
    for fmt in formats:
        if not todo.any():
            break
        chunk = raw[todo]
        if fmt in ("epoch_ms", "epoch_s"):
            numbers = pd.to_numeric(chunk, errors="coerce")
            unit = "ms" if fmt == "epoch_ms" else "s"
            try:
                got = pd.to_datetime(numbers, unit=unit, utc=True, errors="coerce")
            except (OverflowError, pd.errors.OutOfBoundsDatetime):
                got = pd.Series(pd.NaT, index=chunk.index, dtype="datetime64[ns, UTC]")
            aware = True
        else:
            got = pd.to_datetime(
                chunk, format="ISO8601" if fmt == "iso" else fmt, errors="coerce", utc=True
            )
            # utc=True reads a naive value as UTC; that is right only for timezone "UTC" or
            # values that carried an offset. Naive local values are re-localised below.
            aware = timezone_mode == "UTC"
            if not aware:
                has_offset = chunk.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True).fillna(False)
                naive = got.notna() & ~has_offset.astype(bool)
                if naive.any():
                    local = (
                        got[naive]
                        .dt.tz_localize(None)
                        .dt.tz_localize(city_timezone, ambiguous="NaT", nonexistent="shift_forward")
                    )
                    # An ambiguous fall-back hour has no UTC reading: keep its wall clock by
                    # taking the first one.
                    amb = local.isna()
                    if amb.any():
                        local[amb] = (
                            got[naive][amb]
                            .dt.tz_localize(None)
                            .dt.tz_localize(
                                city_timezone, ambiguous=True, nonexistent="shift_forward"
                            )
                        )
                    got = got.astype("datetime64[ns, UTC]")
                    got[naive] = local.dt.tz_convert("UTC")
        got = got.astype("datetime64[ns, UTC]")
        ok = got.notna()
        out[ok[ok].index] = got[ok]
        todo = todo & out.isna()
    if todo.any():
        raise SchemaError(
            f"{where}: column {column!r} has values that none of the spec's date formats "
            f"{list(formats)} read: {_examples(values, todo)}"
        )
    return out.dt.tz_convert(city_timezone).dt.tz_localize(None).astype("datetime64[ns]")


def derived_ids(frame: pd.DataFrame) -> pd.Series:
    """A stable id from a row's content, for feeds without one.

    A 64-bit hash of the row's mapped values (deterministic across runs and machines), plus
    ``-n`` for the n-th identical row, so two identical reports stay two reports.
    """
    if frame.empty:
        return pd.Series([], dtype="string")
    text = frame.astype("string").fillna("\x00")
    hashed = pd.util.hash_pandas_object(text, index=False).to_numpy(dtype=np.uint64)
    ids = pd.Series([f"h{h:016x}" for h in hashed], index=frame.index, dtype="string")
    repeat = ids.groupby(ids).cumcount()
    return ids.where(repeat == 0, ids + "-" + repeat.astype("string"))


class SpecMapper:
    """Applies one city's spec to frames of that city's source columns."""

    def __init__(self, spec: CitySpec):
        self.spec = spec
        columns = dict(spec.columns)
        label_source = spec.labels.column
        mapped_type = columns.get("primary_type")
        if mapped_type is None:
            columns["primary_type"] = label_source
        elif normalise_header(mapped_type) != normalise_header(label_source):
            raise SchemaError(
                f"city spec {spec.spec_path or spec.name}: labels.column {label_source!r} must be "
                f"the column mapped to primary_type ({mapped_type!r}), or leave primary_type "
                "unmapped so the label column becomes primary_type"
            )
        #: canonical field -> source column name as written in the spec.
        self.columns = columns

    @property
    def source_columns(self) -> list[str]:
        return list(dict.fromkeys(self.columns.values()))

    @property
    def date_column(self) -> str:
        return self.columns["date"]

    @property
    def id_column(self) -> str | None:
        return self.columns.get("id")

    def match_columns(
        self, available: list[str], *, where: str, required: tuple[str, ...] | None = None
    ) -> dict[str, str]:
        """canonical field -> the available column that holds it.

        ``required``: canonical fields whose column must be present (default: every mapped
        one). A required column that is absent raises :class:`SchemaError` naming it.
        """
        exact = set(available)
        by_norm: dict[str, str] = {}
        for name in available:
            by_norm.setdefault(normalise_header(name), name)
        found: dict[str, str] = {}
        for field, source in self.columns.items():
            if source in exact:
                found[field] = source
            elif normalise_header(source) in by_norm:
                found[field] = by_norm[normalise_header(source)]
        needed = (
            self.columns
            if required is None
            else {f: self.columns[f] for f in required if f in self.columns}
        )
        missing = [
            f"{source!r} (for {field})" for field, source in needed.items() if field not in found
        ]
        if missing:
            raise SchemaError(
                f"{where}: column(s) named in the city spec are missing from the data: "
                f"{', '.join(missing)}; the data has columns {sorted(available)[:40]}"
            )
        return found

    def strict_fields(self) -> tuple[str, ...]:
        """Fields a JSON feed must carry on every page (others may be omitted when null)."""
        fields = ["date", "primary_type"]
        if "id" in self.columns:
            fields.insert(0, "id")
        return tuple(fields)

    def to_canonical(self, frame: pd.DataFrame, *, where: str, strict: bool = True) -> pd.DataFrame:
        """``frame`` (source columns) as a canonical frame of this city.

        ``strict``: every column named in the spec must be present (files: a header that lacks
        one is a broken spec or feed). Otherwise (JSON feeds, which omit null fields) only the
        id, date and label columns must be.
        """
        if frame.empty and len(frame.columns) == 0:
            return empty_frame()
        found = self.match_columns(
            list(frame.columns), where=where, required=None if strict else self.strict_fields()
        )
        src = frame.reset_index(drop=True)
        mapped = pd.DataFrame({field: src[column] for field, column in found.items()})
        spec = self.spec
        for field in ("date", "updated_on"):
            if field in mapped.columns:
                mapped[field] = parse_dates(
                    mapped[field],
                    spec.date.formats,
                    spec.date.timezone,
                    spec.timezone,
                    column=found[field],
                    where=where,
                )
        if "id" in mapped.columns:
            ids = mapped["id"].astype("string").str.strip()
            mapped["id"] = ids.str.replace(r"^(-?\d+)\.0+$", r"\1", regex=True)
        else:
            # Every mapped field, absent ones as null: a JSON feed omits null fields, so a
            # page may lack a column, and the id must not depend on the row's page.
            content = pd.DataFrame(
                {f: src[found[f]] if f in found else pd.NA for f in self.columns},
                index=src.index,
            )
            mapped["id"] = derived_ids(content)
        return to_canonical(
            mapped,
            spec.name,
            source=where,
            code_widths=spec.codes.widths,
        )
