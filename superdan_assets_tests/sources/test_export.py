"""ExportSource on small generated exports (both header shapes, .csv/.csv.gz) and real data."""

from __future__ import annotations

import csv
import gzip
import os
from pathlib import Path

import pandas as pd
import pytest

from superdan_assets.ml.schema import SchemaError, check_canonical
from superdan_assets.sources import export
from superdan_assets.sources.base import CrimeSource, SourceError
from superdan_assets.sources.export import ExportSource
from superdan_assets_tests.datagen import EXPORT_HEADER
from superdan_assets_tests.sources.conftest import shared_file

#: The archive export's shape (the bulk files in ../shared/data).
BASE_HEADER = list(EXPORT_HEADER)
#: The live export's shape: ``Year`` after the coordinates and ``Location`` at the end.
LIVE_HEADER = [*BASE_HEADER[:17], "Year", *BASE_HEADER[17:], "Location"]

DAY = pd.Timestamp("2018-03-01")
NEXT_DAY = pd.Timestamp("2018-03-02")


def export_row(record_id: int, date: str, **fields: str) -> dict[str, str]:
    """One export row with unpadded codes, as the portal writes some of them."""
    row = {
        "ID": str(record_id),
        "Case Number": f"JB{record_id:06d}",
        "Date": date,
        "Block": "001XX N STATE ST",
        "IUCR": "820",
        "Primary Type": "THEFT",
        "Description": "$500 AND UNDER",
        "Location Description": "STREET",
        "Arrest": "false",
        "Domestic": "true",
        "Beat": "111",
        "District": "1",
        "Ward": "2",
        "Community Area": "8",
        "FBI Code": "6",
        "X Coordinate": "1176352",
        "Y Coordinate": "1901000",
        "Updated On": "11/19/2018 04:14:28 PM",
        "Latitude": "41.883",
        "Longitude": "-87.628",
        "Year": date[6:10],
        "Location": "(41.883, -87.628)",
    }
    row.update(fields)
    return row


ROWS = [
    export_row(1, "03/01/2018 12:00:00 AM"),  # start of the day: in
    export_row(2, "03/01/2018 11:59:59 PM", Arrest="true", Domestic="false"),  # last second: in
    export_row(3, "03/02/2018 12:00:00 AM"),  # next day: out
    export_row(4, "02/28/2018 11:59:59 PM"),  # day before: out
    export_row(
        5,
        "03/01/2018 12:30:00 PM",
        Ward="",
        Latitude="",
        Longitude="",
        **{"Primary Type": "BURGLARY", "IUCR": "610", "FBI Code": "05"},
    ),
]


