"""Regenerate ``superdan_assets/checks/known_values.json`` from the real Chicago export.

Usage: python scripts/build_known_values.py [--export-path ../shared/data/chicago]
                                            [--cache-dir /tmp/superdan-export-cache]

Why a generated file: the data-quality suites flag a primary type, location description or
piece of police geography that the city has never used before. "Never used" must mean the
real data, not a list typed from memory, and it must ship inside the package (the checks run
where ``../shared/data`` does not exist). The file stores each known value with how often it
occurred in 2012-2018, so a reviewer can see which values are rare, plus the coordinate box
(latitude/longitude as the design fixes them, state-plane x/y learnt from the rows inside that
box, rounded outwards). Raw location descriptions also accept the normalised (post-2018) spelling
of a known value. Prints one JSON summary line.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from superdan_assets.ml.labels import normalise_location_description  # noqa: E402
from superdan_assets.sources.export import ExportSource  # noqa: E402

DEFAULT_EXPORT = REPO.parent / "shared" / "data" / "chicago"
OUTPUT = REPO / "superdan_assets" / "checks" / "known_values.json"

#: Chicago's extent in degrees (city limits plus a little margin; O'Hare is the western tip).
LATITUDE_BOUNDS = (41.64, 42.03)
LONGITUDE_BOUNDS = (-87.94, -87.52)
#: State-plane feet are rounded outwards to this step so the box is a little wider than the data.
XY_ROUNDING_FEET = 5_000

RAW_CATEGORICAL = (
    "primary_type",
    "location_description",
    "district",
    "beat",
    "ward",
    "community_area",
)
FEATURE_CATEGORICAL = ("location_description", "district", "beat", "ward", "community_area")


def value_counts(values: pd.Series) -> dict[str, int]:
    """Every non-null value with its count, most frequent first (ties alphabetically)."""
    counts = values.dropna().astype(str).value_counts()
    return {str(k): int(v) for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))}


def xy_bounds(frame: pd.DataFrame) -> dict[str, list[float]]:
    """State-plane bounds of the rows whose latitude/longitude are inside the city box."""
    inside = frame["latitude"].between(*LATITUDE_BOUNDS) & frame["longitude"].between(
        *LONGITUDE_BOUNDS
    )
    located = frame.loc[inside]
    out = {}
    for column in ("x_coordinate", "y_coordinate"):
        lo = math.floor(located[column].min() / XY_ROUNDING_FEET) * XY_ROUNDING_FEET
        hi = math.ceil(located[column].max() / XY_ROUNDING_FEET) * XY_ROUNDING_FEET
        out[column] = [float(lo), float(hi)]
    return out


def build(raw: pd.DataFrame) -> dict:
    """The known-values document for ``raw`` (all canonical rows of the reference period)."""
    normalised_locations = normalise_location_description(raw["location_description"])
    features = {c: value_counts(raw[c]) for c in FEATURE_CATEGORICAL if c != "location_description"}
    features["location_description"] = value_counts(normalised_locations)
    raw_known = {c: value_counts(raw[c]) for c in RAW_CATEGORICAL}
    # The portal re-punctuated location wording after 2018 ("RESIDENCE-GARAGE" became
    # "RESIDENCE - GARAGE"); the normalised spelling of a known value is the same place, so it
    # is known too (count 0: never seen in that spelling in the reference period).
    for value in features["location_description"]:
        raw_known["location_description"].setdefault(value, 0)
    return {
        "city": "chicago",
        "generated_by": "scripts/build_known_values.py",
        "source": "Chicago 'Crimes - 2001 to Present' bulk export (../shared/data/chicago)",
        "period": [str(raw["date"].min().date()), str(raw["date"].max().date())],
        "rows": len(raw),
        "raw_crimes": raw_known,
        "crime_features": {c: features[c] for c in FEATURE_CATEGORICAL},
        "bounds": {
            "latitude": list(LATITUDE_BOUNDS),
            "longitude": list(LONGITUDE_BOUNDS),
            **xy_bounds(raw),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export-path", type=Path, default=DEFAULT_EXPORT)
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/superdan-export-cache"))
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    source = ExportSource(args.export_path, cache_dir=args.cache_dir)
    raw = source.fetch(pd.Timestamp("2012-01-01"), pd.Timestamp("2019-01-01"))
    document = build(raw)
    args.output.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
    summary = {
        "output": str(args.output),
        "rows": document["rows"],
        "period": document["period"],
        **{f"raw.{c}": len(v) for c, v in document["raw_crimes"].items()},
        **{f"features.{c}": len(v) for c, v in document["crime_features"].items()},
        "bounds": document["bounds"],
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
