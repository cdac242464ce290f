"""Full-history scale test: a GENERATED 28-year Chicago history backfilled into raw_crimes.

Usage: python benchmarks/scale.py [--factor 4] [--export-path ../shared/data/chicago]
                                  [--workdir DIR] [--keep]

The real Chicago history is about 8.3 M rows since 2001; the shared export holds 2012-2018
(1,949,344 rows). This builds a history ``--factor`` times as long by copying the export's seven
years into the seven years before it, then the seven before those, and so on (``--factor 4``:
1991-2018, 7.8 M rows). Copies get new ids (``id + k * 100,000,000``) and case numbers
(``G<k>`` prefix), keep every other field, and shift each date by ``7 * k`` whole years (a
29 February landing in a common year becomes the 28th). The generated files are plain CSV in a
temporary folder (never in the repository), the real files are linked beside them; a city spec
identical to Chicago's but starting on the first generated day points at them.

Then ``chicago/raw_crimes`` is backfilled through Dagster exactly as its backfill policy asks
(``BackfillPolicy.multi_run``: runs of up to ``MAX_DAYS_PER_RUN`` days, one after the other,
each an in-process run of the asset with its checks on the embedded SQLite instance, as
``benchmarks/ingest.py`` runs one), into a fresh data folder, parse cache and instance.

Memory must not grow with the length of the history: RSS is sampled every 0.2 s, and the
output gives the peak and, at 25/50/75/100 % of the partitions, the RSS then and the peak of
that quarter. ``rows_in`` is counted with pyarrow from the files (not the project's loader);
``rows_stored`` from the Parquet footers; ``duplicate_ids`` over every stored id. Generation
and counting are not timed. Prints one JSON object as its last line (``generated: true``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: ``../shared/data`` beside the checkout, or ``SUPERDAN_SHARED_DATA`` (as the tests read it).
DEFAULT_EXPORT = (
    Path(os.environ.get("SUPERDAN_SHARED_DATA") or REPO.parent / "shared" / "data") / "chicago"
)
REAL_FIRST_YEAR, REAL_LAST_YEAR = 2012, 2018
ID_OFFSET = 100_000_000

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import count_rows_in  # noqa: E402  (the same independent row count)


def _log(message: str) -> None:
    print(f"[scale] {message}", file=sys.stderr, flush=True)


def _header(path: Path) -> list[str]:
    import csv
    import gzip

    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as fh:
        return next(csv.reader([fh.readline()]))


def plan(export: Path, min_rows: int) -> tuple[dict[Path, list[int]], int]:
    """Which copies to make: going back a year at a time from the year before the export,
    year ``Y`` is a copy of the real year ``Y + 7k`` (``k`` = 1, 2, ...), until the history
    holds at least ``min_rows``. Returns (real file -> its copy numbers ``k``, first year)."""
    import pyarrow.csv as pacsv

    span = REAL_LAST_YEAR - REAL_FIRST_YEAR + 1
    files = {
        int(re.search(r"(\d{4})", p.name).group(1)): p for p in sorted(export.glob("crimes_*.csv*"))
    }
    if sorted(files) != list(range(REAL_FIRST_YEAR, REAL_LAST_YEAR + 1)):
        sys.exit(f"expected crimes_{REAL_FIRST_YEAR}..{REAL_LAST_YEAR} files in {export}")
    rows = {
        y: pacsv.read_csv(p, convert_options=pacsv.ConvertOptions(include_columns=["ID"])).num_rows
        for y, p in files.items()
    }
    total, year = sum(rows.values()), REAL_FIRST_YEAR
    copies: dict[Path, list[int]] = {p: [] for p in files.values()}
    while total < min_rows:
        year -= 1
        k = -(-(REAL_FIRST_YEAR - year) // span)
        copies[files[year + span * k]].append(k)
        total += rows[year + span * k]
    if year < 1901:
        sys.exit("that many rows would reach back before 1901 (the leap-year rule used here)")
    return copies, year


def generate(export: Path, out: Path, copies: dict[Path, list[int]]) -> int:
    """Write the planned shifted copies of the export's yearly files into ``out`` and link
    the real ones beside them; returns the number of generated rows."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    out.mkdir(parents=True, exist_ok=True)
    span = REAL_LAST_YEAR - REAL_FIRST_YEAR + 1
    generated = 0
    for path, ks in copies.items():
        (out / path.name).symlink_to(path.resolve())
        if not ks:
            continue
        names = _header(path)
        table = pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names}),
        )
        year = int(re.search(r"(\d{4})", path.name).group(1))
        dates = table["Date"]
        row_years = pc.cast(pc.utf8_slice_codeunits(dates, 6, 10), pa.int32())
        ids = pc.cast(table["ID"], pa.int64())
        for k in ks:
            shift = span * k
            new_years = pc.subtract(row_years, shift)
            # every year from 1901 to 2099 divisible by 4 is a leap year
            leap = pc.equal(pc.bit_wise_and(new_years, 3), 0)
            new_dates = pc.binary_join_element_wise(
                pc.utf8_slice_codeunits(dates, 0, 6),
                pc.cast(new_years, pa.string()),
                pc.utf8_slice_codeunits(dates, 10, 64),
                "",
            )
            feb29 = pc.starts_with(new_dates, "02/29/")
            new_dates = pc.if_else(
                pc.and_(feb29, pc.invert(leap)),
                pc.replace_substring(new_dates, "02/29/", "02/28/", max_replacements=1),
                new_dates,
            )
            copy = (
                table.set_column(table.schema.get_field_index("Date"), "Date", new_dates)
                .set_column(
                    table.schema.get_field_index("ID"),
                    "ID",
                    pc.cast(pc.add(ids, k * ID_OFFSET), pa.string()),
                )
                .set_column(
                    table.schema.get_field_index("Case Number"),
                    "Case Number",
                    pc.binary_join_element_wise(f"G{k}", table["Case Number"], ""),
                )
            )
            target = out / f"crimes_{year - shift}.csv"
            pacsv.write_csv(copy, target)
            generated += copy.num_rows
            _log(f"generated {target.name}: {copy.num_rows} rows (copy {k} of {path.name})")
    return generated


