"""Generated ``crime_features``-like rows with known structure, for the street-risk tests.

A grid of ``n_blocks`` blocks ~200 m apart (around Chicago's coordinates), each with its own
long-term theft and burglary rate (gamma-distributed: a few chronic hot spots, many quiet
blocks), plus near-repeat burglary: a burglary raises its block's and its neighbours' burglary
rate for the next two weeks. Fixed seed, so tests can rely on the structure being there.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ORIGIN = (41.85, -87.70)
STEP_DEG_LAT = 200 / 111_195
STEP_DEG_LON = 200 / (111_195 * np.cos(np.radians(41.85)))


def block_names(n_blocks: int) -> list[str]:
    side = int(np.ceil(np.sqrt(n_blocks)))
    return [f"0{10 + i // side}{i % side:02d}XX W TEST ST {i}" for i in range(n_blocks)]


def generate_rows(
    start: str = "2016-01-01",
    days: int = 400,
    n_blocks: int = 400,
    seed: int = 3,
    theft_per_day: float = 40.0,
    burglary_per_day: float = 10.0,
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n_blocks)))
    idx = np.arange(n_blocks)
    lat = ORIGIN[0] + (idx // side) * STEP_DEG_LAT
    lon = ORIGIN[1] + (idx % side) * STEP_DEG_LON
    names = block_names(n_blocks)
    theft_rate = rng.gamma(0.4, 1.0, n_blocks)
    theft_rate *= theft_per_day / theft_rate.sum()
    burglary_rate = rng.gamma(0.6, 1.0, n_blocks)
    burglary_rate *= burglary_per_day / burglary_rate.sum()
    neighbours = [
        np.flatnonzero(
            (np.abs(idx // side - i // side) <= 1) & (np.abs(idx % side - i % side) <= 1)
        )
        for i in idx
    ]
    boost = np.zeros(n_blocks)
    records = []
    first = pd.Timestamp(start)
    for day in range(days):
        date = first + pd.Timedelta(days=day)
        thefts = rng.poisson(theft_rate)
        burglaries = rng.poisson(burglary_rate * (1.0 + boost))
        boost *= 0.85
        for block in np.flatnonzero(burglaries):
            boost[neighbours[block]] += 1.5
        for counts, label in ((thefts, 0), (burglaries, 1)):
            for block in np.flatnonzero(counts):
                for _ in range(int(counts[block])):
                    records.append(
                        (
                            date + pd.Timedelta(minutes=int(rng.integers(0, 1440))),
                            names[block],
                            lat[block] + rng.normal(0, 0.0002),
                            lon[block] + rng.normal(0, 0.0002),
                            label,
                        )
                    )
    frame = pd.DataFrame(records, columns=["date", "block", "latitude", "longitude", "label"])
    frame = frame.astype(
        {
            "date": "datetime64[ns]",
            "block": "string",
            "latitude": "float64",
            "longitude": "float64",
            "label": "int8",
        }
    )
    return frame.sort_values("date", kind="stable").reset_index(drop=True)
