"""Fixtures for the data-quality tests: a hand-made clean day, the city context the checks
learn (Chicago's profile from stored days, its spec's bounds and timezone), and the real export
(if present)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from superdan_assets.checks.profile import CityProfile
from superdan_assets.cities import resolve_spec
from superdan_assets.ml.labels import build_feature_rows
from superdan_assets.ml.schema import to_canonical
from superdan_assets_tests.conftest import SHARED_DATA

EXPORT_CACHE = Path("/tmp/superdan-export-cache")

DAY = pd.Timestamp("2018-06-05")
NEXT_DAY = DAY + pd.Timedelta(days=1)
CHICAGO = resolve_spec("chicago")
#: Chicago values of each category column (codes as its spec pads them).
CATEGORIES = {
    "location_description": ["STREET", "RESIDENCE", "APARTMENT", "SIDEWALK"],
    "district": ["001", "002", "003", "004"],
    "beat": ["0111", "0112", "0113", "0114"],
    "ward": ["01", "02", "03", "04"],
    "community_area": ["01", "02", "03", "04"],
}
#: Days of stored history the learnt profile is built from (the four weeks before ``DAY``).
HISTORY_DAYS = 28


def make_raw_day(n: int = 60, day: pd.Timestamp = DAY, first_id: int = 20_000_000) -> pd.DataFrame:
    """A clean canonical day of ``n`` reports whose categories are all usual Chicago values."""
    cats = CATEGORIES
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
    return to_canonical(raw, "chicago", source="test", code_widths=CHICAGO.codes.widths)


def history_days(days: int = HISTORY_DAYS) -> dict[str, pd.DataFrame]:
    """Clean raw days before ``DAY`` (what the city's store would hold), by day key. One of
    them has ``RESIDENCE - GARAGE``, a wording that is then known though rare."""
    frames = {}
    for back in range(days, 0, -1):
        day = DAY - pd.Timedelta(days=back)
        frame = make_raw_day(60, day, first_id=10_000_000 + 1_000 * back)
        if back == 7:
            frame.loc[0, "location_description"] = "RESIDENCE - GARAGE"
        frames[day.strftime("%Y-%m-%d")] = frame
    return frames


def learnt_profile(asset: str, frames: dict[str, pd.DataFrame]) -> CityProfile:
    """Chicago's profile of ``asset`` learnt from ``frames`` (day key -> stored day), merged
    day by day as the pipeline does, and read back from its JSON as a run would."""
    profile = CityProfile(city="chicago", asset=asset)
    for key, frame in frames.items():
        profile = profile.merge(frame, [key])
    return CityProfile.from_json(profile.to_json())


def chicago_context(profile: CityProfile | None) -> dict:
    """The keyword arguments a Chicago run passes the validators (see ``validate_step``)."""
    return {"profile": profile, "bounds": CHICAGO.bounds.as_dict(), "timezone": CHICAGO.timezone}


@pytest.fixture(scope="session")
def raw_profile() -> CityProfile:
    return learnt_profile("raw_crimes", history_days())


@pytest.fixture(scope="session")
def feature_profile() -> CityProfile:
    days = history_days()
    return learnt_profile("crime_features", {k: build_feature_rows(f) for k, f in days.items()})


@pytest.fixture
def chicago(raw_profile) -> dict:
    """Chicago's context for the raw_crimes suite."""
    return chicago_context(raw_profile)


@pytest.fixture
def chicago_features(feature_profile) -> dict:
    """Chicago's context for the crime_features suite."""
    return chicago_context(feature_profile)


@pytest.fixture
def raw_day() -> pd.DataFrame:
    return make_raw_day()


@pytest.fixture
def feature_day(raw_day) -> pd.DataFrame:
    return build_feature_rows(raw_day)


@pytest.fixture(scope="session")
def real_export():
    """An ``ExportSource`` over the real Chicago export, or a skip saying where it was looked
    for."""
    path = SHARED_DATA / "chicago"
    if not (path / "crimes_2018.csv.gz").exists():
        pytest.skip(f"real Chicago export not found at {path} (../shared/data beside the checkout)")
    from superdan_assets.sources.export import ExportSource

    return ExportSource(path, cache_dir=EXPORT_CACHE)
