"""Model inputs from raw incident fields: a scikit-learn transformer, picklable, fast to serve.

:class:`IncidentFeatures` turns a canonical incident frame (or ``crime_features`` rows; both
have the same model-input columns) into a numeric/categorical frame for gradient boosting.
It reads only :data:`~superdan_assets.ml.labels.MODEL_INPUT_COLUMNS`; any of them may be
absent or null (the endpoint scores incidents that have only a ``date``).

Three kinds of feature:

* **when**: hour, minute, weekday, month, day of month, day of year on the circle, and flags
  for estimated times. About 5 % of times are set to exactly 00:00 or 12:00 and many more to
  a round hour; a victim who finds a burglary at home reports an estimate far more often than
  a shop reporting a theft it watched, so "the time is a guess" carries signal.
* **where**: latitude/longitude and the same point in rotated axes (a tree splits on one axis at
  a time; rotations let it cut diagonal neighbourhoods), the hundred-block number and street
  direction parsed from ``block``, and the location type and district as categories.
* **the place's past**: for a block, a block and location type, an exact point, a street, a
  ~300 m cell, a beat and location type...: how many property crimes happened there per day
  and which share were burglaries (smoothed towards the overall share). A department-store
  block is a theft block; a block of two-flats with garages is a burglary block. These are
  target encodings, so they must never see the label they are predicting:

  - ``fit`` learns the tables from the training rows; ``transform`` looks new rows up in
    them, so at prediction time a row sees only the training period, i.e. its past.
  - ``fit_transform`` (what a ``Pipeline`` calls when it trains) gives each *training* row the
    history of strictly earlier training rows only (an expanding, shifted encoding in time
    order), so the model is never trained on features built from its own or a later label.

Categories are a vocabulary fixed in ``fit`` (frequent values only): unseen or rare values
become missing, so new categories in serving never change the columns or break the model.

Why numpy object arrays rather than pandas string operations in the preparation: the endpoint
scores one incident per request, and a pandas string operation costs ~0.1 ms whatever the row
count; cleaning each *distinct* value once in plain Python keeps a single-row transform at
about a millisecond and a seven-year training frame at a few seconds.
"""

from __future__ import annotations

import os
import re

# Before sklearn loads its OpenMP runtime, which reads this once (why: see ml/model.py).
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from superdan_assets.ml.areas import AreaCentres
from superdan_assets.ml.labels import normalise_location_text
from superdan_assets.ml.selected import selected_params
from superdan_assets.ml.vocabulary import LocationVocabulary

_NS_PER_DAY = 86_400 * 10**9
_MINUTES_PER_DAY = 24 * 60
#: About 300 m north-south in Chicago: a neighbourhood finer than a beat, coarser than a block.
_CELL_DEGREES = 0.003

#: History keys that can be requested, each a tuple of prepared columns joined into one key.
HISTORY_KEYS: dict[str, tuple[str, ...]] = {
    "block": ("block",),
    "block_location": ("block", "location_description"),
    "point": ("point",),
    "point_location": ("point", "location_description"),
    "street": ("street",),
    "street_location": ("street", "location_description"),
    "cell": ("cell",),
    "cell_location": ("cell", "location_description"),
    "beat": ("beat",),
    "beat_location": ("beat", "location_description"),
    "community_area_location": ("community_area", "location_description"),
    # A place's past by quarter of the day: a shopping street's daytime incidents are thefts,
    # its night-time ones more often break-ins.
    "community_area_location_daypart": ("community_area", "location_description", "daypart"),
    "beat_daypart": ("beat", "daypart"),
    "cell_daypart": ("cell", "daypart"),
}
#: Chosen by rolling-origin selection on 2012-2017 (validation years 2015-2017, never the 2018
#: test year; record ``ml/selections/chicago.json``, see ``ml/selection.py``).
DEFAULT_HISTORY_KEYS: tuple[str, ...] = tuple(selected_params()["history_keys"])

