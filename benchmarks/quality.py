"""Time and false-alarm rate of the data-quality suites and the drift report on real days.

Usage: python benchmarks/quality.py [--export-path ../shared/data/chicago]
                                    [--start 2018-06-01] [--end 2018-07-01] [--no-docs]

What it measures, in one process (as a backfill or a daily run would):

* GX: the first validation (imports GX and builds the context) and then each ``raw_crimes`` and
  ``crime_features`` partition of ``[start, end)`` validated with 12 weeks of history (and Data
  Docs written to a temporary folder unless ``--no-docs``); how many clean real days fail an
  ERROR or a WARN expectation.
* Drift: building the 2017 reference profile (~77k THEFT/BURGLARY rows), and one report per day
  of ``[start, end)``; the verdicts. The scores are a real model's: ``train_and_evaluate`` on
  2016, with 2017 (its held-out period) as the reference, as the training asset does.

Without the real export it stops with an error naming the missing file.

Prints one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_EXPORT = REPO.parent / "shared" / "data" / "chicago"


def summary(seconds: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(seconds), 4),
        "max": round(max(seconds), 4),
        "n": len(seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export-path", type=Path, default=DEFAULT_EXPORT)
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/superdan-export-cache"))
    parser.add_argument("--start", default="2018-06-01")
    parser.add_argument("--end", default="2018-07-01")
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()
    needed = args.export_path / "crimes_2018.csv.gz"
    if not needed.is_file():
        sys.exit(
            f"quality.py needs the real Chicago export: {needed} not found; "
            "pass --export-path FOLDER (the folder holding crimes_2018.csv.gz)"
        )

    from superdan_assets.checks.history import PartitionStats
    from superdan_assets.checks.validate import validate_crime_features, validate_raw_crimes
    from superdan_assets.ml import drift
    from superdan_assets.ml.labels import build_feature_rows
    from superdan_assets.ml.training import train_and_evaluate
    from superdan_assets.sources.export import ExportSource

    start, end = pd.Timestamp(args.start), pd.Timestamp(args.end)
    source = ExportSource(args.export_path, cache_dir=args.cache_dir)
    raw = source.fetch(start - pd.Timedelta(days=84), end)
    by_day = {d: g.reset_index(drop=True) for d, g in raw.groupby(raw["date"].dt.normalize())}
    features = {d: build_feature_rows(f) for d, f in by_day.items()}
    raw_stats = {d: PartitionStats.from_frame(d, f) for d, f in by_day.items()}
    feature_stats = {d: PartitionStats.from_frame(d, f) for d, f in features.items()}
    days = [d for d in sorted(by_day) if start <= d < end]

    docs = None if args.no_docs else Path(tempfile.mkdtemp(prefix="superdan-docs-"))
    one_day = pd.Timedelta(days=1)
    cold_started = time.perf_counter()
    validate_raw_crimes(by_day[days[0]], days[0], days[0] + one_day, docs_dir=docs)
    cold = time.perf_counter() - cold_started

    raw_seconds, feature_seconds = [], []
    failures: Counter[str] = Counter()
    for d in days:
        window = [x for x in by_day if d - pd.Timedelta(days=84) <= x < d]
        outcome = validate_raw_crimes(
            by_day[d], d, d + one_day, [raw_stats[x] for x in window], docs_dir=docs
        )
        f_outcome = validate_crime_features(
            features[d], d, d + one_day, [feature_stats[x] for x in window], docs_dir=docs
        )
        raw_seconds.append(outcome.seconds)
        feature_seconds.append(f_outcome.seconds)
        for o in (outcome, f_outcome):
            for e in o.failed():
                failures[f"{o.asset}.{e.name} ({e.severity.value})"] += 1

    fit = build_feature_rows(source.fetch(pd.Timestamp("2016-01-01"), pd.Timestamp("2017-01-01")))
    reference_rows = build_feature_rows(
        source.fetch(pd.Timestamp("2017-01-01"), pd.Timestamp("2018-01-01"))
    )
    trained = train_and_evaluate(fit, reference_rows, include_seed_protocol=False)

    def predict(frame: pd.DataFrame) -> np.ndarray:
        return trained.pipeline.predict_proba(frame)[:, 1]

    profile_started = time.perf_counter()
    profile = drift.build_reference_profile(
        reference_rows,
        predict(reference_rows),
        threshold=trained.threshold,
        metadata={"period": "2017"},
    )
    profile_seconds = time.perf_counter() - profile_started
    profile_path = Path(tempfile.mkdtemp(prefix="superdan-profile-")) / "reference.json"
    profile.save(profile_path)

    drift_seconds, verdicts = [], Counter()
    flagged = {}
    for d in days:
        frame = features[d]
        p = predict(frame)
        t = time.perf_counter()
        report = drift.drift_report(frame, profile, p, day=str(d.date()))
        drift_seconds.append(time.perf_counter() - t)
        verdicts[report.verdict] += 1
        if report.verdict != drift.OK:
            flagged[str(d.date())] = report.reasons

    result = {
        "days": len(days),
        "period": [args.start, args.end],
        "gx_first_validation_seconds": round(cold, 3),
        "raw_crimes_validation_seconds": summary(raw_seconds),
        "crime_features_validation_seconds": summary(feature_seconds),
        "data_docs": docs is not None,
        "expectation_failures_on_real_days": dict(failures),
        "model_version": trained.version,
        "reference_rows": len(reference_rows),
        "reference_profile_seconds": round(profile_seconds, 3),
        "reference_profile_bytes": profile_path.stat().st_size,
        "drift_seconds_per_day": summary(drift_seconds),
        "drift_verdicts": dict(verdicts),
        "drift_flagged_days": flagged,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
