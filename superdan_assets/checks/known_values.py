"""The values Chicago has actually used, shipped with the package (``known_values.json``).

The JSON is generated from the real 2012-2018 export by ``scripts/build_known_values.py``;
regenerate it (and review the diff) when the reference period changes. Loaded once per process.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

KNOWN_VALUES_PATH = Path(__file__).with_name("known_values.json")


@dataclass(frozen=True)
class KnownValues:
    """Known categories per asset and column, and the city's coordinate box."""

    city: str
    period: tuple[str, str]
    categories: dict[str, dict[str, tuple[str, ...]]]
    bounds: dict[str, tuple[float, float]]

    def values(self, asset: str, column: str) -> list[str]:
        """Sorted known values of ``column`` in ``asset`` (``raw_crimes`` or ``crime_features``)."""
        return sorted(self.categories[asset][column])


@lru_cache(maxsize=4)
def load_known_values(path: str | Path = KNOWN_VALUES_PATH) -> KnownValues:
    """Parse the known-values JSON at ``path``."""
    doc = json.loads(Path(path).read_text())
    categories = {
        asset: {column: tuple(counts) for column, counts in doc[asset].items()}
        for asset in ("raw_crimes", "crime_features")
    }
    bounds = {column: (float(lo), float(hi)) for column, (lo, hi) in doc["bounds"].items()}
    return KnownValues(
        city=doc["city"], period=tuple(doc["period"]), categories=categories, bounds=bounds
    )