def generated_spec(out: Path, first_year: int) -> Path:
    """Chicago's packaged spec with ``first_day`` moved to the first generated year."""
    text = (REPO / "superdan_assets" / "cities" / "chicago.toml").read_text()
    text, n = re.subn(r"(?m)^first_day = .*$", f"first_day = {first_year}-01-01", text)
    if n != 1:
        sys.exit("chicago.toml has no single 'first_day = ...' line to move")
    text = text.replace('display_name = "Chicago"', 'display_name = "Chicago (generated history)"')
    spec = out / "chicago_generated.toml"
    spec.write_text(text)
    return spec


class RssSampler(threading.Thread):
    """Samples this process's resident set size (``/proc/self/status``) every ``interval``."""

    def __init__(self, interval: float = 0.2):
        super().__init__(daemon=True)
        self.interval = interval
        self.peak_kb = 0
        self.window_peak_kb = 0
        self._halt = threading.Event()

    @staticmethod
    def current_kb() -> int:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            rss = self.current_kb()
            self.peak_kb = max(self.peak_kb, rss)
            self.window_peak_kb = max(self.window_peak_kb, rss)

    def take_window_peak(self) -> int:
        peak, self.window_peak_kb = max(self.window_peak_kb, self.current_kb()), 0
        return peak

    def stop(self) -> None:
        self._halt.set()
        self.join()


