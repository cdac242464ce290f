"""The one canonical incident schema every source is converted to.

Why one schema: the original project's columns depended on which categories a batch happened
to contain, so a model trained on Monday could not score Tuesday. Every source (SODA API, bulk
export, Rochester ArcGIS) returns exactly these columns with exactly these dtypes, so the
Parquet partitions, the features and the endpoint never have to guess.

Conventions:
- Field names are the Chicago SODA snake_case names, plus ``city``.
- ``date`` is when the crime occurred, as the city's local wall-clock time (timezone-naive,
  like the Chicago portal itself). Partitions are keyed by this local day.
- Police geography and classification codes are zero-padded strings, so ``"0820"`` and
  ``"820"`` never become two categories and leading zeros survive a CSV round trip.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

STRING = "string"
TIMESTAMP = "datetime64[ns]"
BOOLEAN = "boolean"
FLOAT = "float64"

#: Column name -> pandas dtype, in storage order.
CANONICAL_DTYPES: dict[str, str] = {
    "city": STRING,
    "id": STRING,
    "case_number": STRING,
    "date": TIMESTAMP,
    "block": STRING,
    "iucr": STRING,
    "primary_type": STRING,
    "description": STRING,
    "location_description": STRING,
    "arrest": BOOLEAN,
    "domestic": BOOLEAN,
    "beat": STRING,
    "district": STRING,
    "ward": STRING,
    "community_area": STRING,
    "fbi_code": STRING,
    "x_coordinate": FLOAT,
    "y_coordinate": FLOAT,
    "latitude": FLOAT,
    "longitude": FLOAT,
    "updated_on": TIMESTAMP,
}
CANONICAL_COLUMNS: list[str] = list(CANONICAL_DTYPES)

#: Without these a row cannot be partitioned, labelled or de-duplicated.
REQUIRED_COLUMNS: tuple[str, ...] = ("id", "date", "primary_type")

#: Code fields: police geography and classification codes, kept as strings. A city's spec may
#: zero-pad them (``[codes] widths``; Chicago pads beats to 4 digits, districts to 3), so that
#: "0820" and "820" never become two categories; the model compares codes without leading zeros.
CODE_FIELDS: tuple[str, ...] = ("iucr", "beat", "district", "ward", "community_area", "fbi_code")

_TRUE = {"true", "t", "yes", "y", "1", "1.0"}
_FALSE = {"false", "f", "no", "n", "0", "0.0"}


class SchemaError(ValueError):
    """Input that cannot be put into the canonical schema; the message says what and where."""


def empty_frame() -> pd.DataFrame:
    """A zero-row frame with the canonical columns and dtypes (an empty day is a valid day)."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in CANONICAL_DTYPES.items()})


def _row_examples(mask: pd.Series, values: pd.Series, limit: int = 5) -> str:
    bad = values[mask]
    shown = ", ".join(f"row {i}: {v!r}" for i, v in list(bad.items())[:limit])
    more = f" (+{len(bad) - limit} more)" if len(bad) > limit else ""
    return shown + more


def _pad_code(values: pd.Series, width: int | None) -> pd.Series:
    s = values.astype(STRING).str.strip()
    # Numbers that went through a float ("8.0") come back as plain integers first.
    s = s.str.replace(r"^(\d+)\.0+$", r"\1", regex=True)
    s = s.mask(s == "", pd.NA)
    return s.str.zfill(width) if width else s


def _to_bool(values: pd.Series, column: str, source: str) -> pd.Series:
    if pd.api.types.is_bool_dtype(values):
        return values.astype(BOOLEAN)
    s = values.astype(STRING).str.strip().str.lower()
    out = pd.Series(pd.NA, index=values.index, dtype=BOOLEAN)
    out[s.isin(_TRUE).fillna(False).astype(bool)] = True
    out[s.isin(_FALSE).fillna(False).astype(bool)] = False
    bad = s.notna() & (s != "") & out.isna()
    if bad.any():
        raise SchemaError(
            f"{source}: column {column!r} must be true/false; got {_row_examples(bad, values)}"
        )
    return out


def _to_timestamp(values: pd.Series, column: str, source: str, fmt: str | None) -> pd.Series:
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        raise SchemaError(
            f"{source}: column {column!r} is timezone-aware; convert it to the city's local "
            "time and drop the timezone before building the canonical frame"
        )
    if pd.api.types.is_datetime64_dtype(values):
        return values.astype(TIMESTAMP)
    raw = values.astype(STRING).str.strip()
    raw = raw.mask(raw == "", pd.NA)
    parsed = pd.to_datetime(raw, format=fmt or "ISO8601", errors="coerce")
    bad = raw.notna() & parsed.isna()
    if bad.any():
        raise SchemaError(
            f"{source}: column {column!r} has values that are not timestamps: "
            f"{_row_examples(bad, values)}"
        )
    return parsed.astype(TIMESTAMP)


