"""Drift report for every day of 2018-06 against a 2017 reference, with the real model.

Usage: python benchmarks/drift.py [--export-path ../shared/data/chicago] [--month 2018-06]

Setup (not timed): the project's model is trained on 2015-2016 with ``train_and_evaluate``
(the seed-protocol baseline skipped), 2017 is its held-out period, and the reference profile is
built from the 2017 rows and the model's scores on them, exactly as ``crime_model`` does.
Timed, per day, in process: scoring the day's rows with the model and computing the full
report (feature drift, prediction drift, label share, realised performance with bootstrap
intervals, per-district breakdown), as the ``drift_report`` asset does.
Prints one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_EXPORT = REPO.parent / "shared" / "data" / "chicago"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export-path", type=Path, default=DEFAULT_EXPORT)
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/superdan-export-cache"))
    parser.add_argument("--month", default="2018-06")
    args = parser.parse_args()
    if not args.export_path.exists():
        sys.exit(f"export folder {args.export_path} not found; pass --export-path")

    from superdan_assets.ml.drift import build_reference_profile, drift_report
    from superdan_assets.ml.labels import build_feature_rows
    from superdan_assets.ml.training import train_and_evaluate
    from superdan_assets.sources.export import ExportSource

    source = ExportSource(args.export_path, cache_dir=args.cache_dir)
    month = pd.Period(args.month, freq="M")
    rows = build_feature_rows(
        source.fetch(pd.Timestamp("2015-01-01"), month.end_time.normalize() + pd.Timedelta(days=1))
    )
    train = rows[rows["date"] < "2017-01-01"]
    reference_rows = rows[(rows["date"] >= "2017-01-01") & (rows["date"] < "2018-01-01")]
    result = train_and_evaluate(train, reference_rows, include_seed_protocol=False)
    model = result.pipeline
    profile = build_reference_profile(
        reference_rows.reset_index(drop=True),
        model.predict_proba(reference_rows)[:, 1],
        threshold=result.threshold,
    )

    days = pd.date_range(month.start_time, month.end_time.normalize(), freq="D")
    verdicts: Counter[str] = Counter()
    seconds = []
    day_key = rows["date"].dt.strftime("%Y-%m-%d")
    for day in days:
        key = day.strftime("%Y-%m-%d")
        day_rows = rows[day_key == key].reset_index(drop=True)
        started = time.perf_counter()
        scores = model.predict_proba(day_rows)[:, 1] if len(day_rows) else None
        report = drift_report(day_rows, profile, scores, day=key)
        seconds.append(time.perf_counter() - started)
        verdicts[report.verdict] += 1
        print(f"{key} rows={report.rows} {report.verdict} {'; '.join(report.reasons)}", flush=True)
    print(
        json.dumps(
            {
                "benchmark": "drift",
                "month": args.month,
                "reference": "2017 (held-out period of a model trained on 2015-2016)",
                "reference_rows": int(len(reference_rows)),
                "model_version": result.version,
                "days": len(days),
                "seconds_per_day": round(statistics.mean(seconds), 3),
                "max_seconds_per_day": round(max(seconds), 3),
                "ok": verdicts["OK"],
                "warns": verdicts["WARN"],
                "alerts": verdicts["ALERT"],
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            }
        )
    )


if __name__ == "__main__":
    main()
