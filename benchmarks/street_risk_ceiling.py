"""How high can a place-rate forecast's PAI at 1 % go? Oracle rankings on the validation days.

Why: issue 10 asks the street-risk model for 1.15 x the best baseline's PAI at 1 %. For theft
the best baseline (all-history counts) already ranks the chronic places, so the question is
how much better *any* estimate of a block's rate could do. This script ranks blocks by what no
forecast can know: each block's actual count in a window centred on the forecast day (the day
itself left out), optionally scaled by a shrunk same-weekday or same-month factor, and scores
those rankings exactly as ``benchmarks/street_risk.py`` does (blocks seen before the day as
equal units, crimes elsewhere count as misses, pooled over the days; ties to more long-term
crimes). If even these oracles stay below the target, the target is out of reach for a
forecast that ranks blocks by their rate.

Usage::

    nice -n 10 python benchmarks/street_risk_ceiling.py [--type theft] [--period validation]

Prints, last, one JSON object: the PAI at 1 % of each ranking, and of the all-history and
last-28-days baselines, over the same days (every 5th day of the period).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.street_risk import DEFAULT_DATA, PERIODS, load_rows  # noqa: E402
from superdan_assets.ml.street_risk.features import weekday_of  # noqa: E402
from superdan_assets.ml.street_risk.history import CRIME_TYPES, Events, day_number  # noqa: E402
from superdan_assets.ml.street_risk.metrics import flagged_count, top_units  # noqa: E402
from superdan_assets.ml.street_risk.units import build_units  # noqa: E402

SHARE = 0.01
EVER = -(1 << 40)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="bulk export folder")
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/superdan-export-cache"))
    parser.add_argument("--type", choices=sorted(CRIME_TYPES), default="theft")
    parser.add_argument("--period", choices=sorted(PERIODS), default="validation")
    parser.add_argument("--step", type=int, default=5)
    args = parser.parse_args(argv)
    if not args.data.exists():
        print(f"no bulk export at {args.data}; pass --data", file=sys.stderr)
        return 2

    started = time.perf_counter()
    first, last = PERIODS[args.period]
    rows = load_rows(args.data, args.cache_dir, "2012-01-01", "2019-01-01")
    # The oracles read up to a year after the day: all rows, not only those before the period.
    units = build_units(rows)
    label = CRIME_TYPES[args.type]
    events = Events.from_rows(rows, units)
    ev = events.of_type(label)
    first_seen = events.first_day()
    day_of_row = (
        rows["date"].to_numpy().astype("datetime64[D]") - np.datetime64("1970-01-01", "D")
    ).astype(np.int64)
    of_type = rows["label"].to_numpy() == label
    days = [day_number(d) for d in pd.date_range(first, last, freq=f"{args.step}D")]

    def centred(day: int, half: int, weights=None) -> np.ndarray:
        """The block's count within ``half`` days of ``day``, the day itself left out."""
        around = ev.counts(day - half, day + half + 1, weights=weights)
        on_day = ev.counts(day, day + 1, weights=weights)
        return around - on_day

    def same_weekday(day: int):
        return lambda d: (weekday_of(d) == weekday_of(day)).astype(float)

    def weekday_scaled(day: int, shrink: float = 10.0) -> np.ndarray:
        rate = centred(day, 182)
        same = centred(day, 182, weights=same_weekday(day))
        return rate * (same + shrink) / (rate / 7 + shrink)

    def month_scaled(day: int, shrink: float = 3.0) -> np.ndarray:
        rate = centred(day, 182)
        month = centred(day, 30)
        return rate * (month + shrink) / (rate * 61 / 365 + shrink)

    rankings = {
        "all_history": lambda d: ev.counts(EVER, d),
        "last_28_days": lambda d: ev.counts(d - 28, d) + 1e-6 * ev.counts(EVER, d),
        "last_365_days": lambda d: ev.counts(d - 365, d) + 1e-6 * ev.counts(EVER, d),
        "oracle_centred_14d": lambda d: centred(d, 14),
        "oracle_centred_60d": lambda d: centred(d, 60),
        "oracle_centred_182d": lambda d: centred(d, 182),
        "oracle_centred_365d": lambda d: centred(d, 365),
        "oracle_182d_weekday_scaled": weekday_scaled,
        "oracle_182d_month_scaled": month_scaled,
    }
    hits = dict.fromkeys(rankings, 0.0)
    crimes = 0
    for day in days:
        active = np.flatnonzero(first_seen < day)
        actual = ev.counts(day, day + 1)[active]
        crimes += int((of_type & (day_of_row == day)).sum())
        k = flagged_count(len(active), SHARE)
        tie = ev.counts(EVER, day)[active]
        for name, rank in rankings.items():
            hits[name] += float(actual[top_units(rank(day)[active], k, tie)].sum())
    pai = {name: round(h / crimes / SHARE, 3) for name, h in hits.items()}
    best_baseline = max(pai["all_history"], pai["last_28_days"])
    print(
        json.dumps(
            {
                "benchmark": "street_risk_ceiling",
                "type": args.type,
                "period": args.period,
                "days": len(days),
                "crimes": crimes,
                "pai_1pct": pai,
                "best_oracle_over_all_history": round(
                    max(v for n, v in pai.items() if n.startswith("oracle")) / pai["all_history"], 4
                ),
                "target_pai_1pct": round(1.15 * best_baseline, 3),
                "total_seconds": round(time.perf_counter() - started, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