def write_export(path: Path, rows: list[dict[str, str]], header: list[str]) -> Path:
    """Write ``rows`` as an export file (gzip when the name ends in .gz)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def count_parses(monkeypatch) -> list[Path]:
    """Replace ``read_export_file`` with a counting wrapper; the list grows per parse."""
    parsed: list[Path] = []
    original = export.read_export_file

    def counting(path: Path, spec) -> pd.DataFrame:
        parsed.append(path)
        return original(path, spec)

    monkeypatch.setattr(export, "read_export_file", counting)
    return parsed


# -- one day from small files ----------------------------------------------------------------


@pytest.mark.parametrize("header", [BASE_HEADER, LIVE_HEADER], ids=["archive-shape", "live-shape"])
@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_rows_of_one_day_in_both_header_shapes_and_compressions(tmp_path, header, suffix):
    path = write_export(tmp_path / f"crimes{suffix}", ROWS, header)
    source = ExportSource(path)

    frame = source.fetch(DAY, NEXT_DAY)

    assert isinstance(source, CrimeSource)
    check_canonical(frame)
    assert list(frame["id"]) == ["1", "2", "5"]
    assert list(frame["date"]) == [
        pd.Timestamp("2018-03-01 00:00:00"),
        pd.Timestamp("2018-03-01 23:59:59"),
        pd.Timestamp("2018-03-01 12:30:00"),
    ]
    assert (frame["city"] == "chicago").all()


def test_codes_are_zero_padded_and_booleans_parsed(tmp_path):
    frame = ExportSource(write_export(tmp_path / "c.csv", ROWS, BASE_HEADER)).fetch(DAY, NEXT_DAY)

    first, second, burglary = frame.iloc[0], frame.iloc[1], frame.iloc[2]
    assert (first["iucr"], first["beat"], first["district"]) == ("0820", "0111", "001")
    assert (first["ward"], first["community_area"], first["fbi_code"]) == ("02", "08", "06")
    assert (burglary["iucr"], burglary["fbi_code"], burglary["primary_type"]) == (
        "0610",
        "05",
        "BURGLARY",
    )
    assert (bool(first["arrest"]), bool(first["domestic"])) == (False, True)
    assert (bool(second["arrest"]), bool(second["domestic"])) == (True, False)
    assert pd.isna(burglary["ward"]) and pd.isna(burglary["latitude"])
    assert first["updated_on"] == pd.Timestamp("2018-11-19 16:14:28")


def test_a_folder_mixes_shapes_and_skips_the_iucr_table(tmp_path):
    write_export(tmp_path / "crimes_a.csv", ROWS[:2], BASE_HEADER)
    write_export(tmp_path / "crimes_b.csv.gz", ROWS[2:], LIVE_HEADER)
    (tmp_path / "iucr_codes.csv").write_text("IUCR,PRIMARY DESCRIPTION\n0820,THEFT\n")
    progress: list[str] = []

    frame = ExportSource(tmp_path).fetch(DAY, NEXT_DAY, progress.append)

    assert sorted(frame["id"]) == ["1", "2", "5"]
    assert not any("iucr" in line for line in progress)


def test_a_range_outside_the_files_is_an_empty_canonical_frame(tmp_path):
    frame = ExportSource(write_export(tmp_path / "c.csv", ROWS, BASE_HEADER)).fetch(
        pd.Timestamp("2019-01-01"), pd.Timestamp("2019-01-02")
    )
    assert frame.empty
    check_canonical(frame)


# -- the Parquet cache -----------------------------------------------------------------------


def test_second_instance_reads_the_parquet_cache_without_parsing(tmp_path, count_parses):
    path = write_export(tmp_path / "crimes.csv.gz", ROWS, LIVE_HEADER)
    cache = tmp_path / "cache"

    first = ExportSource(path, cache_dir=cache).fetch(DAY, NEXT_DAY)
    assert len(count_parses) == 1
    assert sorted(p.suffix for p in cache.iterdir()) == [".json", ".parquet"]

    second = ExportSource(path, cache_dir=cache).fetch(DAY, NEXT_DAY)

    assert len(count_parses) == 1  # served from Parquet: the CSV was not parsed again
    pd.testing.assert_frame_equal(first, second)
    check_canonical(second)


def test_a_changed_file_is_parsed_again(tmp_path, count_parses):
    path = write_export(tmp_path / "crimes.csv", ROWS, BASE_HEADER)
    cache = tmp_path / "cache"
    ExportSource(path, cache_dir=cache).fetch(DAY, NEXT_DAY)

    write_export(path, ROWS[:1], BASE_HEADER)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    frame = ExportSource(path, cache_dir=cache).fetch(DAY, NEXT_DAY)

    assert len(count_parses) == 2
    assert list(frame["id"]) == ["1"]


# -- bad input -------------------------------------------------------------------------------


def test_a_file_that_is_not_an_export_gives_a_clear_error(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("name,value\na,1\n")
    with pytest.raises(
        SchemaError,
        match=r"other.csv: column\(s\) named in the city spec are missing from the data: "
        r"'id' \(for id\).*the data has columns \['name', 'value'\]",
    ):
        ExportSource(path).fetch(DAY, NEXT_DAY)


def test_extra_columns_are_ignored(tmp_path):
    header = ["Surprise", *BASE_HEADER, "Another One"]
    rows = [{**row, "Surprise": "x", "Another One": "y"} for row in ROWS]
    plain = ExportSource(write_export(tmp_path / "plain.csv", ROWS, BASE_HEADER))
    extra = ExportSource(write_export(tmp_path / "extra.csv", rows, header))

    frame = extra.fetch(DAY, NEXT_DAY)

    check_canonical(frame)
    assert "Surprise" not in frame.columns and "Another One" not in frame.columns
    pd.testing.assert_frame_equal(frame, plain.fetch(DAY, NEXT_DAY))


def test_a_column_named_in_the_spec_but_absent_names_the_column_and_file(tmp_path):
    header = [h for h in BASE_HEADER if h != "Beat"]
    path = write_export(tmp_path / "no_beat.csv", ROWS, header)
    cache = tmp_path / "cache"
    with pytest.raises(
        SchemaError,
        match=r"no_beat.csv: column\(s\) named in the city spec are missing from the data: "
        r"'beat' \(for beat\);",
    ) as failure:
        ExportSource(path, cache_dir=cache).fetch(DAY, NEXT_DAY)
    assert str(path) in str(failure.value)
    assert "district" not in str(failure.value).split(";")[0]  # only the missing one is named
    assert not cache.exists() or not any(cache.iterdir())  # nothing is written


def test_an_unparseable_date_names_the_column_and_row(tmp_path):
    path = write_export(tmp_path / "bad.csv", [*ROWS, export_row(9, "yesterday")], BASE_HEADER)
    with pytest.raises(
        SchemaError,
        match=r"bad.csv: column 'Date' has values that none of the spec's date formats "
        r"\['%m/%d/%Y %I:%M:%S %p', 'iso'\] read: row 5: 'yesterday'",
    ):
        ExportSource(path).fetch(DAY, NEXT_DAY)


def test_a_missing_path_or_empty_folder_gives_a_clear_error(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        ExportSource(tmp_path / "nope").fetch(DAY, NEXT_DAY)
    with pytest.raises(SourceError, match="no .csv or .csv.gz files in folder"):
        ExportSource(tmp_path).fetch(DAY, NEXT_DAY)


# -- real data -------------------------------------------------------------------------------


def count_days_with_csv_module(path: Path, days: list[str]) -> dict[str, int]:
    """Rows per ``MM/DD/YYYY`` day, counted from the raw text without the project's code."""
    counts = dict.fromkeys(days, 0)
    with gzip.open(path, "rt", newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        date_column = next(reader).index("Date")
        for row in reader:
            day = row[date_column][:10]
            if day in counts:
                counts[day] += 1
    return counts


@pytest.mark.realdata
def test_real_export_day_counts_match_an_independent_count():
    path = shared_file("chicago", "crimes_2018.csv.gz")
    # New Year (many estimated midnight times) and both 2018 DST change days.
    days = ["01/01/2018", "03/11/2018", "11/04/2018"]
    expected = count_days_with_csv_module(path, days)
    source = ExportSource(path)

    for day in days:
        start = pd.Timestamp(pd.to_datetime(day, format="%m/%d/%Y"))
        frame = source.fetch(start, start + pd.Timedelta(days=1))
        assert len(frame) == expected[day] > 0, day
        assert frame["date"].dt.normalize().eq(start).all()
        assert frame["id"].is_unique
    check_canonical(frame)