def _to_float(values: pd.Series, column: str, source: str) -> pd.Series:
    if pd.api.types.is_float_dtype(values) or pd.api.types.is_integer_dtype(values):
        return values.astype(FLOAT)
    raw = values.astype(STRING).str.strip()
    raw = raw.mask(raw == "", pd.NA)
    parsed = pd.to_numeric(raw, errors="coerce")
    bad = raw.notna() & parsed.isna()
    if bad.any():
        raise SchemaError(
            f"{source}: column {column!r} must be numeric; got {_row_examples(bad, values)}"
        )
    return parsed.astype(FLOAT)


def to_canonical(
    frame: pd.DataFrame,
    city: str,
    *,
    source: str = "input",
    date_format: str | None = None,
    updated_on_format: str | None = None,
    required: tuple[str, ...] = REQUIRED_COLUMNS,
    code_widths: dict[str, int] | None = None,
) -> pd.DataFrame:
    """Return ``frame`` as a canonical frame: all columns, fixed dtypes, codes padded.

    ``frame`` uses canonical (snake_case) names; extra columns are dropped and missing
    optional ones are filled with nulls. Raises :class:`SchemaError` naming the column and
    the offending rows when a required column is absent or a value cannot be converted:
    silently coercing a bad value to null would hide a broken feed. ``required`` narrows the
    required columns (the endpoint scores incidents that have only a ``date``).
    ``code_widths``: zero-padding of code fields, from the city's spec (default: none).
    """
    code_widths = code_widths or {}
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"{source}: required column(s) {missing} missing; got columns {sorted(frame.columns)}"
        )
    n = len(frame)
    index = pd.RangeIndex(n)
    src = frame.reset_index(drop=True)
    out: dict[str, pd.Series] = {}
    for column, dtype in CANONICAL_DTYPES.items():
        if column == "city":
            out[column] = pd.Series([city] * n, index=index, dtype=STRING)
            continue
        if column not in src.columns:
            out[column] = pd.Series([pd.NA if dtype != FLOAT else np.nan] * n, index=index).astype(
                dtype if dtype != TIMESTAMP else TIMESTAMP
            )
            continue
        values = src[column]
        if dtype == TIMESTAMP:
            fmt = date_format if column == "date" else updated_on_format
            out[column] = _to_timestamp(values, column, source, fmt)
        elif dtype == BOOLEAN:
            out[column] = _to_bool(values, column, source)
        elif dtype == FLOAT:
            out[column] = _to_float(values, column, source)
        elif column in CODE_FIELDS:
            out[column] = _pad_code(values, code_widths.get(column))
        else:
            s = values.astype(STRING).str.strip()
            out[column] = s.mask(s == "", pd.NA)
    result = pd.DataFrame(out, index=index)
    for column in required:
        null = result[column].isna()
        if null.any():
            raise SchemaError(
                f"{source}: required column {column!r} is empty in {int(null.sum())} row(s), "
                f"e.g. rows {list(result.index[null][:5])}"
            )
    return result


def check_frame_schema(
    frame: pd.DataFrame,
    dtypes: dict[str, str],
    where: str,
    error: type[Exception] = SchemaError,
) -> None:
    """Raise ``error`` unless ``frame`` has exactly the columns of ``dtypes``, in order and type."""
    if list(frame.columns) != list(dtypes):
        raise error(f"{where}: columns {list(frame.columns)} differ from {list(dtypes)}")
    wrong = {
        c: str(frame[c].dtype)
        for c, t in dtypes.items()
        if str(frame[c].dtype) != str(pd.Series(dtype=t).dtype)
    }
    if wrong:
        raise error(f"{where}: wrong dtypes {wrong}; expected {dtypes}")


def check_canonical(frame: pd.DataFrame, where: str = "frame") -> None:
    """Raise :class:`SchemaError` unless ``frame`` has exactly the canonical columns/dtypes."""
    check_frame_schema(frame, CANONICAL_DTYPES, where)


def concat_canonical(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate canonical frames, keeping dtypes even when every frame is empty."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return empty_frame()
    return pd.concat(frames, ignore_index=True)[CANONICAL_COLUMNS]