#: Prepared columns that can be categorical model inputs.
CATEGORICAL_COLUMNS: tuple[str, ...] = (
    "location_description",
    "district",
    "beat",
    "ward",
    "community_area",
    "street",
    "direction",
)
#: Chosen by the same selection. Why not all of them: with hundreds of beats or thousands of
#: streets a boosted tree can find category subsets that fit the training years and not the next
#: one; the place histories carry that information in a form that generalises.
DEFAULT_CATEGORICAL_COLUMNS: tuple[str, ...] = tuple(selected_params()["categorical_columns"])

_TIME_FEATURES: tuple[str, ...] = (
    "hour",
    "minute",
    "time_of_day",
    "weekday",
    "month",
    "day_of_month",
    "day_of_year_sin",
    "day_of_year_cos",
    "on_the_hour",
    "on_the_quarter_hour",
    "midnight",
    "noon",
    "first_of_month_midnight",
)

#: Police code fields: compared without leading zeros, so a city's zero-padding ("008") and a
#: client's lack of it ("8", "8.0") are one category, whatever widths the city uses.
_CODE_COLUMNS = ("district", "beat", "ward", "community_area")
_FLOAT_CODE = re.compile(r"^(\d+)\.0+$")
_LEADING_ZEROS = re.compile(r"^0+(?=\d)")
_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})

# "045XX S MARSHFIELD AVE": the digits before the X's are the hundred block (X's are masked
# digits), then the street with its direction prefix.
_BLOCK = re.compile(r"^(?P<digits>\d*)(?P<mask>X+) (?P<street>.+)$")
_DIRECTIONS = frozenset({"N", "S", "E", "W"})
#: Chicago's addresses have at most five digits; beyond this a block number is not an address.
_MAX_BLOCK_DIGITS = 9

#: Prepared incidents: column name -> one numpy array per column (object arrays for text,
#: ``None`` for missing; float arrays with NaN; ``datetime64[ns]`` for ``date``).
Prepared = dict[str, np.ndarray]


# -- cleaning, once per distinct value ------------------------------------------------------


def clean_text(value: object) -> str | None:
    """Upper-cased with whitespace collapsed; blank or missing gives ``None``."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    text = " ".join(str(value).split()).upper()
    return text or None


def clean_code(value: object) -> str | None:
    """A police code without zero-padding: "8", "8.0" and "008" all give "8"."""
    text = clean_text(value)
    if text is None:
        return None
    match = _FLOAT_CODE.match(text)
    return _LEADING_ZEROS.sub("", match.group(1) if match else text)


def parse_block(block: str) -> tuple[float, str | None, str | None]:
    """``(hundred-block number, street, direction)`` of a masked block address.

    ``"045XX S MARSHFIELD AVE"`` -> ``(4500.0, "S MARSHFIELD AVE", "S")``; ``"0000X E
    ONTARIO ST"`` -> ``(0.0, "E ONTARIO ST", "E")``. A value that is not a masked address
    gives ``(nan, whole value upper-cased, None)``: the street is still a usable category.
    """
    text = clean_text(block) or ""
    match = _BLOCK.match(text)
    if not match:
        return (np.nan, text or None, None)
    digits = match["digits"].lstrip("0")
    if len(digits) + len(match["mask"]) > _MAX_BLOCK_DIGITS:
        # No street is numbered that high: a hostile or garbled value. Its number is unknown
        # (and would overflow a float, or exceed Python's int-parsing limit, if computed).
        number = np.nan
    else:
        number = float(int(digits or "0") * 10 ** len(match["mask"]))
    street = match["street"]
    first = street.split(" ", 1)[0]
    return (number, street, first if first in _DIRECTIONS else None)


def _domestic_value(value: object) -> float:
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    text = clean_text(value)
    if text is None:
        return np.nan
    lowered = text.lower()
    return 1.0 if lowered in _TRUE else 0.0 if lowered in _FALSE else np.nan


def _per_distinct(values: np.ndarray, fn: Callable[[object], object], missing: object) -> list:
    """``fn`` of every row, computed once per distinct non-missing value (as a list)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = [fn(u) for u in uniques] + [missing]
    return [mapped[c] for c in codes]


