"""A deployment that lives day by day, with the retraining loop and without it.

The model is trained on 2012-01-01..2014-12-31 as the ``crime_model`` asset trains it (last 90
days held out for the gates and the drift reference, threshold from the days before the
holdout), then lives through 2015-01-01..2018-12-31 (the issue's horizon; ``--end`` shortens
it). Every day:

1. the production model scores the day; the drift report's rule (``ml.drift.performance``
   bootstrap interval and ``assets.monitoring.performance_collapsed``) says whether its
   ``no_performance_collapse`` check failed, and the day's realised PR-AUC and burglaries are
   kept as the stored report keeps them (``retraining.day_record``);
2. the retraining sensor's own rule (``retraining.judge``: the collapse, slow-decay and age
   triggers, one in flight, cooldown) decides on the production model's own days;
3. on ``launch``, the model is retrained on the window ending that day (``train_and_evaluate``
   on 2012-01-01..day with a 90-day holdout; the random-forest baseline is skipped for speed,
   so ``beats_baselines`` compares with the class prior only) and promoted only when
   ``beats_baselines`` and ``no_regression_vs_production`` (production scored on the same
   held-out days, margin 0.01) pass; retraining is instantaneous in simulated time.

"Without the loop" is the first model scoring every day. Realised PR-AUC is pooled per quarter
over the rows each world's production model scored. ``--compare`` simulates other policies on
the same days (a candidate trained on the same window is the same model, so it is trained once)
and reports them under ``alternatives``: how the defaults were compared on a validation span
(``--deploy 2014-01-01 --end 2015-01-01``, before the reported horizon).

Usage::

    nice -n 10 python benchmarks/lifecycle.py [--end 2018-01-01] [--k 3 --n 7 --cooldown 28]
        [--decay-window 28 --decay-margin 0.05] [--max-age 182]
        [--compare decay_window_days=0,max_age_days=91 ...]

Policy options default to the ``SUPERDAN_RETRAIN_*`` settings (their defaults when unset).
Last line of stdout: one JSON object.
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
from superdan_assets.checks.model_gates import (  # noqa: E402
    beats_baselines_gate,
    no_regression_gate,
)
from superdan_assets.ml import drift, metrics  # noqa: E402
from superdan_assets.ml.labels import build_feature_rows  # noqa: E402
from superdan_assets.ml.training import train_and_evaluate  # noqa: E402
from superdan_assets.retraining import (  # noqa: E402
    CHECK_NAME,
    DayRecord,
    RetrainingPolicy,
    day_record,
    judge,
)
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
    result = train_and_evaluate(
        fit, holdout, params={"n_jobs": threads}, include_seed_protocol=False
    )
    return result, holdout


def parse_overrides(text: str) -> dict:
    """``"decay_margin=0.03,max_age_days=91"`` -> policy field overrides."""
    fields = {f.name: f.type for f in dataclasses.fields(RetrainingPolicy)}
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        if name not in fields:
            raise SystemExit(f"--compare: unknown policy field {name!r} (know {sorted(fields)})")
        out[name] = float(value) if name == "decay_margin" else int(value)
    return out


class World:
    """The data every simulated policy shares: rows, days, the first model, its scores, and
    the retrained candidates (deterministic given their window, so trained once per window)."""

    def __init__(self, rows, start, deploy, threads):
        self.rows, self.start, self.threads = rows, start, threads
        t0 = time.perf_counter()
        self.first, _ = train(rows, start, deploy - pd.Timedelta(days=1), threads)
        self.first_seconds = time.perf_counter() - t0
        self.first_end = (deploy - pd.Timedelta(days=1)).strftime("%Y-%m-%d")
        self.later = rows[rows["date"] >= deploy].reset_index(drop=True)
        day_of = self.later["date"].dt.strftime("%Y-%m-%d").to_numpy()
        self.days = sorted(set(day_of))
        self.index = {d: np.flatnonzero(day_of == d) for d in self.days}
        self.quarter_of = (
            self.later["date"].dt.year.astype(str) + "Q" + self.later["date"].dt.quarter.astype(str)
        ).to_numpy()
        self.y = self.later["label"].to_numpy(dtype="int64")
        self.static_scores = self.first.pipeline.predict_proba(self.later)[:, 1]
        self.candidates: dict[str, tuple] = {}
        self.scores = {self.first.version: self.static_scores}
        self.records: dict[tuple[str, str], DayRecord] = {}
        self.retrain_seconds = 0.0
        self.retrains_trained = 0

    def candidate(self, day: str):
        if day not in self.candidates:
            t0 = time.perf_counter()
            self.candidates[day] = train(self.rows, self.start, pd.Timestamp(day), self.threads)
            self.retrain_seconds += time.perf_counter() - t0
            self.retrains_trained += 1
        return self.candidates[day]

    def scores_of(self, model, day: str) -> np.ndarray:
        """``model``'s scores of every later row, computed once per model from the day it went
        into production (the pipeline scores row by row, so one call over the rest of the
        period equals the daily calls, at a fraction of their overhead)."""
        if model.version not in self.scores:
            scores = np.full(len(self.later), np.nan)
            ahead = np.flatnonzero((self.later["date"] >= pd.Timestamp(day)).to_numpy())
            scores[ahead] = model.pipeline.predict_proba(self.later.iloc[ahead])[:, 1]
            self.scores[model.version] = scores
        return self.scores[model.version]

    def by_quarter(self, scores):
        return {
            q: round(
                float(
                    metrics.evaluate(
                        self.y[self.quarter_of == q], scores[self.quarter_of == q], 0.5
                    )["pr_auc"]
                ),
                4,
            )
            for q in sorted(set(self.quarter_of))
        }


def simulate(world: World, policy: RetrainingPolicy) -> dict:
    """One deployment living through the days under ``policy``: realised scores and events."""
    config = drift.DriftConfig()
    scores = np.empty(len(world.later))
    production, data_end = world.first, world.first_end
    reference_pr_auc = float(world.first.metrics["model"]["pr_auc"])
    history: dict[str, tuple[str, DayRecord]] = {}  # day -> (model version, record)
    last_launch: tuple[str | None, str | None] = (None, None)
    events, fired = [], {}
    retrains = promotions = failed_days = 0
    for day in world.days:
        rows = world.index[day]
        key = (production.version, day)
        p = world.scores_of(production, day)[rows]
        scores[rows] = p
        if key not in world.records:
            rng = np.random.default_rng(int(day.replace("-", "")))
            perf = dataclasses.asdict(
                drift.performance(world.y[rows], p, production.threshold, config, rng)
            )
            report = {"performance": perf, "reference_metrics": {"pr_auc": reference_pr_auc}}
            collapsed, _ = performance_collapsed(report, config.performance_tolerance)
            world.records[key] = day_record(
                {
                    **report,
                    "checks": {
                        CHECK_NAME: {
                            "passed": not collapsed,
                            "evaluated": bool(perf.get("evaluated")),
                        }
                    },
                }
            )
        record = world.records[key]
        failed_days += bool(record.failed)
        history[day] = (production.version, record)
        lookback = [
            (pd.Timestamp(day) - pd.Timedelta(days=i)).strftime("%Y-%m-%d")
            for i in range(policy.lookback_days - 1, -1, -1)
        ]
        judged = {
            d: history[d][1]
            for d in lookback
            if d in history and history[d][0] == production.version
        }
        age = (pd.Timestamp(day) - pd.Timestamp(data_end)).days
        decision = judge(
            judged,
            day,
            production.version,
            policy,
            None,
            last_launch,
            age_days=age,
            reference_pr_auc=reference_pr_auc,
        )
        if decision.action == "skip_cooldown" and last_launch[1] not in fired:
            fired[last_launch[1]] = True  # alerted once per cause, as the sensor does
            events.append(
                {"day": day, "decision": "skipped_cooldown", "triggers": list(decision.triggers)}
            )
        if decision.action != "launch":
            continue
        retrains += 1
        last_launch = (day, f"sim-{retrains}")
        candidate, holdout = world.candidate(day)
        production_pr_auc = float(
            metrics.evaluate(
                holdout["label"].to_numpy(),
                production.pipeline.predict_proba(holdout)[:, 1],
                production.threshold,
            )["pr_auc"]
        )
        model_pr_auc = float(candidate.metrics["model"]["pr_auc"])
        gates = [
            beats_baselines_gate(
                model_pr_auc,
                {
                    name: m["pr_auc"]
                    for name, m in candidate.metrics["baselines"].items()
                    if m.get("pr_auc") is not None
                },
            ),
            no_regression_gate(
                model_pr_auc, production_pr_auc, production.version, PRODUCTION_MARGIN
            ),
        ]
        promoted = all(g.passed for g in gates)
        events.append(
            {
                "day": day,
                "decision": "promoted" if promoted else "refused",
                "triggers": list(decision.triggers),
                "candidate_pr_auc": round(model_pr_auc, 4),
                "production_pr_auc": round(production_pr_auc, 4),
            }
        )
        _log(f"{policy}: {day}: retrain {retrains}: {events[-1]}")
        if promoted:
            promotions += 1
            production, data_end = candidate, day
            reference_pr_auc = model_pr_auc
    with_loop = world.by_quarter(scores)
    _log(f"{policy}: retrains {retrains}, promotions {promotions}, with the loop {with_loop}")
    return {
        "policy": dataclasses.asdict(policy),
        "with_loop": with_loop,
        "failed_days": failed_days,
        "retrains": retrains,
        "promotions": promotions,
        "events": events,
    }


def summary(result: dict, without: dict) -> dict:
    with_loop = result["with_loop"]
    return {
        "mean_pr_auc_with_loop": round(float(np.mean(list(with_loop.values()))), 4),
        "quarters_with_loop_lower": [q for q in with_loop if with_loop[q] < without[q]],
        "worst_quarter_difference": round(min(with_loop[q] - without[q] for q in with_loop), 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA / "chicago")
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/superdan-export-cache"))
    parser.add_argument("--train-start", default="2012-01-01")
    parser.add_argument("--deploy", default="2015-01-01")
    parser.add_argument("--end", default="2019-01-01", help="exclusive")
    parser.add_argument("--k", type=int, default=None)
    parser.add_argument("--n", type=int, default=None)
    parser.add_argument("--cooldown", type=int, default=None)
    parser.add_argument("--decay-window", type=int, default=None)
    parser.add_argument("--decay-margin", type=float, default=None)
    parser.add_argument("--max-age", type=int, default=None)
    parser.add_argument(
        "--compare",
        nargs="*",
        default=[],
        metavar="FIELD=VALUE,...",
        help="other policies to simulate on the same days (overrides of the "
        "main policy), reported under 'alternatives'",
    )
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    env = RetrainingPolicy.from_env()
    overrides = {
        "k": args.k,
        "n": args.n,
        "cooldown_days": args.cooldown,
        "decay_window_days": args.decay_window,
        "decay_margin": args.decay_margin,
        "max_age_days": args.max_age,
    }
    policy = dataclasses.replace(env, **{k: v for k, v in overrides.items() if v is not None})
    others = [dataclasses.replace(policy, **parse_overrides(text)) for text in args.compare]
    started = time.perf_counter()
    start, deploy, end = (pd.Timestamp(x) for x in (args.train_start, args.deploy, args.end))
    raw = ExportSource(args.data, cache_dir=args.cache_dir).fetch(start, end, _log)
    rows = build_feature_rows(raw)
    del raw
    rows = rows[rows["date"] < end].reset_index(drop=True)
    world = World(rows, start, deploy, args.threads)
    _log(
        f"first model {world.first.version}: held-out PR-AUC "
        f"{world.first.metrics['model']['pr_auc']:.4f}"
    )
    without = world.by_quarter(world.static_scores)
    loop_started = time.perf_counter()
    main_result = simulate(world, policy)
    main_seconds = time.perf_counter() - loop_started
    main_retrain_seconds = world.retrain_seconds
    main_trained = world.retrains_trained
    alternatives = []
    for other in others:
        result = simulate(world, other)
        alternatives.append(
            {
                "policy": result["policy"],
                **summary(result, without),
                "retrains": result["retrains"],
                "promotions": result["promotions"],
                "with_loop": result["with_loop"],
            }
        )
    with_loop = main_result["with_loop"]
    day_seconds = main_seconds - main_retrain_seconds
    print(
        json.dumps(
            {
                "benchmark": "lifecycle",
                "horizon": [args.deploy, str((end - pd.Timedelta(days=1)).date())],
                "shortened": end < pd.Timestamp("2019-01-01"),
                "first_model_window": [args.train_start, world.first_end],
                "first_model_held_out_pr_auc": round(
                    float(world.first.metrics["model"]["pr_auc"]), 4
                ),
                "policy": main_result["policy"],
                "realised_pr_auc_by_quarter": {"with_loop": with_loop, "without_loop": without},
                "mean_pr_auc": {
                    "with_loop": round(float(np.mean(list(with_loop.values()))), 4),
                    "without_loop": round(float(np.mean(list(without.values()))), 4),
                },
                **{
                    k: v
                    for k, v in summary(main_result, without).items()
                    if k != "mean_pr_auc_with_loop"
                },
                "failed_days": main_result["failed_days"],
                "retrains": main_result["retrains"],
                "promotions": main_result["promotions"],
                "events": main_result["events"][:60],
                "simulated_days": len(world.days),
                "seconds_per_simulated_day": round(day_seconds / max(len(world.days), 1), 4),
                "seconds_per_retrain": (
                    round(main_retrain_seconds / main_trained, 1) if main_trained else None
                ),
                "first_model_seconds": round(world.first_seconds, 1),
                "alternatives": alternatives,
                "total_seconds": round(time.perf_counter() - started, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
