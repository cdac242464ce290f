"""The places a street-risk forecast ranks: a city's reported blocks, or ~150 m grid cells.

Why blocks: Chicago publishes each incident's masked hundred-block ("033XX N HALSTED ST"),
the finest place the city itself reports, and the unit a person reads ("that street"). A
block's location is the median of its incidents' coordinates: the median ignores the odd
mis-geocoded report that a mean would follow. Chicago's address grid puts 800 numbers in a
mile, so a hundred-block is about 1/8 mile (~200 m) of one street: blocks are close to equal
lengths of street, which is why the evaluation counts them as equal units of area (the share
flagged is the share of blocks, see :mod:`.metrics`).

Why cells where a city has no blocks: a square grid of ``cell_size_m`` (150 m, about one
hundred-block) gives equal-area units for any city with coordinates only. Cell keys come from
a fixed grid anchored at (0, 0) degrees, so a cell's key never depends on which days of history
were read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: Metres in one degree of latitude (mean Earth radius 6,371 km).
METRES_PER_DEGREE = 6_371_000 * math.pi / 180
#: Side of a grid cell where a city reports no blocks: about one hundred-block.
DEFAULT_CELL_SIZE_M = 150.0
#: Use blocks when at least this share of incidents has one.
MIN_BLOCK_SHARE = 0.5


@dataclass
class Units:
    """The ranked places: a key per unit and its location (NaN when no incident had one).

    ``kind`` is ``"block"`` or ``"cell"``; ``ref_lat`` is the latitude the metric projection
    (and, for cells, the grid) uses, fixed per city so that distances are comparable.
    """

    kind: str
    keys: np.ndarray
    latitude: np.ndarray
    longitude: np.ndarray
    ref_lat: float
    cell_size_m: float = DEFAULT_CELL_SIZE_M
    _index: pd.Index = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # A hash index: looking up half a million incident keys is one vectorised call.
        self._index = pd.Index(np.asarray(self.keys, dtype=object).astype(str))

    def __len__(self) -> int:
        return len(self.keys)

    def xy(self) -> np.ndarray:
        """Unit locations in metres (equirectangular at ``ref_lat``), shape (n, 2)."""
        return project(self.latitude, self.longitude, self.ref_lat)

    def index_of(self, keys) -> np.ndarray:
        """Unit index of each key, -1 for a key that is not a unit."""
        values = np.asarray(keys, dtype=object).astype(str)
        return self._index.get_indexer(values).astype(np.int64)

    def keys_of(self, frame: pd.DataFrame) -> pd.Series:
        """The unit key of each incident row (<NA> when it has neither block nor location)."""
        if self.kind == "block":
            return frame["block"].astype("string")
        return cell_keys(frame["latitude"], frame["longitude"], self.ref_lat, self.cell_size_m)

    def nearest(self, latitude, longitude, max_distance_m: float) -> tuple[np.ndarray, np.ndarray]:
        """Index of the nearest located unit to each point and its distance in metres.

        A point farther than ``max_distance_m`` from every unit gets index -1 (it is not in
        the city's forecast area, and answering with a far-away block would mislead).
        """
        from scipy.spatial import cKDTree

        located = np.flatnonzero(np.isfinite(self.latitude) & np.isfinite(self.longitude))
        points = project(np.asarray(latitude, float), np.asarray(longitude, float), self.ref_lat)
        if located.size == 0:
            return np.full(len(points), -1), np.full(len(points), np.inf)
        tree = cKDTree(self.xy()[located])
        distance, nearest = tree.query(points, distance_upper_bound=max_distance_m)
        found = np.isfinite(distance)
        index = np.full(len(points), -1, dtype=np.int64)
        index[found] = located[nearest[found]]
        return index, distance


def project(latitude, longitude, ref_lat: float) -> np.ndarray:
    """Latitude/longitude to metres on a plane tangent at ``ref_lat`` (fine within a city)."""
    lat = np.asarray(latitude, dtype=float)
    lon = np.asarray(longitude, dtype=float)
    x = lon * METRES_PER_DEGREE * math.cos(math.radians(ref_lat))
    y = lat * METRES_PER_DEGREE
    return np.column_stack([x, y])


def cell_keys(latitude, longitude, ref_lat: float, cell_size_m: float) -> pd.Series:
    """Grid-cell key ``"cell:<row>:<col>"`` of each point, <NA> without coordinates."""
    lat = pd.to_numeric(pd.Series(latitude), errors="coerce").to_numpy(dtype=float)
    lon = pd.to_numeric(pd.Series(longitude), errors="coerce").to_numpy(dtype=float)
    xy = project(lat, lon, ref_lat)
    ok = np.isfinite(xy).all(axis=1)
    keys = pd.Series(pd.NA, index=range(len(lat)), dtype="string")
    rows = np.floor(xy[ok, 1] / cell_size_m).astype(np.int64)
    cols = np.floor(xy[ok, 0] / cell_size_m).astype(np.int64)
    keys[ok] = [f"cell:{r}:{c}" for r, c in zip(rows, cols, strict=True)]
    return keys


def reference_latitude(latitude) -> float:
    """The city's projection latitude: the median, rounded to a degree so it stays fixed."""
    lat = pd.to_numeric(pd.Series(latitude), errors="coerce").dropna()
    return float(round(lat.median())) if len(lat) else 0.0


def uses_blocks(rows: pd.DataFrame) -> bool:
    """Whether the city reports blocks: most rows have a non-empty ``block``."""
    if "block" not in rows.columns or rows.empty:
        return False
    block = rows["block"].astype("string").str.strip()
    return bool((block.notna() & (block != "")).mean() >= MIN_BLOCK_SHARE)


def build_units(
    rows: pd.DataFrame,
    kind: str | None = None,
    cell_size_m: float = DEFAULT_CELL_SIZE_M,
    ref_lat: float | None = None,
) -> Units:
    """The units of a frame of incidents (``block``, ``latitude``, ``longitude``).

    ``kind`` None picks blocks when the city reports them (:func:`uses_blocks`), else cells.
    Units are sorted by key, so the same history always gives the same order.
    """
    if kind is None:
        kind = "block" if uses_blocks(rows) else "cell"
    if kind not in ("block", "cell"):
        raise ValueError(f"unit kind {kind!r} is not 'block' or 'cell'")
    if ref_lat is None:
        ref_lat = reference_latitude(rows["latitude"]) if "latitude" in rows else 0.0
    lat = pd.to_numeric(rows["latitude"], errors="coerce") if len(rows) else pd.Series([], float)
    lon = pd.to_numeric(rows["longitude"], errors="coerce") if len(rows) else pd.Series([], float)
    if kind == "block":
        keys = rows["block"].astype("string").str.strip() if len(rows) else pd.Series([], "string")
        keys = keys.mask(keys == "", pd.NA)
    else:
        keys = cell_keys(lat, lon, ref_lat, cell_size_m)
        keys.index = rows.index
    frame = pd.DataFrame({"key": keys, "lat": lat.astype(float), "lon": lon.astype(float)})
    frame = frame[frame["key"].notna()]
    located = frame.dropna(subset=["lat", "lon"])
    medians = located.groupby("key", sort=True)[["lat", "lon"]].median()
    all_keys = np.sort(frame["key"].astype(str).unique())
    medians = medians.reindex(all_keys)
    return Units(
        kind=kind,
        keys=np.asarray(all_keys, dtype=object),
        latitude=medians["lat"].to_numpy(dtype=float),
        longitude=medians["lon"].to_numpy(dtype=float),
        ref_lat=float(ref_lat),
        cell_size_m=float(cell_size_m),
    )