def _object_column(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.full(len(frame), None, dtype=object)
    return frame[name].to_numpy(dtype=object, na_value=None)


def _float_column(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    values = frame[name]
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        values = pd.to_numeric(values, errors="coerce")
    return values.to_numpy(dtype="float64", na_value=np.nan)


def _date_column(frame: pd.DataFrame) -> np.ndarray:
    if "date" not in frame.columns:
        return np.full(len(frame), np.datetime64("NaT", "ns"))
    dates = frame["date"]
    if isinstance(dates.dtype, pd.DatetimeTZDtype):
        dates = dates.dt.tz_localize(None)
    elif not pd.api.types.is_datetime64_dtype(dates):
        dates = pd.to_datetime(dates, errors="coerce", format="ISO8601")
    return dates.to_numpy(dtype="datetime64[ns]")


def _coordinate_key(
    latitude: np.ndarray, longitude: np.ndarray, step: float, rounding
) -> np.ndarray:
    """``"<lat index>:<lon index>"`` of a grid of ``step`` degrees; ``None`` without a point."""
    out = np.full(len(latitude), None, dtype=object)
    # Off the globe is no place (and would overflow the int64 grid index into garbage keys).
    # NaN compares false, so this also leaves out missing coordinates.
    located = (np.abs(latitude) <= 90.0) & (np.abs(longitude) <= 180.0)
    if located.any():
        lat_code = rounding(latitude[located] / step).astype(np.int64).astype(str)
        lon_code = rounding(longitude[located] / step).astype(np.int64).astype(str)
        out[located] = np.char.add(np.char.add(lat_code, ":"), lon_code).astype(object)
    return out


def prepare_incidents(frame: pd.DataFrame) -> Prepared:
    """The cleaned model-input columns plus the parsed ones (street, point, cell...).

    Tolerates missing columns and nulls; never reads a leak column.
    """
    blocks = _per_distinct(_object_column(frame, "block"), clean_text, None)
    parsed = _per_distinct(np.asarray(blocks, dtype=object), parse_block, (np.nan, None, None))
    latitude = _float_column(frame, "latitude")
    longitude = _float_column(frame, "longitude")
    prepared: Prepared = {
        "date": _date_column(frame),
        "block": np.asarray(blocks, dtype=object),
        "street": np.asarray([p[1] for p in parsed], dtype=object),
        "direction": np.asarray([p[2] for p in parsed], dtype=object),
        "block_number": np.asarray([p[0] for p in parsed], dtype="float64"),
        "location_description": np.asarray(
            _per_distinct(
                _object_column(frame, "location_description"),
                lambda v: normalise_location_text(v) if clean_text(v) else None,
                None,
            ),
            dtype=object,
        ),
        "latitude": latitude,
        "longitude": longitude,
        # Five decimals is about a metre: the city publishes one jittered point per address,
        # so the exact point stands for one building.
        "point": _coordinate_key(latitude, longitude, 1e-5, np.round),
        "cell": _coordinate_key(latitude, longitude, _CELL_DEGREES, np.floor),
        "domestic": np.asarray(
            _per_distinct(_object_column(frame, "domestic"), _domestic_value, np.nan),
            dtype="float64",
        ),
    }
    for column in _CODE_COLUMNS:
        prepared[column] = np.asarray(
            _per_distinct(_object_column(frame, column), clean_code, None), dtype=object
        )
    prepared["daypart"] = daypart(prepared["date"])
    return prepared


def daypart(dates: np.ndarray) -> np.ndarray:
    """The quarter of the day ("0": 00-06 h, ..., "3": 18-24 h) as a key part; ``None`` if NaT."""
    out = np.full(len(dates), None, dtype=object)
    known = ~np.isnat(dates)
    if known.any():
        d = dates[known]
        hours = (d - d.astype("datetime64[D]")).astype("timedelta64[h]").astype(np.int64)
        out[known] = np.asarray(["0", "1", "2", "3"], dtype=object)[hours // 6]
    return out


def time_features(dates) -> dict[str, np.ndarray]:
    """Clock and calendar features of naive local timestamps (NaT gives NaN everywhere).

    Plain numpy calendar arithmetic: no pandas accessor, so one row costs microseconds.
    """
    d = np.asarray(dates, dtype="datetime64[ns]")
    missing = np.isnat(d)
    safe = np.where(missing, np.datetime64(0, "ns"), d)
    day = safe.astype("datetime64[D]")
    seconds = (safe - day).astype("timedelta64[s]").astype(np.int64)
    month_start = day.astype("datetime64[M]")
    year_start = day.astype("datetime64[Y]")
    first_day_of_year = year_start.astype("datetime64[D]")
    days_in_year = ((year_start + 1).astype("datetime64[D]") - first_day_of_year).astype(np.int64)

    def number(values: np.ndarray) -> np.ndarray:
        out = values.astype("float64")
        out[missing] = np.nan
        return out

    hour = number(seconds // 3600)
    minute = number(seconds % 3600 // 60)
    second = number(seconds % 60)
    day_of_month = number((day - month_start.astype("datetime64[D]")).astype(np.int64) + 1)
    day_of_year = number((day - first_day_of_year).astype(np.int64) + 1)
    # Fraction of the year, so 31 Dec and 1 Jan are neighbours on the circle.
    angle = 2 * np.pi * (day_of_year - 1) / days_in_year
    on_hour = (minute == 0) & (second == 0)
    midnight = on_hour & (hour == 0)
    return {
        "hour": hour,
        "minute": minute,
        "time_of_day": (hour * 60 + minute) / _MINUTES_PER_DAY,
        # 1970-01-01 was a Thursday; Monday is 0 as in pandas.
        "weekday": number((day.astype(np.int64) + 3) % 7),
        "month": number(month_start.astype(np.int64) % 12 + 1),
        "day_of_month": day_of_month,
        "day_of_year_sin": np.sin(angle),
        "day_of_year_cos": np.cos(angle),
        "on_the_hour": number(on_hour),
        "on_the_quarter_hour": number((minute % 15 == 0) & (second == 0)),
        "midnight": number(midnight),
        "noon": number(on_hour & (hour == 12)),
        "first_of_month_midnight": number(midnight & (day_of_month == 1)),
    }


# -- place history ----------------------------------------------------------------------------


def history_key(prepared: Prepared, columns: tuple[str, ...]) -> np.ndarray:
    """One string key per row from ``columns`` joined by "|"; ``None`` when any part is."""
    parts = [prepared[c] for c in columns]
    if len(parts) == 1:
        return parts[0]
    complete = np.ones(len(parts[0]), dtype=bool)
    for part in parts:
        complete &= pd.notna(part)
    out = np.full(len(parts[0]), None, dtype=object)
    if complete.any():
        joined = parts[0][complete].astype(str)
        for part in parts[1:]:
            joined = np.char.add(np.char.add(joined, "|"), part[complete].astype(str))
        out[complete] = joined.astype(object)
    return out


def expanding_counts(
    keys: np.ndarray, times: np.ndarray, labels: np.ndarray, lag_days: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: how many rows with the same key happened *strictly earlier* than the row's time
    minus ``lag_days``, and how many of those were burglaries.

    Rows at the same second do not see each other (a row never sees its own label, nor one
    recorded at the same moment). Missing keys or times get zero history. Row order is free.
    """
    keys = np.asarray(keys, dtype=object)
    times = np.asarray(times, dtype="datetime64[ns]")
    n = np.zeros(len(keys), dtype="float64")
    s = np.zeros(len(keys), dtype="float64")
    valid = pd.notna(keys) & ~np.isnat(times)
    if not valid.any():
        return n, s
    codes, _ = pd.factorize(keys[valid])
    codes = codes.astype(np.int64)
    seconds = times[valid].astype("datetime64[s]").astype(np.int64)
    lag = int(round(lag_days * 86_400))
    base = seconds.min() - lag
    # One sortable number per row: key first, then seconds since ``base`` (all >= 0 and below
    # the stride), so the rows of a key are contiguous and in time order.
    stride = np.int64(seconds.max() - base + 1)
    composite = codes * stride + (seconds - base)
    order = np.argsort(composite, kind="stable")
    sorted_composite = composite[order]
    cumulative_n = np.arange(len(order) + 1, dtype="float64")
    cumulative_s = np.concatenate([[0.0], np.cumsum(labels[valid][order])])
    # Rows of the same key before (time - lag): position of that moment minus the key's start.
    key_start = np.searchsorted(sorted_composite, codes * stride, side="left")
    cutoff = np.searchsorted(sorted_composite, codes * stride + (seconds - lag - base), "left")
    cutoff = np.maximum(cutoff, key_start)
    n[valid] = cumulative_n[cutoff] - cumulative_n[key_start]
    s[valid] = cumulative_s[cutoff] - cumulative_s[key_start]
    return n, s


def _positions(index: pd.Index, values: np.ndarray) -> np.ndarray:
    """Position of each value in ``index``, -1 when absent or missing.

    The values are wrapped in an object Index first: handing pandas a bare object array makes
    it infer a dtype on every call, which is most of the cost of scoring a single row.
    """
    return index.get_indexer(pd.Index(values, dtype=object))


def smoothed_share(
    burglaries: np.ndarray, incidents: np.ndarray, prior: np.ndarray | float, smoothing: float
) -> np.ndarray:
    """Burglary share shrunk towards ``prior``: (s + m * prior) / (n + m).

    Why shrink: a block with one past burglary out of one incident is not a 100 % burglary
    block; ``smoothing`` (m) is how many incidents of evidence count as much as the prior.
    """
    return (burglaries + smoothing * prior) / (incidents + smoothing)


class IncidentFeatures(TransformerMixin, BaseEstimator):
    """Canonical incident frame -> model-input frame (see the module docstring).

    Parameters
    ----------
    history_keys:
        Names from :data:`HISTORY_KEYS` to build past-history features for (burglary share
        and incidents per day of each place).
    smoothing:
        Pseudo-incidents of the overall share mixed into each place's share.
    min_category_count:
        A category seen fewer times than this in training is treated as unseen (missing).
    max_categories:
        At most this many (most frequent) values per categorical column.
    rotations:
        Angles in degrees of the extra rotated coordinate axes.
    min_history_days:
        Floor of the history length used for per-day rates, so rows at the very start of the
        training window do not get huge rates from a handful of days.
    categorical_columns:
        Names from :data:`CATEGORICAL_COLUMNS` passed to the model as categories.
    history_lag_days:
        Training rows see only history older than this many days (0: everything strictly
        earlier). Meant to mimic the gap between training and scoring. The default (0) is the
        committed selection's: its second round tried 182 days (+0.0009 mean validation
        PR-AUC on 2015-2017, under the 0.001 an option must gain).
    learn_location_vocabulary:
        Learn the renames of location wordings inside the training window and map unseen
        wordings to the known ones they restate (:mod:`superdan_assets.ml.vocabulary`).
        Off, a reworded category is a new, unseen one.
    location_dropout:
        Share of training rows whose location type the model is shown as missing (its
        category and every history keyed on it), chosen at random with a fixed seed. Why:
        without it the model has almost never seen an incident without a location type and
        answers such an incident badly (``benchmarks/vocabulary.py``); with it, it learns
        what the rest of the incident says on its own. The history tables still count every
        row under its real location.
    map_unseen_areas:
        At serving, replace a beat, district, ward or community area the training rows never
        had by the known one whose incidents lie nearest the incident's point
        (:mod:`superdan_assets.ml.areas`): police areas get redrawn and renumbered.
    """

    def __init__(
        self,
        history_keys: tuple[str, ...] = DEFAULT_HISTORY_KEYS,
        smoothing: float = 40.0,
        min_category_count: int = 20,
        max_categories: int = 2000,
        rotations: tuple[float, ...] = (15.0, 30.0, 45.0, 60.0, 75.0),
        min_history_days: float = 30.0,
        categorical_columns: tuple[str, ...] = DEFAULT_CATEGORICAL_COLUMNS,
        history_lag_days: float = 0.0,
        learn_location_vocabulary: bool = True,
        location_dropout: float = 0.0,
        map_unseen_areas: bool = True,
    ):
        self.history_keys = history_keys
        self.smoothing = smoothing
        self.min_category_count = min_category_count
        self.max_categories = max_categories
        self.rotations = rotations
        self.min_history_days = min_history_days
        self.categorical_columns = categorical_columns
        self.history_lag_days = history_lag_days
        self.learn_location_vocabulary = learn_location_vocabulary
        self.location_dropout = location_dropout
        self.map_unseen_areas = map_unseen_areas

    # -- fitting ----------------------------------------------------------------------
    def fit(self, X: pd.DataFrame, y=None):
        """Learn vocabularies, the coordinate frame and the history tables from training rows."""
        labels = self._labels(X, y)
        self._fit(self._learn_feed_mappings(prepare_incidents(X), labels), labels)
        return self

    def fit_transform(self, X: pd.DataFrame, y=None, **fit_params) -> pd.DataFrame:
        """Fit, and return training features whose history uses strictly earlier rows only."""
        labels = self._labels(X, y)
        prepared = self._learn_feed_mappings(prepare_incidents(X), labels)
        self._fit(prepared, labels)
        dropped = self._dropout_mask(len(labels))
        history = self._expanding_history(prepared, labels, dropped)
        if dropped.any():
            prepared = dict(prepared)
            location = prepared["location_description"].copy()
            location[dropped] = None
            prepared["location_description"] = location
        return self._features(prepared, history)

    def _dropout_mask(self, n: int) -> np.ndarray:
        """Training rows shown without their location type (see ``location_dropout``)."""
        if not 0.0 <= self.location_dropout < 1.0:
            raise ValueError(f"location_dropout must be in [0, 1); got {self.location_dropout}")
        if self.location_dropout == 0.0:
            return np.zeros(n, dtype=bool)
        return np.random.default_rng(0).random(n) < self.location_dropout

    def _labels(self, X: pd.DataFrame, y) -> np.ndarray:
        if y is None:
            raise ValueError(
                "IncidentFeatures needs the labels (1 = burglary) to learn place histories"
            )
        labels = np.asarray(y, dtype="float64")
        if labels.shape != (len(X),):
            raise ValueError(f"y has shape {labels.shape}; expected ({len(X)},)")
        if np.isnan(labels).any() or not np.isin(labels, (0.0, 1.0)).all():
            raise ValueError("y must be 0 (theft) or 1 (burglary) with no missing values")
        return labels

    def _learn_feed_mappings(self, prepared: Prepared, labels: np.ndarray) -> Prepared:
        """Learn what serving needs when the feed drifts: the location vocabulary (every
        training row is counted under its mapped wording) and where each police area lies
        (training rows keep their own areas)."""
        self.area_centres_ = (
            {
                column: AreaCentres.learn(
                    prepared[column], prepared["latitude"], prepared["longitude"]
                )
                for column in _CODE_COLUMNS
            }
            if self.map_unseen_areas
            else {}
        )
        if not self.learn_location_vocabulary:
            self.location_vocabulary_ = None
            return prepared
        self.location_vocabulary_ = LocationVocabulary.learn(
            prepared["location_description"], prepared["date"], labels
        )
        return self._map_locations(prepared)

    def _map_areas(self, prepared: Prepared) -> Prepared:
        # getattr: a model pickled before the centres existed maps nothing.
        for column, centres in getattr(self, "area_centres_", {}).items():
            prepared[column] = centres.map_values(
                prepared[column], prepared["latitude"], prepared["longitude"]
            )
        return prepared

    def _map_locations(self, prepared: Prepared) -> Prepared:
        # getattr: a model pickled before the vocabulary existed maps nothing.
        vocabulary = getattr(self, "location_vocabulary_", None)
        if vocabulary is not None:
            prepared["location_description"] = vocabulary.map_values(
                prepared["location_description"]
            )
        return prepared

    def _check_params(self) -> None:
        unknown = [k for k in self.history_keys if k not in HISTORY_KEYS]
        if unknown:
            raise ValueError(f"unknown history keys {unknown}; choose from {list(HISTORY_KEYS)}")
        unknown = [c for c in self.categorical_columns if c not in CATEGORICAL_COLUMNS]
        if unknown:
            raise ValueError(
                f"unknown categorical columns {unknown}; choose from {list(CATEGORICAL_COLUMNS)}"
            )

    def _fit(self, prepared: Prepared, labels: np.ndarray) -> None:
        self._check_params()
        if len(labels) == 0:
            raise ValueError("cannot fit IncidentFeatures on zero rows")
        self.categories_ = {c: self._vocabulary(prepared[c]) for c in self.categorical_columns}
        self.category_dtypes_ = {c: pd.CategoricalDtype(v) for c, v in self.categories_.items()}
        lat = prepared["latitude"]
        self.reference_latitude_ = float(np.nanmean(lat)) if np.isfinite(lat).any() else 0.0
        times = prepared["date"]
        known = times[~np.isnat(times)]
        self.window_start_ = known.min() if len(known) else np.datetime64("NaT", "ns")
        self.window_end_ = known.max() if len(known) else np.datetime64("NaT", "ns")
        self.window_days_ = (
            float((self.window_end_ - self.window_start_).astype(np.int64)) / _NS_PER_DAY
            if len(known)
            else 0.0
        )
        self.prior_ = float(labels.mean())
        self.history_ = {
            name: self._history_table(history_key(prepared, HISTORY_KEYS[name]), labels)
            for name in self.history_keys
        }
        self.feature_names_out_ = np.asarray(self._feature_names(), dtype=object)

    @staticmethod
    def _history_table(keys: np.ndarray, labels: np.ndarray):
        """``(Index of keys, incidents per key, burglaries per key)`` over all training rows."""
        valid = pd.notna(keys)
        codes, uniques = pd.factorize(keys[valid])
        sizes = np.bincount(codes, minlength=len(uniques)).astype("float64")
        sums = np.bincount(codes, weights=labels[valid], minlength=len(uniques))
        return pd.Index(np.asarray(uniques, dtype=object), dtype=object), sizes, sums

    def _vocabulary(self, values: np.ndarray) -> list[str]:
        counts = pd.Series(values, dtype=object).value_counts(dropna=True)
        counts = counts[counts >= self.min_category_count]
        # Most frequent first, ties by name: the same data always gives the same vocabulary.
        ordered = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
        return sorted(str(v) for v, _ in ordered[: self.max_categories])

    # -- history ----------------------------------------------------------------------
    def _expanding_history(
        self, prepared: Prepared, labels: np.ndarray, dropped: np.ndarray
    ) -> dict[str, np.ndarray]:
        """History features of training rows from strictly earlier training rows.

        ``dropped`` rows get no history for the keys that include the location type, as a row
        without one gets at serving.
        """
        times = prepared["date"]
        lag = self.history_lag_days
        everything = np.full(len(times), "all", dtype=object)
        total_n, total_s = expanding_counts(everything, times, labels, lag)
        # The overall share so far; before any history, an uninformative one half.
        prior = (total_s + 1.0) / (total_n + 2.0)
        elapsed = (times - self.window_start_).astype(np.int64) / _NS_PER_DAY - lag
        days = np.maximum(np.where(np.isnat(times), np.nan, elapsed), self.min_history_days)
        out = {}
        for name in self.history_keys:
            columns = HISTORY_KEYS[name]
            n, s = expanding_counts(history_key(prepared, columns), times, labels, lag)
            if "location_description" in columns:
                n[dropped] = 0.0
                s[dropped] = 0.0
            out[name] = self._history_features(n, s, prior, days)
        return out

    def _lookup_history(self, prepared: Prepared) -> dict[str, np.ndarray]:
        """History features of new rows: the whole training period is their past."""
        days = max(self.window_days_, self.min_history_days)
        out = {}
        for name in self.history_keys:
            index, sizes, sums = self.history_[name]
            where = _positions(index, history_key(prepared, HISTORY_KEYS[name]))
            found = where >= 0
            # Indexed by the found rows only: a table can be empty (no training row had that
            # key, e.g. a city without blocks), and indexing it with -1 would raise.
            n = np.zeros(len(where))
            s = np.zeros(len(where))
            n[found] = sizes[where[found]]
            s[found] = sums[where[found]]
            out[name] = self._history_features(n, s, self.prior_, days)
        return out

    def _history_features(self, n, s, prior, days) -> np.ndarray:
        return np.column_stack([smoothed_share(s, n, prior, self.smoothing), n / days])

    # -- transform --------------------------------------------------------------------
    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Features of new rows, with the training period as their history."""
        check_is_fitted(self, "history_")
        prepared = self._map_areas(self._map_locations(prepare_incidents(X)))
        return self._features(prepared, self._lookup_history(prepared))

    def _features(self, prepared: Prepared, history: dict[str, np.ndarray]) -> pd.DataFrame:
        columns: dict[str, object] = dict(time_features(prepared["date"]))
        lat = prepared["latitude"]
        lon = prepared["longitude"]
        columns["latitude"] = lat
        columns["longitude"] = lon
        # Longitude degrees shrink with latitude; scale them so rotations are true rotations.
        east = lon * np.cos(np.radians(self.reference_latitude_))
        for angle in self.rotations:
            theta = np.radians(angle)
            columns[f"rotated_{angle:g}"] = east * np.cos(theta) + lat * np.sin(theta)
        columns["block_number"] = prepared["block_number"]
        columns["domestic"] = prepared["domestic"]
        for name in self.history_keys:
            columns[f"history_{name}_burglary_share"] = history[name][:, 0]
            columns[f"history_{name}_per_day"] = history[name][:, 1]
        for column in self.categorical_columns:
            dtype = self.category_dtypes_[column]
            # Unseen, rare and missing values all get code -1, i.e. missing.
            codes = _positions(dtype.categories, prepared[column])
            columns[column] = pd.Categorical.from_codes(codes, dtype=dtype)
        return pd.DataFrame(
            {name: columns[name] for name in self.feature_names_out_},
            index=pd.RangeIndex(len(prepared["date"])),
        )

    def _feature_names(self) -> list[str]:
        names = list(_TIME_FEATURES) + ["latitude", "longitude"]
        names += [f"rotated_{angle:g}" for angle in self.rotations]
        names += ["block_number", "domestic"]
        for name in self.history_keys:
            names += [f"history_{name}_burglary_share", f"history_{name}_per_day"]
        names += list(self.categorical_columns)
        return names

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Names of the output columns, in order."""
        check_is_fitted(self, "feature_names_out_")
        return self.feature_names_out_.copy()
