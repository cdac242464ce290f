"""A deployment that lives day by day, with the retraining loop and without it.

Shortened horizon by default (run here): the model is trained on 2012-01-01..2014-12-31 as the
``crime_model`` asset trains it (last 90 days held out for the gates and the drift reference,
threshold from the days before the holdout), then lives through 2015-01-01..2017-12-31 (the
issue's full horizon, through 2018, is ``--end 2019-01-01``; 2018 is the model-quality test
year, so it is not read by default). Every day:

1. the production model scores the day; the drift report's rule (``ml.drift.performance``
   bootstrap interval and ``assets.monitoring.performance_collapsed``) says whether its
   ``no_performance_collapse`` check failed;
2. the retraining sensor's own rule (``retraining.judge``, K of the last N days of the
   production model, one in flight, cooldown) decides;
3. on ``launch``, the model is retrained on the window ending that day (``train_and_evaluate``
   on 2012-01-01..day with a 90-day holdout; the random-forest baseline is skipped for speed,
   so ``beats_baselines`` compares with the class prior only) and promoted only when
   ``beats_baselines`` and ``no_regression_vs_production`` (production scored on the same
   held-out days, margin 0.01) pass; retraining is instantaneous in simulated time.

"Without the loop" is the first model scoring every day. Realised PR-AUC is pooled per quarter
over the rows each world's production model scored.

Usage::

    nice -n 10 python benchmarks/lifecycle.py [--end 2018-01-01] [--k 3 --n 7 --cooldown 28]

Last line of stdout: one JSON object.
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

from superdan_assets.assets.monitoring import performance_collapsed  # noqa: E402
from superdan_assets.checks.model_gates import (  # noqa: E402
    beats_baselines_gate,
    no_regression_gate,
)
from superdan_assets.ml import drift, metrics  # noqa: E402
from superdan_assets.ml.labels import build_feature_rows  # noqa: E402
from superdan_assets.ml.training import train_and_evaluate  # noqa: E402
from superdan_assets.retraining import RetrainingPolicy, judge  # noqa: E402
from superdan_assets.sources.export import ExportSource  # noqa: E402

DEFAULT_DATA = Path(os.environ.get("SUPERDAN_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
HOLDOUT_DAYS = 90
PRODUCTION_MARGIN = 0.01


def _log(message: str) -> None:
    print(f"[lifecycle {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def train(rows: pd.DataFrame, start: pd.Timestamp, end_day: pd.Timestamp, threads: int):
    """``crime_model`` on ``start..end_day``: (result, holdout rows)."""
    holdout_start = end_day - pd.Timedelta(days=HOLDOUT_DAYS - 1)
    window = rows[(rows["date"] >= start) & (rows["date"] < end_day + pd.Timedelta(days=1))]
    fit = window[window["date"] < holdout_start].reset_index(drop=True)
    holdout = window[window["date"] >= holdout_start].reset_index(drop=True)
    result = train_and_evaluate(fit, holdout, params={"n_jobs": threads},
                                include_seed_protocol=False)
    return result, holdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA / "chicago")
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/superdan-export-cache"))
    parser.add_argument("--train-start", default="2012-01-01")
    parser.add_argument("--deploy", default="2015-01-01")
    parser.add_argument("--end", default="2018-01-01", help="exclusive")
    parser.add_argument("--k", type=int, default=None)
    parser.add_argument("--n", type=int, default=None)
    parser.add_argument("--cooldown", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    env = RetrainingPolicy.from_env()
    policy = RetrainingPolicy(args.k or env.k, args.n or env.n,
                              env.cooldown_days if args.cooldown is None else args.cooldown)
    started = time.perf_counter()
    start, deploy, end = (pd.Timestamp(x) for x in (args.train_start, args.deploy, args.end))
    raw = ExportSource(args.data, cache_dir=args.cache_dir).fetch(start, end, _log)
    rows = build_feature_rows(raw)
    del raw
    rows = rows[rows["date"] < end].reset_index(drop=True)
    setup_started = time.perf_counter()
    first, _ = train(rows, start, deploy - pd.Timedelta(days=1), args.threads)
    setup_seconds = time.perf_counter() - setup_started
    _log(f"first model {first.version}: held-out PR-AUC {first.metrics['model']['pr_auc']:.4f}")
    later = rows[rows["date"] >= deploy].reset_index(drop=True)
    day_of = later["date"].dt.strftime("%Y-%m-%d").to_numpy()
    quarter_of = (later["date"].dt.year.astype(str) + "Q"
                  + later["date"].dt.quarter.astype(str)).to_numpy()
    y = later["label"].to_numpy(dtype="int64")
    static_scores = first.pipeline.predict_proba(later)[:, 1]
    loop_scores = np.empty(len(later))

    production = first
    reference_pr_auc = float(first.metrics["model"]["pr_auc"])
    config = drift.DriftConfig()
    rng = np.random.default_rng(0)
    flags: dict[str, tuple[str, bool | None]] = {}  # day -> (model version, failed)
    last_launch: tuple[str | None, str | None] = (None, None)
    events = []
    retrains = promotions = 0
    retrain_seconds = 0.0
    days = sorted(set(day_of))
    loop_started = time.perf_counter()
    for day in days:
        mask = day_of == day
        p = production.pipeline.predict_proba(later[mask])[:, 1]
        loop_scores[mask] = p
        perf = drift.performance(y[mask], p, production.threshold, config, rng)
        report = {"performance": perf, "reference_metrics": {"pr_auc": reference_pr_auc}}
        collapsed, _ = performance_collapsed(report, config.performance_tolerance)
        flags[day] = (production.version, collapsed if perf.get("evaluated") else None)
        window_days = [(pd.Timestamp(day) - pd.Timedelta(days=i)).strftime("%Y-%m-%d")
                       for i in range(policy.n - 1, -1, -1)]
        judged = {d: flags[d][1] for d in window_days
                  if d in flags and flags[d][0] == production.version}
        decision = judge(judged, day, production.version, policy, None, last_launch)
        if decision.action == "skip_cooldown":
            events.append({"day": day, "decision": "skipped_cooldown"})
        if decision.action != "launch":
            continue
        retrains += 1
        last_launch = (day, f"sim-{retrains}")
        t0 = time.perf_counter()
        candidate, holdout = train(rows, start, pd.Timestamp(day), args.threads)
        production_pr_auc = float(metrics.evaluate(
            holdout["label"].to_numpy(), production.pipeline.predict_proba(holdout)[:, 1],
            production.threshold)["pr_auc"])
        retrain_seconds += time.perf_counter() - t0
        model_pr_auc = float(candidate.metrics["model"]["pr_auc"])
        gates = [
            beats_baselines_gate(model_pr_auc, {
                name: m["pr_auc"] for name, m in candidate.metrics["baselines"].items()
                if m.get("pr_auc") is not None}),
            no_regression_gate(model_pr_auc, production_pr_auc, production.version,
                               PRODUCTION_MARGIN),
        ]
        promoted = all(g.passed for g in gates)
        events.append({"day": day, "decision": "promoted" if promoted else "refused",
                       "candidate_pr_auc": round(model_pr_auc, 4),
                       "production_pr_auc": round(production_pr_auc, 4),
                       "failed_days": list(decision.failed_days)})
        _log(f"{day}: retrain {retrains}: {events[-1]}")
        if promoted:
            promotions += 1
            production = candidate
            reference_pr_auc = model_pr_auc
    loop_seconds = time.perf_counter() - loop_started - retrain_seconds

    def by_quarter(scores):
        return {q: round(float(metrics.evaluate(y[quarter_of == q], scores[quarter_of == q],
                                                0.5)["pr_auc"]), 4)
                for q in sorted(set(quarter_of))}

    with_loop, without = by_quarter(loop_scores), by_quarter(static_scores)
    print(json.dumps({
        "benchmark": "lifecycle",
        "horizon": [args.deploy, str((end - pd.Timedelta(days=1)).date())],
        "shortened": end < pd.Timestamp("2019-01-01"),
        "first_model_window": [args.train_start, str((deploy - pd.Timedelta(days=1)).date())],
        "policy": {"k": policy.k, "n": policy.n, "cooldown_days": policy.cooldown_days},
        "realised_pr_auc_by_quarter": {"with_loop": with_loop, "without_loop": without},
        "mean_pr_auc": {"with_loop": round(float(np.mean(list(with_loop.values()))), 4),
                        "without_loop": round(float(np.mean(list(without.values()))), 4)},
        "quarters_with_loop_lower": [q for q in with_loop if with_loop[q] < without[q]],
        "failed_days": int(sum(1 for _, f in flags.values() if f)),
        "retrains": retrains,
        "promotions": promotions,
        "events": events[:50],
        "simulated_days": len(days),
        "seconds_per_simulated_day": round(loop_seconds / max(len(days), 1), 4),
        "seconds_per_retrain": round(retrain_seconds / retrains, 1) if retrains else None,
        "first_model_seconds": round(setup_seconds, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
