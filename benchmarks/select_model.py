"""Rolling-origin model selection for a city, on its history before a cutoff (the test start).

Reads only rows before ``--cutoff`` (the loader refuses later ones), runs
:func:`superdan_assets.ml.selection.run_selection` (three yearly folds before the cutoff, the
staged grid) and writes the record, by default to the packaged Chicago selection the model's
defaults come from. A stopped run resumes from the record it was writing.

Usage::

    nice -n 10 python benchmarks/select_model.py [--data ../shared/data/chicago] \
        [--cutoff 2018-01-01] [--out superdan_assets/ml/selections/chicago.json] [--threads 2]
    python benchmarks/select_model.py --city path/to/city.toml --cutoff 2024-01-01 --out sel.json
    # a second round, from an earlier record's winner, over FOLLOW_UP_STAGES:
    python benchmarks/select_model.py --continue-from superdan_assets/ml/selections/chicago-round1.json

Prints progress on stderr and, last on stdout, one JSON object (the folds and the winner).
"""

from __future__ import annotations

import os

# Before sklearn/lightgbm load OpenMP (see superdan_assets/ml/model.py for why).
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import argparse
import json
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from superdan_assets.ml.labels import build_feature_rows  # noqa: E402
from superdan_assets.ml.selected import DEFAULT_SELECTION, load_selection  # noqa: E402
from superdan_assets.ml.selection import follow_up, load_rows_before, run_selection  # noqa: E402

DEFAULT_DATA = (
    Path(os.environ.get("SUPERDAN_SHARED_DATA") or REPO_ROOT.parent / "shared" / "data") / "chicago"
)
DEFAULT_CACHE = Path("/tmp/superdan-export-cache")


def _log(message: str) -> None:
    print(f"[select_model {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def source_for(data: Path | None, city: str | None, cache_dir: Path):
    """The Chicago bulk export at ``data``, or the feed of a city spec (name or path)."""
    if city is None:
        from superdan_assets.sources.export import ExportSource

        return ExportSource(data or DEFAULT_DATA, cache_dir=cache_dir), "chicago"
    from superdan_assets.cities.catalog import load_city
    from superdan_assets.sources.factory import build_source

    spec = load_city(city)
    return build_source(spec, cache_dir=cache_dir), spec.name


def select(
    source,
    city: str,
    start: str,
    cutoff: str,
    out: Path,
    threads: int | None,
    continue_from: Path | None = None,
) -> dict:
    """Load the rows before ``cutoff`` (guarded), run the selection, write ``out``."""
    round_two = {}
    if continue_from is not None:
        round_two = follow_up(load_selection(continue_from), cutoff, str(continue_from))
    rows = build_feature_rows(
        load_rows_before(lambda a, b: source.fetch(a, b, _log), start, cutoff)
    )
    _log(f"{len(rows)} labelled rows {rows['date'].min()} .. {rows['date'].max()}")
    return run_selection(
        rows, cutoff, record_path=out, progress=_log, n_jobs=threads, city=city, **round_two
    )


def brief(record: dict) -> dict:
    """The one-line summary: the windows, the stage choices and the winner's scores."""
    winner = record["winner"]
    return {
        "cutoff": record["cutoff"],
        "folds": record["folds"],
        "stages": {s["family"]: s["chosen"] for s in record["stages"]},
        "winner": winner["name"],
        "winner_mean_pr_auc": round(winner["mean_pr_auc"], 4),
        "winner_fold_pr_auc": {k: round(v["pr_auc"], 4) for k, v in winner["folds"].items()},
        "constraint_met": winner["constraint_met"],
        "winner_fold_recall": {
            k: round(v["recall"], 4) for k, v in winner["constraint"]["folds"].items()
        },
        "candidates": len(record["candidates"]),
        "seconds": record.get("seconds"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="Chicago bulk export folder")
    parser.add_argument("--city", default=None, help="a city spec (name or path) instead")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--start", default="2012-01-01")
    parser.add_argument(
        "--cutoff", default="2018-01-01", help="the test start: nothing from it on is read"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_SELECTION)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--continue-from",
        type=Path,
        default=None,
        help="an earlier selection record: start from its winner and search FOLLOW_UP_STAGES",
    )
    args = parser.parse_args(argv)
    if args.city is None and not (args.data or DEFAULT_DATA).exists():
        print(f"no bulk export at {args.data or DEFAULT_DATA}; pass --data", file=sys.stderr)
        return 2
    source, city = source_for(args.data, args.city, args.cache_dir)
    record = select(
        source, city, args.start, args.cutoff, args.out, args.threads, args.continue_from
    )
    if args.city is not None:
        _log(
            f"to train {city} with this winner, add to its spec: [model] selection = "
            f'"{args.out.resolve()}" (or a path relative to the spec file)'
        )
    print(json.dumps(brief(record)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
