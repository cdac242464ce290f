"""Labels and the fixed-schema feature rows (the ``crime_features`` asset) from raw incidents.

The task is a binary one: given where and when a property crime happened, is it a burglary
(label 1) or a larceny/theft (label 0)? Everything here is a pure function of a canonical raw
frame (see :mod:`superdan_assets.ml.schema`), so the daily asset, the training command of the
container and the benchmark all cut the data the same way.

Why the explicit lists of columns: several canonical columns encode the answer (``iucr``,
``description`` and ``fbi_code`` are the crime classification itself, ``primary_type`` is the
label, ``arrest`` is an outcome recorded afterwards, ids and ``updated_on`` are bookkeeping).
The feature rows keep only :data:`MODEL_INPUT_COLUMNS`, so a leak cannot reach the model even
by accident.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from superdan_assets.ml.schema import check_frame_schema


@dataclass(frozen=True)
class LabelRule:
    """Which ``primary_type`` values are a burglary (1) or a theft (0), from the city's spec.

    Values compare case-insensitively with whitespace collapsed, as whole values ("auto theft"
    is not "theft"). ``drop`` values and rows whose canonical field holds an ``exclude`` value
    (Chicago: identity-theft IUCR codes) are left out.
    """

    burglary: frozenset[str]
    theft: frozenset[str]
    drop: frozenset[str] = frozenset()
    exclude: tuple[tuple[str, frozenset[str]], ...] = ()

    @classmethod
    def from_spec(cls, spec) -> LabelRule:
        labels = spec.labels
        return cls(
            burglary=frozenset(labels.burglary_words),
            theft=frozenset(labels.theft_words),
            drop=frozenset(labels.drop_words),
            exclude=tuple(
                (field, frozenset(str(v).strip() for v in values))
                for field, values in sorted(labels.exclude.items())
            ),
        )

    @classmethod
    def for_city(cls, city: str) -> LabelRule:
        """The rule of a packaged city (``chicago``, ``rochester``)."""
        from superdan_assets.cities.catalog import resolve_spec

        return cls.from_spec(resolve_spec(city))


def _rule_for_frame(raw: pd.DataFrame) -> LabelRule:
    cities = raw["city"].dropna().unique() if "city" in raw.columns else []
    if len(cities) != 1:
        raise ValueError(
            f"pass the city's LabelRule: the frame names no single city (cities {list(cities)[:5]})"
        )
    return LabelRule.for_city(str(cities[0]))


#: Canonical columns the model may read. Everything else is a leak or bookkeeping.
MODEL_INPUT_COLUMNS: tuple[str, ...] = (
    "date",
    "block",
    "location_description",
    "domestic",
    "beat",
    "district",
    "ward",
    "community_area",
    "latitude",
    "longitude",
)

#: Canonical columns that must never be model inputs, and why.
LEAK_COLUMNS: dict[str, str] = {
    "iucr": "the crime classification code encodes the label",
    "description": "the crime sub-type encodes the label",
    "fbi_code": "FBI code 06/05 is the label",
    "primary_type": "is the label",
    "arrest": "an outcome recorded after the fact",
    "id": "an identifier",
    "case_number": "an identifier",
    "updated_on": "bookkeeping, recorded after the fact",
}

LABEL_COLUMN = "label"

#: The ``crime_features`` schema: model-input columns plus ``label``, always these dtypes,
#: whatever categories a day happens to contain.
FEATURE_ROW_DTYPES: dict[str, str] = {
    "date": "datetime64[ns]",
    "block": "string",
    "location_description": "string",
    "domestic": "boolean",
    "beat": "string",
    "district": "string",
    "ward": "string",
    "community_area": "string",
    "latitude": "float64",
    "longitude": "float64",
    LABEL_COLUMN: "int8",
}
FEATURE_ROW_COLUMNS: list[str] = list(FEATURE_ROW_DTYPES)

# -- location descriptions ----------------------------------------------------------------

# Hyphenated words whose hyphen is part of the word, not a separator ("VEHICLE
# NON-COMMERCIAL", "JAIL / LOCK-UP FACILITY"): these keep their tight hyphen.
_WORD_HYPHEN = re.compile(r"\b(NON|LOCK|SELF|PRE|CO|RE)-(?=\w)")
_PROTECTED_HYPHEN = "\u2010"  # a Unicode hyphen, never present in the data
_SEPARATOR_HYPHEN = re.compile(r"\s*-\s*")
_SLASH = re.compile(r"\s*/\s*")
_OPEN_PAREN = re.compile(r"(?<=\w)\s*\(\s*")
_CLOSE_PAREN = re.compile(r"\s*\)")
_COMMA = re.compile(r"\s*,\s*")
_WHITESPACE = re.compile(r"\s+")


def normalise_location_text(text: str) -> str:
    """Spelling-normalise one location description (renames are learnt by the model, see
    :mod:`superdan_assets.ml.vocabulary`).

    Upper-case, one space either side of a separating hyphen or a slash, a space before an
    opening parenthesis, one space after a comma, whitespace collapsed. Why: the city changed
    the punctuation of many values after 2018 ("RESIDENCE-GARAGE" became "RESIDENCE -
    GARAGE", "HOTEL/MOTEL" became "HOTEL / MOTEL"); spelling them one way makes the years one
    vocabulary without listing every value.
    """
    s = _WHITESPACE.sub(" ", str(text).upper()).strip()
    s = _WORD_HYPHEN.sub(lambda m: m.group(1) + _PROTECTED_HYPHEN, s)
    s = _SEPARATOR_HYPHEN.sub(" - ", s)
    s = _SLASH.sub(" / ", s)
    s = _OPEN_PAREN.sub(" (", s)
    s = _CLOSE_PAREN.sub(")", s)
    s = _COMMA.sub(", ", s)
    s = s.replace(_PROTECTED_HYPHEN, "-")
    return _WHITESPACE.sub(" ", s).strip()


def normalise_location_description(values: pd.Series) -> pd.Series:
    """:func:`normalise_location_text` over a column; nulls and blanks stay null (dtype string).

    Works on the distinct values only (about a hundred per city), so it costs the same for a
    seven-year frame as for a day.
    """
    s = values.astype("string")
    distinct = s.dropna().unique()
    mapping = {v: normalise_location_text(v) for v in distinct}
    out = s.map(mapping).astype("string")
    return out.mask(out == "", pd.NA)


# -- labels -------------------------------------------------------------------------------


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """``frame[name]`` as strings, or all-null when the column is absent."""
    if name in frame.columns:
        return frame[name].astype("string")
    return pd.Series(pd.NA, index=frame.index, dtype="string")


def _words(values: pd.Series) -> pd.Series:
    return values.str.strip().str.replace(r"\s+", " ", regex=True).str.casefold()


def incident_labels(raw: pd.DataFrame, rule: LabelRule | None = None) -> pd.Series:
    """Per row: 1 burglary, 0 theft/larceny, <NA> anything else, dropped or excluded.

    ``primary_type`` decides, by the city's ``rule`` (default: the packaged spec of the
    frame's ``city``).
    """
    rule = rule or _rule_for_frame(raw)
    primary = _words(_column(raw, "primary_type"))
    left_out = primary.isin(rule.drop).fillna(False).astype(bool)
    for field, values in rule.exclude:
        left_out |= _column(raw, field).str.strip().isin(values).fillna(False).astype(bool)
    burglary = primary.isin(rule.burglary).fillna(False).astype(bool) & ~left_out
    theft = primary.isin(rule.theft).fillna(False).astype(bool) & ~left_out
    out = pd.Series(pd.NA, index=raw.index, dtype="Int8")
    out[theft] = 0
    out[burglary] = 1
    return out


def label_incidents(raw: pd.DataFrame, rule: LabelRule | None = None) -> pd.DataFrame:
    """The theft and burglary rows of a canonical raw frame, with ``label`` (1 = burglary).

    All canonical columns are kept (checks and drift reports want them); the
    ``location_description`` is spelling-normalised (:func:`normalise_location_text`); the
    index is reset.
    """
    labels = incident_labels(raw, rule)
    keep = labels.notna().to_numpy()
    out = raw.loc[keep].copy()
    out[LABEL_COLUMN] = labels[keep].astype("int8").to_numpy()
    if "location_description" in out.columns:
        out["location_description"] = normalise_location_description(out["location_description"])
    return out.reset_index(drop=True)


def empty_feature_rows() -> pd.DataFrame:
    """A zero-row ``crime_features`` frame with the fixed schema."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in FEATURE_ROW_DTYPES.items()})


def build_feature_rows(raw: pd.DataFrame, rule: LabelRule | None = None) -> pd.DataFrame:
    """The ``crime_features`` rows of a canonical raw frame: labelled, leak-free, fixed schema.

    Columns are exactly :data:`FEATURE_ROW_COLUMNS` with :data:`FEATURE_ROW_DTYPES` (an empty
    day, or a day without some category, gives the same schema). Rows are sorted by ``date``
    (stable), because the history features of training are computed in time order.
    """
    if raw.empty:
        return empty_feature_rows()
    labelled = label_incidents(raw, rule)
    if labelled.empty:
        return empty_feature_rows()
    columns = {}
    for column, dtype in FEATURE_ROW_DTYPES.items():
        if column in labelled.columns:
            columns[column] = labelled[column].astype(dtype)
        else:
            missing = np.nan if dtype == "float64" else pd.NA
            columns[column] = pd.Series(missing, index=labelled.index).astype(dtype)
    rows = pd.DataFrame(columns, index=labelled.index)
    rows = rows.sort_values("date", kind="stable")
    return rows.reset_index(drop=True)


def check_feature_rows(frame: pd.DataFrame, where: str = "crime_features") -> None:
    """Raise ``ValueError`` unless ``frame`` has exactly the feature-row columns and dtypes."""
    check_frame_schema(frame, FEATURE_ROW_DTYPES, where, error=ValueError)
