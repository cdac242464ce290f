"""Street-risk forecast quality on real Chicago data: the model against three hot-spot baselines.

Goes through exactly the code the ``street_risk`` asset uses: the bulk export source ->
``build_feature_rows`` -> ``train_street_risk`` (history before the first forecast day) ->
``forecast_day`` for each scored day, from the rows strictly before that day. Every option
(features, target horizon, boosting settings, the prospective baseline's radius and weeks)
was chosen on 2017 days (63 days, training on 2015-2016; ``--period validation`` reruns
that protocol with the chosen settings); the default
``--period test`` scores 63 days of 2018 (every 5th day from 2018-01-01, the last 2018-11-07;
the export ends 2018-11-12). 2018 has been scored twice: once with the first model (theft
missed its target), then once more after theft's target and day-of-week features were chosen
on 2017 alone (benchmarks/README.md says so beside the figures).

Usage::

    nice -n 10 python benchmarks/street_risk.py [--period test|validation] [--threads 2]

Prints progress on stderr and, last on stdout, one JSON object: per crime type and share
(1/2/5 % of blocks), hit rate, PAI and PEI of the model and of each baseline, the model's PAI
over the best baseline's, ``seconds_per_day`` (one whole day's forecast of both types:
units, features, model, baselines) and the fit time.
Targets: PAI at 1 % >= 1.15 x the best baseline for burglary and theft; <= 5 s per day.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from superdan_assets.ml.labels import build_feature_rows  # noqa: E402
from superdan_assets.ml.street_risk.evaluation import score_days  # noqa: E402
from superdan_assets.ml.street_risk.training import TrainingConfig, train_street_risk  # noqa: E402
from superdan_assets.sources.export import ExportSource  # noqa: E402

DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "chicago"
PERIODS = {
    # first forecast day, last forecast day (the export ends 2018-11-12)
    "validation": ("2017-01-01", "2017-11-11"),
    "test": ("2018-01-01", "2018-11-11"),
}
TARGET_RATIO = 1.15
TARGET_SECONDS = 5.0


def _log(message: str) -> None:
    print(f"[street_risk {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load_rows(data: Path, cache_dir: Path, start: str, end: str) -> pd.DataFrame:
    source = ExportSource(data, cache_dir=cache_dir)
    raw = source.fetch(pd.Timestamp(start), pd.Timestamp(end), _log)
    return build_feature_rows(raw)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="bulk export folder")
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/superdan-export-cache"))
    parser.add_argument("--period", choices=sorted(PERIODS), default="test")
    parser.add_argument("--step", type=int, default=5, help="score every N-th day of the period")
    parser.add_argument("--history-start", default="2012-01-01")
    parser.add_argument("--threads", type=int, default=2, help="training threads")
    parser.add_argument("--config", default="{}", help="JSON overrides of TrainingConfig fields")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not args.data.exists():
        print(f"no bulk export at {args.data}; pass --data", file=sys.stderr)
        return 2

    started = time.perf_counter()
    first, last = PERIODS[args.period]
    rows = load_rows(args.data, args.cache_dir, args.history_start, "2019-01-01")
    rows = rows[rows["date"] < pd.Timestamp(last) + pd.Timedelta(days=1)].reset_index(drop=True)
    config = TrainingConfig(**json.loads(args.config))
    fit_start = time.perf_counter()
    model = train_street_risk(
        rows, first, config, seed=args.seed, n_jobs=args.threads, progress=_log
    )
    fit_seconds = time.perf_counter() - fit_start
    model.set_threads(1)
    days = pd.date_range(first, last, freq=f"{args.step}D")
    _log(f"scoring {len(days)} days from {days[0].date()} to {days[-1].date()}")
    board = score_days(model, rows, days, progress=_log)
    summary = board.summary()
    out = {
        "period": args.period,
        "days": len(days),
        "first_day": str(days[0].date()),
        "last_day": str(days[-1].date()),
        **summary,
        "targets": {
            f"{t}_pai_1pct_ratio_ge_{TARGET_RATIO}": bool(
                (summary[t]["1pct"]["pai_ratio_vs_best_baseline"] or 0) >= TARGET_RATIO
            )
            for t in summary
        },
        "seconds_per_day": round(statistics.mean(board.seconds), 3),
        "seconds_per_day_max": round(max(board.seconds), 3),
        "fit_seconds": round(fit_seconds, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "threads": args.threads,
    }
    out["targets"][f"seconds_per_day_le_{TARGET_SECONDS:g}"] = (
        out["seconds_per_day"] <= TARGET_SECONDS
    )
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
