"""Hand-made incidents for the ML tests: canonical frames small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd

from superdan_assets.ml.schema import to_canonical

#: Location types with very different burglary rates, as in the real data.
PLACES = {
    "RESIDENCE": 0.55,
    "APARTMENT": 0.45,
    "RESIDENCE-GARAGE": 0.6,
    "STREET": 0.03,
    "SMALL RETAIL STORE": 0.04,
    "DEPARTMENT STORE": 0.01,
}
BLOCKS = [
    f"{n:03d}XX {street}"
    for n in range(10, 40, 3)
    for street in ("S MARSHFIELD AVE", "N CLARK ST", "W NORTH AVE")
]


def incident(**fields) -> dict:
    """One THEFT incident with every canonical field filled; ``fields`` override."""
    row = {
        "id": "1",
        "case_number": "HZ100001",
        "date": "2017-03-05T14:30:00",
        "block": "045XX S MARSHFIELD AVE",
        "iucr": "0820",
        "primary_type": "THEFT",
        "description": "$500 AND UNDER",
        "location_description": "STREET",
        "arrest": "false",
        "domestic": "false",
        "beat": "0924",
        "district": "009",
        "ward": "20",
        "community_area": "61",
        "fbi_code": "06",
        "x_coordinate": 1166000.0,
        "y_coordinate": 1874000.0,
        "latitude": 41.811,
        "longitude": -87.666,
        "updated_on": "2018-02-10T15:50:00",
    }
    row.update(fields)
    return row


def canonical(rows: list[dict], city: str = "chicago") -> pd.DataFrame:
    """Hand-written rows as a canonical frame (ids made unique when left at the default)."""
    frame = pd.DataFrame(rows)
    if "id" in frame.columns and frame["id"].nunique() < len(frame):
        frame["id"] = [str(i) for i in range(1, len(frame) + 1)]
    return to_canonical(frame, city)


def synthetic_incidents(start: str, days: int, per_day: int, seed: int = 0) -> pd.DataFrame:
    """A canonical frame where burglary depends on place type, block and hour (learnable).

    Burglaries carry the classification fields of a burglary (iucr, description, fbi_code),
    thefts those of a theft, as real rows do, so leak tests have something to leak.
    """
    rng = np.random.default_rng(seed)
    n = days * per_day
    day = pd.Timestamp(start) + pd.to_timedelta(np.repeat(np.arange(days), per_day), unit="D")
    seconds = rng.integers(0, 86_400, n) // 60 * 60
    date = day + pd.to_timedelta(seconds, unit="s")
    place = rng.choice(list(PLACES), size=n)
    block_index = rng.integers(0, len(BLOCKS), n)
    block_effect = (block_index % 3 == 0) * 0.2  # some blocks are burglary blocks
    night = np.asarray(date.hour < 6) * 0.1
    p = np.clip(np.array([PLACES[x] for x in place]) + block_effect + night, 0.0, 0.95)
    burglary = rng.random(n) < p
    lat = 41.75 + 0.01 * (block_index % 10) + rng.normal(0, 0.001, n)
    lon = -87.70 + 0.01 * (block_index // 10) + rng.normal(0, 0.001, n)
    frame = pd.DataFrame(
        {
            "id": [str(i) for i in range(1, n + 1)],
            "case_number": [f"HZ{i:06d}" for i in range(n)],
            "date": date,
            "block": [BLOCKS[i] for i in block_index],
            "iucr": np.where(burglary, "0610", "0820"),
            "primary_type": np.where(burglary, "BURGLARY", "THEFT"),
            "description": np.where(burglary, "FORCIBLE ENTRY", "$500 AND UNDER"),
            "location_description": place,
            "arrest": rng.random(n) < 0.1,
            "domestic": rng.random(n) < 0.05,
            "beat": [f"{1000 + i % 7:04d}" for i in block_index],
            "district": [f"{10 + i % 3:03d}" for i in block_index],
            "ward": [f"{i % 5 + 1:02d}" for i in block_index],
            "community_area": [f"{i % 4 + 20:02d}" for i in block_index],
            "fbi_code": np.where(burglary, "05", "06"),
            "latitude": np.round(lat, 6),
            "longitude": np.round(lon, 6),
        }
    )
    return to_canonical(frame, "chicago")


#: Small, fast boosting settings for tests (one thread: the machines are shared).
FAST_PARAMS = {"n_estimators": 40, "num_leaves": 15, "min_child_samples": 10, "n_jobs": 1}
