"""SpecMapper: a city's own columns, date formats and label words -> canonical rows.

The end-to-end case is a city in a foreign layout: other column names, UTC times in another
format, other label words, no id column and no beats, read by ``CsvSource`` and labelled by
the rule of its spec alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from superdan_assets.cities import load_spec_file, parse_spec, resolve_spec
from superdan_assets.cities.mapping import (
    SpecMapper,
    derived_ids,
    normalise_header,
    parse_dates,
)
from superdan_assets.ml.labels import FEATURE_ROW_DTYPES, LabelRule, build_feature_rows
from superdan_assets.ml.schema import SchemaError, check_canonical
from superdan_assets.sources.export import CsvSource
from superdan_assets_tests.cities.conftest import SPRINGFIELD, write_spec

CHICAGO = "America/Chicago"


def dates(values, formats, mode="local", tz=CHICAGO) -> list[pd.Timestamp]:
    parsed = parse_dates(
        pd.Series(values, dtype=object), tuple(formats), mode, tz, column="when", where="test"
    )
    assert str(parsed.dtype) == "datetime64[ns]"  # naive local wall-clock time
    return parsed.tolist()


T = pd.Timestamp

# -- date formats -------------------------------------------------------------------------------


def test_a_strptime_format():
    assert dates(["2020-06-01 15:04:05", " 2020-12-31 23:59:59 "], ["%Y-%m-%d %H:%M:%S"]) == [
        T("2020-06-01 15:04:05"),
        T("2020-12-31 23:59:59"),
    ]
    assert dates(["01/02/2018 01:30:00 PM"], ["%m/%d/%Y %I:%M:%S %p"]) == [T("2018-01-02 13:30")]


def test_a_list_of_formats_is_tried_in_order():
    assert dates(["02/01/2018"], ["%d/%m/%Y", "%m/%d/%Y"]) == [T("2018-01-02")]
    assert dates(["02/01/2018"], ["%m/%d/%Y", "%d/%m/%Y"]) == [T("2018-02-01")]
    # Each value takes the first format that reads it (the Chicago export and API shapes).
    mixed = ["01/02/2018 01:30:00 PM", "2018-01-02T13:30:00.000", "2018-01-02T13:30:00"]
    assert dates(mixed, ["%m/%d/%Y %I:%M:%S %p", "iso"]) == [T("2018-01-02 13:30")] * 3


def test_blank_and_missing_values_stay_missing():
    got = dates(["2020-01-01 00:00:00", "", "   ", None], ["%Y-%m-%d %H:%M:%S"])
    assert got[0] == T("2020-01-01") and all(pd.isna(v) for v in got[1:])


def test_a_value_no_format_reads_names_the_column_the_place_and_the_row():
    with pytest.raises(
        SchemaError,
        match=r"^test: column 'when' has values that none of the spec's date formats "
        r"\['%Y-%m-%d', 'epoch_s'\] read: row 2: 'tomorrow'",
    ):
        dates(["2020-01-01", "1590000000", "tomorrow"], ["%Y-%m-%d", "epoch_s"])


def test_iso_without_an_offset_is_the_wall_clock_or_utc_as_the_spec_says():
    assert dates(["2020-01-02T03:04:05"], ["iso"], "local") == [T("2020-01-02 03:04:05")]
    assert dates(["2020-01-02T03:04:05"], ["iso"], "UTC") == [T("2020-01-01 21:04:05")]
    assert dates(["2020-07-02 03:04:05"], ["iso"], "UTC") == [T("2020-07-01 22:04:05")]


def test_iso_with_an_offset_is_converted_to_the_city_time():
    values = ["2020-01-02T03:04:05Z", "2020-01-02T03:04:05-05:00", "2020-01-02T03:04:05+01:00"]
    expected = [T("2020-01-01 21:04:05"), T("2020-01-02 02:04:05"), T("2020-01-01 20:04:05")]
    assert dates(values, ["iso"], "local") == expected
    assert dates(values, ["iso"], "UTC") == expected


def test_epoch_milliseconds_and_seconds():
    # 2020-04-04 14:00 UTC is 10:00 in Rochester (EDT).
    ms, s = 1586008800000, 1586008800
    ny = "America/New_York"
    assert dates([str(ms), ms, f"{ms}.0"], ["epoch_ms"], "UTC", ny) == [T("2020-04-04 10:00")] * 3
    assert dates([str(s), s], ["epoch_s"], "UTC", ny) == [T("2020-04-04 10:00")] * 2
    with pytest.raises(SchemaError, match="row 0: 'noon'"):
        dates(["noon"], ["epoch_ms"], "UTC", ny)


def test_utc_times_become_local_naive_time_across_dst_changes():
    utc = [
        "2020-03-08 07:59:00",  # 01:59 CST, the last minute before spring forward
        "2020-03-08 08:00:00",  # 03:00 CDT: 02:00-02:59 never happens
        "2020-11-01 06:30:00",  # 01:30 CDT, the first pass through the repeated hour
        "2020-11-01 07:30:00",  # 01:30 CST, the second pass
        "2020-11-01 08:30:00",  # 02:30 CST
    ]
    assert dates(utc, ["%Y-%m-%d %H:%M:%S"], "UTC") == [
        T("2020-03-08 01:59"),
        T("2020-03-08 03:00"),
        T("2020-11-01 01:30"),
        T("2020-11-01 01:30"),
        T("2020-11-01 02:30"),
    ]
    epoch = [int(pd.Timestamp(u, tz="UTC").timestamp() * 1000) for u in utc]
    assert dates(epoch, ["epoch_ms"], "UTC") == dates(utc, ["%Y-%m-%d %H:%M:%S"], "UTC")


def test_local_times_keep_their_wall_clock_at_dst_changes():
    # The repeated fall-back hour is kept as written; a time that does not exist in spring
    # moves forward to the first that does.
    assert dates(["2020-11-01 01:30:00", "2020-03-08 02:30:00"], ["%Y-%m-%d %H:%M:%S"]) == [
        T("2020-11-01 01:30"),
        T("2020-03-08 03:00"),
    ]


def test_already_parsed_datetimes():
    aware = pd.Series(pd.to_datetime(["2020-07-01 12:00"]).tz_localize("UTC"))
    naive = pd.Series(pd.to_datetime(["2020-07-01 12:00"]))
    kw = {"column": "when", "where": "test"}
    assert parse_dates(aware, ("iso",), "local", CHICAGO, **kw).tolist() == [T("2020-07-01 07:00")]
    assert parse_dates(naive, ("iso",), "UTC", CHICAGO, **kw).tolist() == [T("2020-07-01 07:00")]
    assert parse_dates(naive, ("iso",), "local", CHICAGO, **kw).tolist() == [T("2020-07-01 12:00")]


# -- derived ids ----------------------------------------------------------------------------------

ROWS_DATA = {
    "occurred": ["2020-06-01 10:00", "2020-06-01 10:00", "2020-06-01 11:00", "2020-06-01 10:00"],
    "offense": ["Theft", "Theft", "Theft", "Theft"],
    "address": ["1 Main St", "1 Main St", "1 Main St", None],
}
ROWS = pd.DataFrame(ROWS_DATA)


def test_derived_ids_are_stable_across_calls():
    first = derived_ids(ROWS)
    assert first.tolist() == derived_ids(ROWS.copy()).tolist()
    # The id of a row does not depend on the frame's index or on the other rows.
    shuffled = ROWS.iloc[[3, 2, 1, 0]].reset_index(drop=True)
    assert derived_ids(shuffled).tolist()[1] == first.tolist()[2]
    assert derived_ids(ROWS.iloc[[2]]).tolist() == [first.tolist()[2]]
    assert str(first.dtype) == "string" and derived_ids(ROWS.iloc[:0]).empty


def test_derived_ids_are_distinct_for_identical_rows():
    ids = derived_ids(ROWS).tolist()
    assert len(set(ids)) == len(ids)
    assert ids[1] == f"{ids[0]}-1"  # the second of two identical reports
    assert ids[3] != ids[0]  # a missing value is content too


def test_derived_ids_are_the_same_in_another_process():
    code = (
        "import pandas as pd\n"
        "from superdan_assets.cities.mapping import derived_ids\n"
        f"print(','.join(derived_ids(pd.DataFrame({ROWS_DATA!r})).tolist()))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip().split(",") == derived_ids(ROWS).tolist()


def test_a_derived_id_does_not_depend_on_which_columns_a_page_carries():
    # A JSON feed omits null fields: a page where no row has an address lacks the column.
    # The same incident must get the same id on any page.
    mapper = SpecMapper(parse_spec(SPRINGFIELD))
    row = {"occurred": "2020-06-01 15:00:00", "offense": "Theft"}
    lacking = pd.DataFrame([row])
    carrying = pd.DataFrame([{**row, "address": None, "lat": None}, {**row, "address": "1 Main"}])
    reordered = pd.DataFrame([{"premise": None, **row}])
    ids = [
        mapper.to_canonical(frame, where="page", strict=False)["id"].tolist()[0]
        for frame in (lacking, carrying, reordered)
    ]
    assert len(set(ids)) == 1, ids
    other = mapper.to_canonical(carrying, where="page", strict=False)["id"].tolist()[1]
    assert other != ids[0]


# -- header matching ------------------------------------------------------------------------------


def test_headers_match_exactly_or_once_normalised():
    assert normalise_header("Primary Type") == "primary_type"
    assert normalise_header("  Date/Time (UTC) ") == "date_time_utc"
    mapper = SpecMapper(resolve_spec("chicago"))
    found = mapper.match_columns(
        ["ID", "Date", "Primary Type", "primary_type"],
        where="t",
        required=("id", "date", "primary_type"),
    )
    assert found == {"id": "ID", "date": "Date", "primary_type": "primary_type"}  # exact first


def test_label_column_must_be_the_primary_type_column():
    spec = parse_spec(SPRINGFIELD.replace('column = "offense"', 'column = "category"'))
    with pytest.raises(SchemaError, match=r"labels.column 'category' must be the column mapped"):
        SpecMapper(spec)
    unmapped = parse_spec(
        SPRINGFIELD.replace('primary_type = "offense"\n', "").replace(
            'column = "offense"', 'column = "category"'
        )
    )
    assert SpecMapper(unmapped).columns["primary_type"] == "category"


def test_a_feed_may_omit_optional_columns_but_not_the_date_or_label():
    mapper = SpecMapper(parse_spec(SPRINGFIELD))
    frame = pd.DataFrame({"occurred": ["2020-06-01 15:00:00"], "offense": ["Theft"]})
    with pytest.raises(SchemaError, match=r"'address' \(for block\)"):
        mapper.to_canonical(frame, where="page 1")
    got = mapper.to_canonical(frame, where="page 1", strict=False)
    check_canonical(got)
    assert got["block"].isna().all() and got["id"].notna().all()
    with pytest.raises(SchemaError, match=r"page 2: .*'offense' \(for primary_type\)"):
        mapper.to_canonical(frame[["occurred"]], where="page 2", strict=False)


# -- a new city in a foreign layout, from its spec alone ----------------------------------------

FOREIGN_SPEC = """\
spec_version = 1

