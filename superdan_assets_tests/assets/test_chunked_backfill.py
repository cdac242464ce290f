"""A long history backfilled in chunks (as ``BackfillPolicy.multi_run`` submits it, and as
``benchmarks/scale.py`` runs it): every row stored once, the source holding no parsed file
between requests, and a run that fails while writing leaving no half-written partition."""

import pandas as pd
import pytest
from dagster import AssetKey, DagsterInstance, materialize

from superdan_assets.assets.ingestion import build_raw_crimes
from superdan_assets.instance.home import ensure_embedded_home
from superdan_assets.sources.export import CsvSource
from superdan_assets.storage.blobstore import LocalBlobStore
from superdan_assets_tests.assets.helpers import chicago_on_csv, local_resources
from superdan_assets_tests.datagen import export_rows, write_export

KEY = AssetKey(["chicago", "raw_crimes"])
#: Three files of 24 days each (2018-01-01..2018-03-13), ids distinct across files.
FILES = (("2018-01-01", 0), ("2018-01-25", 1), ("2018-02-18", 2))
DAYS = [d.strftime("%Y-%m-%d") for d in pd.date_range("2018-01-01", periods=72)]
#: Days per run: above PER_DAY_LIMIT (31), so each run validates its range in one pass, as a
#: year-long run does; 36 puts a run boundary inside the second file.
RUN_DAYS = 36


@pytest.fixture
def export(tmp_path):
    rows = []
    for start, n in FILES:
        part = export_rows(start, days=24, per_day=6, seed=n)
        for row in part:
            row["ID"] = str(int(row["ID"]) + n * 1_000_000)
        write_export(tmp_path / "export" / f"crimes_part{n}.csv", part)
        rows += part
    return tmp_path / "export", rows


@pytest.fixture
def instance(tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    ensure_embedded_home(home)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with DagsterInstance.get() as inst:
        yield inst


def _run(path, tmp_path, instance, first, last):
    return materialize(
        [build_raw_crimes(chicago_on_csv(path))],
        resources=local_resources(tmp_path),
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": last,
        },
        raise_on_error=False,
    )


def _stored(tmp_path) -> pd.DataFrame:
    files = sorted((tmp_path / "data" / "chicago" / "raw_crimes").glob("*.parquet"))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def test_a_backfill_in_chunks_stores_every_row_once(export, tmp_path, instance):
    path, rows = export
    for i in range(0, len(DAYS), RUN_DAYS):
        chunk = DAYS[i : i + RUN_DAYS]
        assert _run(path, tmp_path, instance, chunk[0], chunk[-1]).success
    stored = _stored(tmp_path)
    assert len(stored) == len(rows)
    assert stored["id"].is_unique
    assert sorted(stored["id"]) == sorted(r["ID"] for r in rows)
    assert sorted(instance.get_materialized_partitions(KEY)) == DAYS


def test_the_source_parses_each_file_once_and_keeps_none_of_them(export, tmp_path):
    path, rows = export
    source = CsvSource(chicago_on_csv(path).spec, cache_dir=tmp_path / "cache")
    messages = []
    total = 0
    for i in range(0, len(DAYS), 12):
        start = pd.Timestamp(DAYS[i])
        frame = source.fetch(start, start + pd.Timedelta(days=12), progress=messages.append)
        total += len(frame)
        assert source._memory == {}  # nothing parsed is held between requests
    assert total == len(rows)
    parsed = [m for m in messages if m.startswith("parsing CSV file")]
    assert sorted(parsed) == [f"parsing CSV file crimes_part{n}.csv" for _, n in FILES]


def test_a_run_failing_while_writing_leaves_no_half_written_partition(
    export, tmp_path, instance, monkeypatch
):
    path, rows = export
    real = LocalBlobStore.write_bytes
    written = []

    def failing(self, key, data):
        if key.startswith("raw_crimes/") and len(written) >= 12:
            raise OSError(f"disk full while writing {key}")
        real(self, key, data)
        if key.startswith("raw_crimes/"):
            written.append(key)

    monkeypatch.setattr(LocalBlobStore, "write_bytes", failing)
    result = _run(path, tmp_path, instance, DAYS[0], DAYS[-1])
    assert not result.success
    folder = tmp_path / "data" / "chicago" / "raw_crimes"
    assert not [p for p in folder.iterdir() if not p.name.endswith(".parquet")]  # no temp files
    by_day = pd.Series([r["Date"][:10] for r in rows]).value_counts()
    files = sorted(folder.glob("*.parquet"))
    assert 0 < len(files) < len(DAYS)
    for f in files:  # every file there is whole: all of its day's rows
        day = pd.Timestamp(f.stem).strftime("%m/%d/%Y")
        assert len(pd.read_parquet(f)) == by_day[day]
    assert instance.get_materialized_partitions(KEY) == set()  # nothing recorded as done

    monkeypatch.setattr(LocalBlobStore, "write_bytes", real)
    assert _run(path, tmp_path, instance, DAYS[0], DAYS[-1]).success
    stored = _stored(tmp_path)
    assert len(stored) == len(rows) and stored["id"].is_unique
