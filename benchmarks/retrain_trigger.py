"""How many failed ``no_performance_collapse`` days out of how many should launch a retrain?

A model is trained as the ``crime_model`` asset would on 2012-2014 (the last 90 days held out,
the drift reference is the model's PR-AUC on them), then lives through 2015-2017 unchanged. Every
day is judged with the drift report's own rule (``ml.drift.performance`` bootstrap interval,
``assets.monitoring.performance_collapsed`` with the default tolerance 0.05). For each (K, N):

* ``false_triggers_on_reference``: windows of N days inside the held-out period (where the
  model performs as its reference by construction) with >= K failed days: a retrain there
  would be a false alarm;
* ``first_trigger``: the first day of the decaying period at which K of the last N days failed;
* ``trigger_days_by_year``: on how many days of each later year the rule would fire.

Usage::

    nice -n 10 python benchmarks/retrain_trigger.py

Reads nothing of 2018 (the test year). Last line of stdout: one JSON object.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from superdan_assets.assets.monitoring import performance_collapsed  # noqa: E402
from superdan_assets.ml import drift, metrics  # noqa: E402
from superdan_assets.ml.labels import build_feature_rows  # noqa: E402
from superdan_assets.ml.model import build_pipeline, resolve_params  # noqa: E402
from superdan_assets.sources.export import ExportSource  # noqa: E402

DEFAULT_DATA = Path(os.environ.get("SUPERDAN_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
RULES = [(1, 1), (2, 3), (2, 7), (3, 7), (4, 7), (5, 7), (3, 14), (5, 14), (7, 14)]


def _log(message: str) -> None:
    print(f"[retrain_trigger {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def daily_flags(rows, scores, reference_pr_auc, config, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = rows["date"].dt.strftime("%Y-%m-%d").to_numpy()
    y = rows["label"].to_numpy(dtype="int64")
    out = []
    for day in sorted(set(days)):
        mask = days == day
        perf = dataclasses.asdict(drift.performance(y[mask], scores[mask], 0.5, config, rng))
        report = {"performance": perf, "reference_metrics": {"pr_auc": reference_pr_auc}}
        collapsed, _ = performance_collapsed(report, config.performance_tolerance)
        value = (perf.get("metrics") or {}).get("pr_auc", {}).get("value")
        out.append(
            {
                "day": day,
                "evaluated": bool(perf.get("evaluated")),
                "failed": collapsed,
                "pr_auc": value,
            }
        )
    return pd.DataFrame(out)


def windows_firing(failed: np.ndarray, k: int, n: int) -> np.ndarray:
    """For each day, whether >= k of the n days ending there failed (days in order)."""
    counts = np.convolve(failed.astype(int), np.ones(n, dtype=int))[: len(failed)]
    return counts >= k


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA / "chicago")
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/superdan-export-cache"))
    parser.add_argument("--train-start", default="2012-01-01")
    parser.add_argument("--deploy", default="2015-01-01", help="first day after the window")
    parser.add_argument("--end", default="2018-01-01", help="exclusive; never past 2018-01-01")
    parser.add_argument("--holdout-days", type=int, default=90)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    end = pd.Timestamp(args.end)
    if end > pd.Timestamp("2018-01-01"):
        print("refusing to read 2018: it is the test year", file=sys.stderr)
        return 2
    started = time.perf_counter()
    raw = ExportSource(args.data, cache_dir=args.cache_dir).fetch(
        pd.Timestamp(args.train_start), end, _log
    )
    rows = build_feature_rows(raw)
    del raw
    deploy = pd.Timestamp(args.deploy)
    holdout_start = deploy - pd.Timedelta(days=args.holdout_days)
    fit_rows = rows[rows["date"] < holdout_start].reset_index(drop=True)
    holdout = rows[(rows["date"] >= holdout_start) & (rows["date"] < deploy)].reset_index(drop=True)
    later = rows[(rows["date"] >= deploy) & (rows["date"] < end)].reset_index(drop=True)
    _log(f"fitting on {len(fit_rows)} rows before {holdout_start.date()}")
    model = build_pipeline(resolve_params({"n_jobs": args.threads}))
    model.fit(fit_rows, fit_rows["label"].to_numpy())
    holdout_scores = model.predict_proba(holdout)[:, 1]
    later_scores = model.predict_proba(later)[:, 1]
    reference = drift.build_reference_profile(holdout, holdout_scores, threshold=0.5)
    reference_pr_auc = float(reference.metrics["pr_auc"])
    config = drift.DriftConfig()
    _log(
        f"reference PR-AUC {reference_pr_auc:.4f}; judging {holdout['date'].dt.date.nunique()} "
        f"held-out and {later['date'].dt.date.nunique()} later days"
    )
    null_days = daily_flags(holdout, holdout_scores, reference_pr_auc, config)
    live_days = daily_flags(later, later_scores, reference_pr_auc, config, seed=1)
    years = live_days["day"].str[:4]
    quarters = later["date"].dt.year.astype(str) + "Q" + later["date"].dt.quarter.astype(str)
    realised = {
        q: round(
            float(
                metrics.evaluate(
                    later["label"][quarters == q].to_numpy(),
                    later_scores[(quarters == q).to_numpy()],
                    0.5,
                )["pr_auc"]
            ),
            4,
        )
        for q in sorted(quarters.unique())
    }
    rules = {}
    for k, n in RULES:
        null_fire = windows_firing(null_days["failed"].to_numpy(), k, n)
        live_fire = windows_firing(live_days["failed"].to_numpy(), k, n)
        first = live_days["day"][live_fire].min() if live_fire.any() else None
        rules[f"{k}_of_{n}"] = {
            "false_triggers_on_reference": int(null_fire[n - 1 :].sum()),
            "first_trigger": first,
            "trigger_days_by_year": {
                y: int(live_fire[(years == y).to_numpy()].sum()) for y in sorted(years.unique())
            },
        }
        _log(f"{k} of {n}: {rules[f'{k}_of_{n}']}")
    print(
        json.dumps(
            {
                "benchmark": "retrain_trigger",
                "train": [args.train_start, str((holdout_start - pd.Timedelta(days=1)).date())],
                "reference_window": [
                    str(holdout_start.date()),
                    str((deploy - pd.Timedelta(days=1)).date()),
                ],
                "reference_pr_auc": round(reference_pr_auc, 4),
                "failed_day_share_on_reference": round(float(null_days["failed"].mean()), 4),
                "failed_day_share_by_year": {
                    y: round(float(live_days["failed"][(years == y).to_numpy()].mean()), 4)
                    for y in sorted(years.unique())
                },
                "realised_pr_auc_by_quarter": realised,
                "rules": rules,
                "total_seconds": round(time.perf_counter() - started, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