[city]
name = "shelbyville"
timezone = "America/Denver"

[source]
kind = "csv"
path = "exports"

[columns]
date = "Reported At (UTC)"
block = "Street Address"
location_description = "Premise Type"
primary_type = "Offense Category"
district = "Zone"
latitude = "Y"
longitude = "X"

[date]
format = ["%d.%m.%Y %H:%M", "%d.%m.%Y"]
timezone = "UTC"

[labels]
column = "Offense Category"
burglary = ["Break and Enter", "Burglary - Residential"]
theft = ["theft"]
drop = ["Theft of Identity"]
"""

FOREIGN_CSV = """\
Case Ref,Reported At (UTC),Street Address,Premise Type,Offense Category,Zone,X,Y,Officer
A-1,01.06.2020 12:00,100 Evergreen Ter,Single Family Home,BREAK AND ENTER,3,-104.99,39.74,7
A-2,01.06.2020 18:30,200 Main St,Parking Lot,Theft,3,-104.98,39.75,7
A-3,02.06.2020 05:59,200 Main St,Parking Lot,  theft ,4,,,8
A-4,02.06.2020 06:00,300 Oak Ave,Street,Theft,4,-104.97,39.76,8
A-5,01.06.2020 20:00,300 Oak Ave,Street,Auto Theft,4,-104.97,39.76,8
A-6,01.06.2020 21:00,1 Bank Plaza,Bank,Theft of Identity,1,-104.96,39.77,9
A-7,01.06.2020 22:00,400 Elm St,Apartment,Burglary - Residential,2,-104.95,39.78,9
A-8,01.06.2020 22:00,400 Elm St,Apartment,Burglary - Residential,2,-104.95,39.78,9
A-9,01.06.2020 23:00,500 Pine St,Store,Robbery,2,-104.94,39.79,9
A-10,31.05.2020,600 Ash St,Street,Theft,2,-104.93,39.80,9
"""


@pytest.fixture
def foreign_city(tmp_path) -> Path:
    exports = tmp_path / "shelbyville" / "exports"
    exports.mkdir(parents=True)
    (exports / "offenses.csv").write_text(FOREIGN_CSV, encoding="utf-8")
    return write_spec(tmp_path / "shelbyville", FOREIGN_SPEC, "shelbyville.toml")


def test_a_foreign_layout_maps_to_canonical_rows(foreign_city):
    spec = load_spec_file(foreign_city)
    # June 1 in Denver (MDT, UTC-6) is 06:00 UTC June 1 .. 06:00 UTC June 2.
    frame = CsvSource(spec).fetch(pd.Timestamp("2020-06-01"), pd.Timestamp("2020-06-02"))

    check_canonical(frame)
    assert (frame["city"] == "shelbyville").all()
    by_block = frame.sort_values("date", kind="stable").reset_index(drop=True)
    assert by_block["date"].tolist() == [
        T("2020-06-01 06:00"),
        T("2020-06-01 12:30"),
        T("2020-06-01 14:00"),
        T("2020-06-01 15:00"),
        T("2020-06-01 16:00"),
        T("2020-06-01 16:00"),
        T("2020-06-01 17:00"),
        T("2020-06-01 23:59"),
    ]  # A-4 (06:00 UTC June 2) is June 2 local; A-10 (May 31 UTC midnight) is May 30 local
    # Values as the source gave them (trimmed); unmapped columns (Case Ref, Officer) are gone.
    assert "BREAK AND ENTER" in set(frame["primary_type"])
    assert "theft" in set(frame["primary_type"])
    assert set(frame["location_description"]) >= {"Single Family Home", "Parking Lot"}
    assert frame["district"].notna().all() and set(frame["district"]) == {"1", "2", "3", "4"}
    # What the city lacks is missing, not an error.
    assert frame[["beat", "ward", "iucr", "fbi_code", "case_number"]].isna().all().all()
    # No id column: ids derived from the content, unique even for the two identical rows.
    assert frame["id"].is_unique and frame["id"].str.startswith("h").all()
    again = CsvSource(load_spec_file(foreign_city)).fetch(
        pd.Timestamp("2020-06-01"), pd.Timestamp("2020-06-02")
    )
    assert sorted(again["id"]) == sorted(frame["id"])


def test_a_foreign_layout_is_labelled_by_its_spec(foreign_city):
    spec = load_spec_file(foreign_city)
    raw = CsvSource(spec).fetch(pd.Timestamp("2020-05-30"), pd.Timestamp("2020-06-03"))
    assert len(raw) == 10

    rows = build_feature_rows(raw, LabelRule.from_spec(spec))

    assert {c: str(t) for c, t in rows.dtypes.items()} == {
        c: str(pd.Series(dtype=t).dtype) for c, t in FEATURE_ROW_DTYPES.items()
    }
    labelled = dict(zip(rows["date"], rows["label"], strict=True))
    assert labelled == {
        T("2020-05-30 18:00"): 0,  # A-10 Theft
        T("2020-06-01 06:00"): 1,  # A-1 BREAK AND ENTER: case-insensitive
        T("2020-06-01 12:30"): 0,  # A-2 Theft
        T("2020-06-01 23:59"): 0,  # A-3 "  theft ": trimmed
        T("2020-06-02 00:00"): 0,  # A-4 Theft
        T("2020-06-01 16:00"): 1,  # Burglary - Residential, both kept
    }
    assert len(rows) == 7 and rows["label"].sum() == 3
    # "Auto Theft" is not theft (whole values), "Theft of Identity" is dropped, Robbery is
    # neither: none of them is a feature row.
    assert T("2020-06-01 14:00") not in labelled  # A-5 Auto Theft
    assert T("2020-06-01 15:00") not in labelled  # A-6 Theft of Identity
    assert T("2020-06-01 17:00") not in labelled  # A-9 Robbery
    assert rows["beat"].isna().all() and rows["ward"].isna().all()
    assert rows["district"].notna().all()
