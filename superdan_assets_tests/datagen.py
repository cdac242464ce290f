"""Small, realistic Chicago-export files generated inside tests (no real data needed).

Rows look like the portal's bulk export (same headers, date format, zero-padded codes), with a
fixed seed so a test can recompute exactly what it expects.
"""

from __future__ import annotations

import csv
import gzip
import random
from datetime import datetime, timedelta
from pathlib import Path

EXPORT_HEADER = [
    "ID",
    "Case Number",
    "Date",
    "Block",
    "IUCR",
    "Primary Type",
    "Description",
    "Location Description",
    "Arrest",
    "Domestic",
    "Beat",
    "District",
    "Ward",
    "Community Area",
    "FBI Code",
    "X Coordinate",
    "Y Coordinate",
    "Updated On",
    "Latitude",
    "Longitude",
]
LIVE_EXTRA = ["Year", "Location"]

_TYPES = [
    ("THEFT", "0820", "$500 AND UNDER", "06"),
    ("THEFT", "0810", "OVER $500", "06"),
    ("BURGLARY", "0610", "FORCIBLE ENTRY", "05"),
    ("BATTERY", "0486", "DOMESTIC BATTERY SIMPLE", "08B"),
    ("CRIMINAL DAMAGE", "1320", "TO VEHICLE", "14"),
]
_PLACES = ["STREET", "RESIDENCE", "APARTMENT", "SIDEWALK", "RESIDENCE-GARAGE", "SMALL RETAIL STORE"]
_STREETS = ["S STATE ST", "N CLARK ST", "W MADISON ST", "S HALSTED ST", "E 63RD ST"]


def export_rows(start: str, days: int, per_day: int, seed: int = 7) -> list[dict[str, str]]:
    """``per_day`` incidents on each of ``days`` days from ``start`` (export text format)."""
    rng = random.Random(seed)
    first = datetime.fromisoformat(start)
    rows = []
    next_id = 10_000_000
    for day in range(days):
        for _ in range(per_day):
            when = first + timedelta(days=day, seconds=rng.randrange(86_400))
            ptype, iucr, desc, fbi = rng.choice(_TYPES)
            lat = 41.70 + rng.random() * 0.30
            lon = -87.80 + rng.random() * 0.25
            next_id += 1
            rows.append(
                {
                    "ID": str(next_id),
                    "Case Number": f"JA{next_id % 1_000_000:06d}",
                    "Date": when.strftime("%m/%d/%Y %I:%M:%S %p"),
                    "Block": f"0{rng.randrange(10, 99)}XX {rng.choice(_STREETS)}",
                    "IUCR": iucr,
                    "Primary Type": ptype,
                    "Description": desc,
                    "Location Description": rng.choice(_PLACES),
                    "Arrest": rng.choice(["true", "false"]),
                    "Domestic": rng.choice(["true", "false"]),
                    "Beat": f"{rng.randrange(111, 2535):04d}",
                    "District": f"{rng.randrange(1, 26):03d}",
                    "Ward": str(rng.randrange(1, 51)),
                    "Community Area": str(rng.randrange(1, 78)),
                    "FBI Code": fbi,
                    "X Coordinate": str(rng.randrange(1_100_000, 1_200_000)),
                    "Y Coordinate": str(rng.randrange(1_820_000, 1_950_000)),
                    "Updated On": (when + timedelta(days=3)).strftime("%m/%d/%Y %I:%M:%S %p"),
                    "Latitude": f"{lat:.9f}",
                    "Longitude": f"{lon:.9f}",
                }
            )
    return rows


def write_export(path: Path, rows: list[dict[str, str]], live_shape: bool = False) -> Path:
    """Write rows as an export CSV (``.gz`` suffix compresses; ``live_shape`` adds Year/Location)."""
    header = EXPORT_HEADER + (LIVE_EXTRA if live_shape else [])
    opener = gzip.open if path.name.endswith(".gz") else open
    path.parent.mkdir(parents=True, exist_ok=True)
    with opener(path, "wt", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=header)
        writer.writeheader()
        for row in rows:
            out = dict(row)
            if live_shape:
                out["Year"] = row["Date"][6:10]
                out["Location"] = f"({row['Latitude']}, {row['Longitude']})"
            writer.writerow(out)
    return path
