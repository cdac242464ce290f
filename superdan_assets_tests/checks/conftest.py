"""Fixtures for the data-quality tests: a hand-made clean day and the real export (if present)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from superdan_assets.checks.known_values import load_known_values
from superdan_assets.ml.labels import build_feature_rows
from superdan_assets.ml.schema import to_canonical
from superdan_assets_tests.conftest import SHARED_DATA

EXPORT_CACHE = Path("/tmp/superdan-export-cache")

DAY = pd.Timestamp("2018-06-05")
NEXT_DAY = DAY + pd.Timedelta(days=1)


def make_raw_day(n: int = 60, day: pd.Timestamp = DAY, first_id: int = 20_000_000) -> pd.DataFrame:
    """A clean canonical day of ``n`` reports whose categories are all known Chicago values."""
    known = load_known_values()
    cats = {
        c: list(known.categories["raw_crimes"][c])[:4]
        for c in ("location_description", "district", "beat", "ward", "community_area")
    }
    types = ["THEFT", "BURGLARY", "BATTERY", "THEFT", "CRIMINAL DAMAGE"]
    u = np.linspace(0.05, 0.95, n)
    raw = pd.DataFrame(
        {
            "id": [str(first_id + i) for i in range(n)],
            "case_number": [f"JB{300000 + i}" for i in range(n)],
            "date": [day + pd.Timedelta(minutes=int(m)) for m in np.linspace(0, 24 * 60 - 1, n)],
            "block": ["001XX N STATE ST"] * n,
            "iucr": ["0820"] * n,
            "primary_type": [types[i % len(types)] for i in range(n)],
            "description": ["$500 AND UNDER"] * n,
            "arrest": ["false"] * n,
            "domestic": ["false"] * n,
            "fbi_code": ["06"] * n,
            "latitude": 41.70 + 0.25 * u,
            "longitude": -87.80 + 0.20 * u,
            "x_coordinate": 1_150_000 + 40_000 * u,
            "y_coordinate": 1_840_000 + 90_000 * u,
            "updated_on": [day + pd.Timedelta(days=3)] * n,
            **{c: [v[i % len(v)] for i in range(n)] for c, v in cats.items()},
        }
    )
    return to_canonical(raw, "chicago", source="test")


@pytest.fixture
def raw_day() -> pd.DataFrame:
    return make_raw_day()


@pytest.fixture
def feature_day(raw_day) -> pd.DataFrame:
    return build_feature_rows(raw_day)


@pytest.fixture(scope="session")
def real_export():
    """An ``ExportSource`` over the real Chicago export, or a skip saying where it was looked for."""
    path = SHARED_DATA / "chicago"
    if not (path / "crimes_2018.csv.gz").exists():
        pytest.skip(f"real Chicago export not found at {path} (../shared/data beside the checkout)")
    from superdan_assets.sources.export import ExportSource

    return ExportSource(path, cache_dir=EXPORT_CACHE)
