"""Which recent slice of the training window should the decision threshold be chosen on?

The policy (``ml.metrics.choose_threshold``): the highest precision among thresholds with
recall >= 0.6. The threshold is chosen on labelled days the deployed model did not learn from
(scored by a model fitted without them) and then applied to the model refitted on the whole
window. This benchmark measures, on validation years only (never 2018), which slice keeps the
promise on the period that follows: recall at the threshold >= the policy level.

For each origin (the first day of a validation year):

1. ``validation model``: fitted on the training rows before ``origin - scored_days``; it scores
   the last ``scored_days`` of the training window (one fit, "refit-free" for every slice).
2. ``final model``: fitted on every training row before the origin; it scores the following
   period (the validation year), quarter by quarter.
3. For each slice length N (the last N scored days) and each recall target, the policy picks a
   threshold on the slice; the table reports recall and precision at that threshold on the
   following period.

Usage (2 threads, nice'd, the lead's shared machine)::

    nice -n 10 python benchmarks/threshold_window.py --origins 2016-01-01 2017-01-01

Prints progress on stderr and, last on stdout, one JSON object. Reads nothing at or after the
latest origin's following year (default: nothing of 2018).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from superdan_assets.ml import metrics  # noqa: E402
from superdan_assets.ml.labels import build_feature_rows  # noqa: E402
from superdan_assets.ml.model import build_pipeline, resolve_params  # noqa: E402
from superdan_assets.sources.export import ExportSource  # noqa: E402

DEFAULT_DATA = Path(os.environ.get("SUPERDAN_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
SLICES = (28, 56, 90, 180)
TARGETS = (0.6, 0.62, 0.65, 0.67, 0.7)


def _log(message: str) -> None:
    print(f"[threshold_window {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _labels(rows: pd.DataFrame) -> np.ndarray:
    return rows["label"].to_numpy(dtype="int64")


def evaluate_origin(
    rows: pd.DataFrame, origin: pd.Timestamp, scored_days: int, params: dict, follow_days: int
) -> dict:
    train = rows[rows["date"] < origin].reset_index(drop=True)
    follow_end = origin + pd.Timedelta(days=follow_days)
    follow = rows[(rows["date"] >= origin) & (rows["date"] < follow_end)].reset_index(drop=True)
    cut = origin - pd.Timedelta(days=scored_days)
    fit_rows = train[train["date"] < cut].reset_index(drop=True)
    scored = train[train["date"] >= cut].reset_index(drop=True)
    _log(
        f"origin {origin.date()}: validation fit on {len(fit_rows)} rows, "
        f"scoring {len(scored)} rows {scored['date'].min().date()}..{scored['date'].max().date()}"
    )
    start = time.perf_counter()
    validation_model = build_pipeline(params).fit(fit_rows, _labels(fit_rows))
    validation_scores = validation_model.predict_proba(scored)[:, 1]
    validation_seconds = time.perf_counter() - start
    del validation_model
    _log(f"origin {origin.date()}: final fit on {len(train)} rows ({validation_seconds:.0f} s)")
    start = time.perf_counter()
    final_model = build_pipeline(params).fit(train, _labels(train))
    follow_scores = final_model.predict_proba(follow)[:, 1]
    final_seconds = time.perf_counter() - start
    y_follow = _labels(follow)
    quarter = ((follow["date"] - origin).dt.days // 91).clip(upper=3).to_numpy()
    results = []
    for n in SLICES:
        recent = (scored["date"] >= origin - pd.Timedelta(days=n)).to_numpy()
        for target in TARGETS:
            threshold = metrics.choose_threshold(
                _labels(scored)[recent], validation_scores[recent], target
            )
            at = metrics.threshold_metrics(y_follow, follow_scores, threshold)
            quarters = []
            for q in range(4):
                mask = quarter == q
                if mask.any():
                    m = metrics.threshold_metrics(y_follow[mask], follow_scores[mask], threshold)
                    quarters.append(
                        {"recall": round(m["recall"], 4), "precision": round(m["precision"], 4)}
                    )
            results.append(
                {
                    "slice_days": n,
                    "target_recall": target,
                    "threshold": round(threshold, 4),
                    "slice_rows": int(recent.sum()),
                    "follow_recall": round(at["recall"], 4),
                    "follow_precision": round(at["precision"], 4),
                    "quarters": quarters,
                    "min_quarter_recall": min(q["recall"] for q in quarters),
                }
            )
            _log(
                f"origin {origin.date()} slice {n:>3} d target {target}: threshold "
                f"{threshold:.4f}, following recall {at['recall']:.3f} precision "
                f"{at['precision']:.3f}, quarters "
                + " ".join(f"{q['recall']:.3f}" for q in quarters)
            )
    return {
        "origin": str(origin.date()),
        "train_rows": len(train),
        "follow_rows": len(follow),
        "follow_window": [str(follow["date"].min().date()), str(follow["date"].max().date())],
        "follow_pr_auc": round(float(metrics.evaluate(y_follow, follow_scores, 0.5)["pr_auc"]), 4),
        "validation_fit_seconds": round(validation_seconds, 1),
        "final_fit_seconds": round(final_seconds, 1),
        "results": results,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA / "chicago")
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/superdan-export-cache"))
    parser.add_argument("--train-start", default="2012-01-01")
    parser.add_argument("--origins", nargs="+", default=["2016-01-01", "2017-01-01"])
    parser.add_argument("--scored-days", type=int, default=max(SLICES))
    parser.add_argument("--follow-days", type=int, default=365)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    origins = [pd.Timestamp(o) for o in args.origins]
    end = max(origins) + pd.Timedelta(days=args.follow_days)
    if end > pd.Timestamp("2018-01-01"):
        print("refusing to read 2018: it is the test year, scored once elsewhere", file=sys.stderr)
        return 2
    started = time.perf_counter()
    raw = ExportSource(args.data, cache_dir=args.cache_dir).fetch(
        pd.Timestamp(args.train_start), end, _log
    )
    rows = build_feature_rows(raw)
    del raw
    rows = rows[rows["date"] < end].reset_index(drop=True)
    params = resolve_params({"n_jobs": args.threads})
    per_origin = [
        evaluate_origin(rows, o, args.scored_days, params, args.follow_days) for o in origins
    ]
    summary = {}
    for n in SLICES:
        for target in TARGETS:
            picked = [
                r
                for o in per_origin
                for r in o["results"]
                if r["slice_days"] == n and r["target_recall"] == target
            ]
            summary[f"slice_{n}_target_{target}"] = {
                "mean_follow_recall": round(
                    float(np.mean([r["follow_recall"] for r in picked])), 4
                ),
                "min_follow_recall": min(r["follow_recall"] for r in picked),
                "min_quarter_recall": min(r["min_quarter_recall"] for r in picked),
                "mean_follow_precision": round(
                    float(np.mean([r["follow_precision"] for r in picked])), 4
                ),
            }
    print(
        json.dumps(
            {
                "benchmark": "threshold_window",
                "origins": [o["origin"] for o in per_origin],
                "summary": summary,
                "per_origin": per_origin,
                "total_seconds": round(time.perf_counter() - started, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