def stored_counts(data_dir: Path) -> tuple[int, int, int]:
    """(rows, partitions, duplicate ids) over every stored raw_crimes partition."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    files = sorted((data_dir / "chicago" / "raw_crimes").glob("*.parquet"))
    ids = [pq.read_table(f, columns=["id"])["id"] for f in files]
    # an empty day's file and a day with rows may store the id as string or large_string
    every = pa.chunked_array(
        [c.cast(pa.large_string()) for a in ids for c in a.chunks], type=pa.large_string()
    )
    distinct = pc.count_distinct(every).as_py()
    return len(every), len(files), len(every) - distinct


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--factor",
        type=float,
        default=4,
        help="the history holds at least factor x 1.95 M rows (the export's 1,949,344, rounded)",
    )
    parser.add_argument("--export-path", type=Path, default=DEFAULT_EXPORT)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the generated folder")
    args = parser.parse_args()
    if args.factor < 1:
        sys.exit("--factor must be at least 1")
    if not args.export_path.exists():
        sys.exit(f"export folder {args.export_path} not found; pass --export-path")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="superdan-scale-bench-"))
    min_rows = round(args.factor * 1_950_000)
    try:
        t0 = time.monotonic()
        copies, first_year = plan(args.export_path, min_rows)
        start, end = f"{first_year}-01-01", f"{REAL_LAST_YEAR}-12-31"
        export = work / "export"
        generated_rows = generate(args.export_path, export, copies)
        generate_seconds = time.monotonic() - t0
        rows_in = count_rows_in(export, start, end)
        _log(f"history {start}..{end}: {rows_in} rows ({generated_rows} generated)")
        spec_path = generated_spec(work, first_year)

        os.environ.update(
            SUPERDAN_HOME=str(work / "home"),
            SUPERDAN_CITY=str(spec_path),
            SUPERDAN_EXPORT_PATH=str(export),
            DAGSTER_HOME=str(work / "dagster_home"),
            DAGSTER_DISABLE_TELEMETRY="1",
        )
        from superdan_assets.instance.home import ensure_embedded_home

        ensure_embedded_home(work / "dagster_home")

        from dagster import DagsterInstance, materialize

        from superdan_assets.assets import City
        from superdan_assets.assets.ingestion import build_raw_crimes
        from superdan_assets.cities import load_city
        from superdan_assets.definitions import defs

        city = City(load_city(str(spec_path)))
        raw_crimes = build_raw_crimes(city)
        per_run = raw_crimes.backfill_policy.max_partitions_per_run
        keys = [k for k in city.partitions_def.get_partition_keys() if start <= k <= end]
        if len(keys) != (date.fromisoformat(end) - date.fromisoformat(start)).days + 1:
            sys.exit(f"the generated spec's partitions do not cover {start}..{end}")
        chunks = [keys[i : i + per_run] for i in range(0, len(keys), per_run)]
        resources = {k: defs.resources[k] for k in ("partition_io_manager", "storage")}
        instance = DagsterInstance.get()

        sampler = RssSampler()
        sampler.start()
        progress: dict[str, dict[str, float]] = {}
        marks = [25, 50, 75, 100]
        done = 0
        failed_runs = 0
        started = time.monotonic()
        for i, chunk in enumerate(chunks, 1):
            result = materialize(
                [raw_crimes],
                resources=resources,
                instance=instance,
                tags={
                    "dagster/asset_partition_range_start": chunk[0],
                    "dagster/asset_partition_range_end": chunk[-1],
                },
                raise_on_error=False,
            )
            failed_runs += not result.success
            done += len(chunk)
            _log(
                f"run {i}/{len(chunks)} {chunk[0]}..{chunk[-1]}: "
                f"{'ok' if result.success else 'FAILED'}, {time.monotonic() - started:.0f} s, "
                f"RSS {sampler.current_kb() / 1024:.0f} MB"
            )
            while marks and done * 100 >= marks[0] * len(keys):
                progress[str(marks.pop(0))] = {
                    "rss_mb": round(sampler.current_kb() / 1024),
                    "quarter_peak_rss_mb": round(sampler.take_window_peak() / 1024),
                    "seconds": round(time.monotonic() - started, 1),
                }
        seconds = time.monotonic() - started
        sampler.stop()
        peak_rss_mb = max(sampler.peak_kb, 0) / 1024
        rows_stored, partitions, duplicate_ids = stored_counts(work / "home" / "data")
        print(
            json.dumps(
                {
                    "benchmark": "scale",
                    "generated": True,
                    "how_generated": (
                        f"the real {REAL_FIRST_YEAR}-{REAL_LAST_YEAR} export, and each year "
                        f"from {first_year} to {REAL_FIRST_YEAR - 1} a copy of the real year "
                        "7, 14, 21 or 28 years later with new ids and case numbers"
                    ),
                    "min_rows": min_rows,
                    "factor": args.factor,
                    "start": start,
                    "end": end,
                    "rows_in": rows_in,
                    "rows_generated": generated_rows,
                    "rows_stored": rows_stored,
                    "nothing_lost": rows_in == rows_stored,
                    "duplicate_ids": duplicate_ids,
                    "partitions": partitions,
                    "runs": len(chunks),
                    "failed_runs": failed_runs,
                    "days_per_run": per_run,
                    "seconds": round(seconds, 1),
                    "peak_rss_mb": round(peak_rss_mb),
                    "ru_maxrss_mb": round(
                        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                    ),
                    "rss_at_progress_pct": progress,
                    "generate_seconds": round(generate_seconds, 1),
                    "cpus": os.cpu_count(),
                }
            )
        )
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
