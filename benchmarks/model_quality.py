"""Model quality on real Chicago data: train 2012-2017, evaluate on 2018.

Goes through exactly the code the assets use: the bulk export source -> ``build_feature_rows``
(the ``crime_features`` asset) -> ``train_and_evaluate`` (the ``crime_model`` asset), so the
number measures the shipped pipeline, not a notebook copy of it. The threshold is chosen inside
the training window; 2018 is only scored.

Usage::

    python benchmarks/model_quality.py [--data ../shared/data/chicago] [--threads 2]

Prints progress on stderr and, last on stdout, one JSON object (see ``summary``).
Targets: pr_auc >= 0.70, precision_at_recall_0_6 >= 0.65, fit under 120 s, under 6 GiB.
"""

from __future__ import annotations

import os

# Before sklearn/lightgbm load OpenMP (see superdan_assets/ml/model.py for why).
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
from superdan_assets.ml.model import set_threads  # noqa: E402
from superdan_assets.ml.training import train_and_evaluate  # noqa: E402
from superdan_assets.sources.export import ExportSource  # noqa: E402

DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "chicago"


def _log(message: str) -> None:
    print(f"[model_quality {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def single_row_latency_ms(pipeline, rows: pd.DataFrame, repeats: int = 50) -> float:
    """Median milliseconds of one-incident ``predict_proba`` with one thread (serving)."""
    set_threads(pipeline, 1)
    sample = rows.drop(columns=["label"]).head(repeats)
    pipeline.predict_proba(sample.iloc[[0]])  # warm the lookup tables
    times = []
    for i in range(len(sample)):
        start = time.perf_counter()
        pipeline.predict_proba(sample.iloc[[i]])
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def summary(result, train_rows: int, test_rows: int, started: float, latency_ms: float) -> dict:
    """The benchmark's JSON: the model's test metrics, both baselines', sizes and costs."""
    model = result.metrics["model"]
    baselines = result.metrics["baselines"]
    at = model["at_threshold"]
    out = {
        "roc_auc": round(model["roc_auc"], 4),
        "pr_auc": round(model["pr_auc"], 4),
        "precision_at_recall_0_6": round(model["precision_at_recall_0_6"], 4),
        "log_loss": round(model["log_loss"], 4),
        "brier": round(model["brier"], 4),
        "expected_calibration_error": round(model["calibration"]["expected_calibration_error"], 4),
        "threshold": round(result.threshold, 4),
        "threshold_precision": round(at["precision"], 4),
        "threshold_recall": round(at["recall"], 4),
        "threshold_f1": round(at["f1"], 4),
    }
    for name, values in baselines.items():
        for key in ("roc_auc", "pr_auc", "precision_at_recall_0_6", "log_loss"):
            out[f"{name}_{key}"] = round(values[key], 4)
    out.update(
        train_rows=train_rows,
        test_rows=test_rows,
        test_burglary_rate=round(model["burglary_rate"], 4),
        fit_seconds=round(result.timings["fit_seconds"], 1),
        validation_fit_seconds=round(result.timings["validation_fit_seconds"], 1),
        seed_protocol_fit_seconds=round(result.timings.get("seed_protocol_fit_seconds", 0.0), 1),
        total_seconds=round(time.perf_counter() - started, 1),
        single_row_predict_ms=round(latency_ms, 2),
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        model_version=result.version,
        top_features=list(result.feature_importances)[:8],
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="bulk export folder")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path("/tmp/superdan-export-cache"),
        help="Parquet cache of the parsed export (re-runs skip the 11 s CSV parse)",
    )
    parser.add_argument("--train-start", default="2012-01-01")
    parser.add_argument("--test-start", default="2018-01-01")
    parser.add_argument("--test-end", default="2019-01-01")
    parser.add_argument("--threads", type=int, default=None, help="training threads")
    parser.add_argument("--params", default="{}", help="JSON overrides of DEFAULT_PARAMS")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--skip-seed-protocol",
        action="store_true",
        help="skip the random-forest baseline (the slowest fit) for quick tuning runs",
    )
    args = parser.parse_args(argv)
    if not args.data.exists():
        print(f"no bulk export at {args.data}; pass --data", file=sys.stderr)
        return 2

    started = time.perf_counter()
    source = ExportSource(args.data, cache_dir=args.cache_dir)
    raw = source.fetch(pd.Timestamp(args.train_start), pd.Timestamp(args.test_end), _log)
    rows = build_feature_rows(raw)
    del raw
    test_start = pd.Timestamp(args.test_start)
    train = rows[rows["date"] < test_start].reset_index(drop=True)
    test = rows[rows["date"] >= test_start].reset_index(drop=True)
    _log(f"{len(train)} training rows, {len(test)} test rows")

    params = json.loads(args.params)
    if args.threads is not None:
        params["n_jobs"] = args.threads
    result = train_and_evaluate(
        train,
        test,
        params=params,
        seed=args.seed,
        progress=_log,
        include_seed_protocol=not args.skip_seed_protocol,
    )
    latency = single_row_latency_ms(result.pipeline, test)
    print(json.dumps(summary(result, len(train), len(test), started, latency)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
