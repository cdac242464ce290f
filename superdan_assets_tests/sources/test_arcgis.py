"""ArcGISSource against a real local FeatureServer fake, and the Rochester snapshot mapping."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from superdan_assets.ml.schema import SchemaError, check_canonical
from superdan_assets.sources.arcgis import (
    ArcGISSource,
    read_rochester_snapshot,
    rochester_to_canonical,
    utc_range,
    where_clause,
)
from superdan_assets.sources.base import CrimeSource, SourceError
from superdan_assets_tests.fakes.arcgis_server import (
    FakeArcGISServer,
    arcgis_feature,
    features_from_snapshot,
)
from superdan_assets_tests.sources.conftest import shared_file

DAY_START = pd.Timestamp("2020-04-04")
DAY_END = pd.Timestamp("2020-04-05")


def utc_ms(text: str) -> int:
    """Epoch ms of a UTC wall-clock time."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def day_features(n: int, day: str = "2020-04-04", first_id: int = 1) -> list[dict]:
    """``n`` features spread over one Rochester local day, OBJECTIDs from ``first_id``."""
    base = pd.Timestamp(day)
    step = pd.Timedelta(days=1) / n
    return [
        arcgis_feature(first_id + i, (base + step * i).floor("s").isoformat(sep=" "))
        for i in range(n)
    ]


def make_source(server, client, **kwargs) -> ArcGISSource:
    return ArcGISSource(url=server.url, client=client, **kwargs)


# -- query and paging ------------------------------------------------------------------------


def test_query_parameters_follow_the_layer_contract(arcgis_server, fast_client):
    make_source(arcgis_server, fast_client).fetch(DAY_START, DAY_END)

    params = arcgis_server.requests[0].params
    assert params["where"] == (
        "OccurredFrom_Timestamp >= timestamp '2020-04-04 04:00:00' AND "
        "OccurredFrom_Timestamp < timestamp '2020-04-05 04:00:00'"
    )
    assert params["outFields"] == "OBJECTID,OccurredFrom_Timestamp,Statute_Text,Location_Type"
    assert (params["outSR"], params["f"], params["orderByFields"]) == ("4326", "json", "OBJECTID")
    assert (params["resultOffset"], params["resultRecordCount"]) == ("0", "1000")


def test_exceeded_transfer_limit_paging_returns_every_row_exactly_once(fast_client):
    features = day_features(2345)
    with FakeArcGISServer(features, max_record_count=500) as server:
        frame = make_source(server, fast_client, page_size=1000).fetch(DAY_START, DAY_END)

        # The server caps pages at 500: the client advances by what it got, not by what it asked.
        assert [r.params["resultOffset"] for r in server.requests] == [
            "0",
            "500",
            "1000",
            "1500",
            "2000",
        ]
    assert len(frame) == 2345
    assert frame["id"].is_unique
    assert set(frame["id"]) == {str(i) for i in range(1, 2346)}


def test_pages_smaller_than_the_server_maximum(arcgis_server, fast_client):
    arcgis_server.set_features(day_features(700))
    frame = make_source(arcgis_server, fast_client, page_size=300).fetch(DAY_START, DAY_END)
    assert len(frame) == 700
    assert [r.params["resultOffset"] for r in arcgis_server.requests] == ["0", "300", "600"]


def test_range_boundaries_are_inclusive_start_exclusive_end(arcgis_server, fast_client):
    arcgis_server.set_features(
        [
            arcgis_feature(1, "2020-04-03 23:59:59"),
            arcgis_feature(2, "2020-04-04 00:00:00"),
            arcgis_feature(3, "2020-04-04 23:59:59"),
            arcgis_feature(4, "2020-04-05 00:00:00"),
        ]
    )
    frame = make_source(arcgis_server, fast_client).fetch(DAY_START, DAY_END)
    assert list(frame["id"]) == ["2", "3"]
    assert list(frame["date"]) == [
        pd.Timestamp("2020-04-04 00:00:00"),
        pd.Timestamp("2020-04-04 23:59:59"),
    ]


# -- time zones ------------------------------------------------------------------------------


def test_epoch_ms_become_local_time_across_spring_forward(arcgis_server, fast_client):
    # 2020-03-08 02:00 EST -> 03:00 EDT: local clocks skip an hour, UTC does not.
    arcgis_server.set_features(
        [
            arcgis_feature(1, utc_ms("2020-03-08 05:00:00")),  # 00:00 EST
            arcgis_feature(2, utc_ms("2020-03-08 06:59:00")),  # 01:59 EST
            arcgis_feature(3, utc_ms("2020-03-08 07:00:00")),  # 03:00 EDT
            arcgis_feature(4, utc_ms("2020-03-09 03:59:59")),  # 23:59:59 EDT
            arcgis_feature(5, utc_ms("2020-03-09 04:00:00")),  # next day 00:00 EDT
        ]
    )
    frame = make_source(arcgis_server, fast_client).fetch(
        pd.Timestamp("2020-03-08"), pd.Timestamp("2020-03-09")
    )
    assert list(frame["date"].dt.strftime("%H:%M:%S")) == [
        "00:00:00",
        "01:59:00",
        "03:00:00",
        "23:59:59",
    ]
    assert "timestamp '2020-03-08 05:00:00'" in arcgis_server.requests[0].params["where"]
    assert "timestamp '2020-03-09 04:00:00'" in arcgis_server.requests[0].params["where"]


def test_epoch_ms_become_local_time_across_fall_back(arcgis_server, fast_client):
    # 2020-11-01 02:00 EDT -> 01:00 EST: 01:30 happens twice; both readings belong to the day.
    arcgis_server.set_features(
        [
            arcgis_feature(1, utc_ms("2020-11-01 05:30:00")),  # 01:30 EDT
            arcgis_feature(2, utc_ms("2020-11-01 06:30:00")),  # 01:30 EST
            arcgis_feature(3, utc_ms("2020-11-02 04:59:59")),  # 23:59:59 EST
            arcgis_feature(4, utc_ms("2020-11-02 05:00:00")),  # next day
        ]
    )
    source = make_source(arcgis_server, fast_client)

    day = source.fetch(pd.Timestamp("2020-11-01"), pd.Timestamp("2020-11-02"))
    early = source.fetch(pd.Timestamp("2020-11-01"), pd.Timestamp("2020-11-01 01:45"))

    assert list(day["id"]) == ["1", "2", "3"]
    assert list(day["date"].dt.strftime("%H:%M:%S")) == ["01:30:00", "01:30:00", "23:59:59"]
    # An ambiguous end boundary is read at its latest instant, so the EST reading is not lost.
    assert list(early["id"]) == ["1", "2"]


def test_utc_range_widens_at_ambiguous_boundaries():
    start, end = utc_range(
        pd.Timestamp("2020-11-01 01:30"), pd.Timestamp("2020-11-01 01:45"), "America/New_York"
    )
    assert (start, end) == (pd.Timestamp("2020-11-01 05:30"), pd.Timestamp("2020-11-01 06:45"))
    assert where_clause(start, end).endswith("< timestamp '2020-11-01 06:45:00'")


# -- mapping ---------------------------------------------------------------------------------


def test_features_map_to_the_canonical_schema(arcgis_server, fast_client):
    arcgis_server.set_features(
        [
            arcgis_feature(
                11,
                "2020-04-04 10:15:00",
                " Larceny ",
                x=-77.61,
                y=43.15,
                Statute_Description="Petit Larceny   ",
                Location_Type="  Parking Lot ",
            ),
            arcgis_feature(12, "2020-04-04 11:00:00", "Burglary", x=None, y=None),
        ]
    )
    frame = make_source(arcgis_server, fast_client).fetch(DAY_START, DAY_END)

    check_canonical(frame)
    assert isinstance(make_source(arcgis_server, fast_client), CrimeSource)
    first, second = frame.iloc[0], frame.iloc[1]
    # Values as the source gave them (trimmed); the spec does not map the label-leaking
    # Statute_Description, so it never reaches the canonical rows.
    assert (first["id"], first["primary_type"]) == ("11", "Larceny")
    assert pd.isna(first["description"])
    assert first["location_description"] == "Parking Lot"
    assert (first["longitude"], first["latitude"]) == (-77.61, 43.15)
    assert first["city"] == "rochester" and first["date"] == pd.Timestamp("2020-04-04 10:15:00")
    assert second["primary_type"] == "Burglary"
    assert pd.isna(second["longitude"]) and pd.isna(second["latitude"])
    chicago_only = [
        "case_number",
        "block",
        "iucr",
        "beat",
        "district",
        "ward",
        "fbi_code",
        "arrest",
    ]
    assert frame[chicago_only].isna().all().all()


def rochester_row(**overrides) -> dict:
    """One Rochester row with every column the packaged spec maps."""
    row = {
        "OBJECTID": 1,
        "OccurredFrom_Timestamp": utc_ms("2020-04-04 14:00:00"),
        "Statute_Text": "Larceny",
        "Location_Type": "Street",
        "x": -77.6,
        "y": 43.1,
    }
    return {**row, **overrides}


def test_mapping_names_a_missing_required_field():
    row = rochester_row()
    del row["OccurredFrom_Timestamp"]
    with pytest.raises(
        SchemaError,
        match=r"snap: column\(s\) named in the city spec are missing from the data: "
        r"'OccurredFrom_Timestamp' \(for date\)",
    ):
        rochester_to_canonical(pd.DataFrame([row]), source="snap")


def test_mapping_names_an_unconvertible_value():
    frame = pd.DataFrame([rochester_row(OccurredFrom_Timestamp="yesterday")])
    with pytest.raises(
        SchemaError,
        match=r"snap: column 'OccurredFrom_Timestamp' has values that none of the spec's date "
        r"formats \['epoch_ms'\] read: row 0: 'yesterday'",
    ):
        rochester_to_canonical(frame, source="snap")


# -- faults ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind", ["429", "500", "truncate", "invalid_json", "hang", "error_payload"]
)
def test_transient_faults_are_retried_and_the_result_is_complete(fast_client, sleeps, kind):
    with FakeArcGISServer(day_features(1200), max_record_count=500) as server:
        server.fail_at_offset(500, kind, error_code=503, hang_seconds=3.0)
        frame = make_source(server, fast_client).fetch(DAY_START, DAY_END)
        offsets = [r.params["resultOffset"] for r in server.requests]
    assert len(frame) == 1200 and frame["id"].is_unique
    assert offsets == ["0", "500", "500", "1000"]
    assert len(sleeps.waits) == 1


def test_permanent_error_payload_fails_at_once(arcgis_server, fast_client):
    arcgis_server.fail_next("error_payload", error_code=400)
    with pytest.raises(SourceError, match=r"ArcGIS page 1 \(resultOffset 0\).*ArcGIS error 400"):
        make_source(arcgis_server, fast_client).fetch(DAY_START, DAY_END)
    assert len(arcgis_server.requests) == 1


def test_persistent_error_payload_fails_after_the_attempts(arcgis_server, fast_client):
    arcgis_server.fail_next("error_payload", times=100, error_code=500)
    with pytest.raises(SourceError) as failure:
        make_source(arcgis_server, fast_client).fetch(DAY_START, DAY_END)
    message = str(failure.value)
    assert "failed after 4 attempt(s)" in message and "ArcGIS error 500" in message
    assert arcgis_server.url in message and "timestamp '2020-04-04 04:00:00'" in message


def test_renamed_field_is_reported_clearly(arcgis_server, fast_client):
    arcgis_server.set_features(day_features(5))
    arcgis_server.rename_field("Statute_Text", "StatuteText")
    with pytest.raises(SourceError, match=r"ArcGIS error 400.*outFields.*Statute_Text"):
        make_source(arcgis_server, fast_client).fetch(DAY_START, DAY_END)
    assert len(arcgis_server.requests) == 1


def test_features_lacking_a_required_attribute_fail_naming_the_page(fast_client):
    class DroppingServer(FakeArcGISServer):
        """Serves features without Statute_Text although it was asked for."""

        def handle(self, params):
            response = super().handle(params)
            for feature in response.body.get("features", []):
                feature["attributes"].pop("Statute_Text", None)
            return response

    with (
        DroppingServer(day_features(3)) as server,
        pytest.raises(
            SchemaError, match=r"ArcGIS page 1 .*lacks required field\(s\) \['Statute_Text'\]"
        ),
    ):
        make_source(server, fast_client).fetch(DAY_START, DAY_END)


def test_transfer_limit_without_features_is_an_error_not_a_loop(fast_client):
    class StuckServer(FakeArcGISServer):
        def handle(self, params):
            return type(super().handle(params))(
                200, {"features": [], "exceededTransferLimit": True}
            )

    with StuckServer() as server, pytest.raises(SourceError, match="no features came back"):
        make_source(server, fast_client).fetch(DAY_START, DAY_END)


# -- the CSV snapshot ------------------------------------------------------------------------


def test_snapshot_reader_uses_the_same_mapping(tmp_path):
    path = tmp_path / "day.csv"
    path.write_text(
        "OBJECTID,OccurredFrom_Timestamp,OccurredThrough_Timestamp,Reported_Timestamp,"
        "Statute_Text,Statute_Description,Weapon_Description,Larceny_Type,Location_Type,x,y\n"
        f"7,{utc_ms('2020-04-04 14:00:00')},,,Burglary,Burglary 2nd   ,,,Multiple Dwelling,-77.6,43.1\n"
        f"8,{utc_ms('2020-04-04 15:00:00')},,,Larceny,Petit Larceny,,,Street,,\n"
    )
    frame = read_rochester_snapshot(path)
    check_canonical(frame)
    assert list(frame["id"]) == ["7", "8"]
    assert list(frame["date"]) == [
        pd.Timestamp("2020-04-04 10:00"),
        pd.Timestamp("2020-04-04 11:00"),
    ]
    # Values as the source gave them; Statute_Description (label-leaking) is never mapped.
    assert list(frame["primary_type"]) == ["Burglary", "Larceny"]
    assert list(frame["location_description"]) == ["Multiple Dwelling", "Street"]
    assert frame["description"].isna().all()
    assert (frame.loc[0, "longitude"], frame.loc[0, "latitude"]) == (-77.6, 43.1)
    assert pd.isna(frame.loc[1, "longitude"])


def test_snapshot_reader_gives_a_clear_error_for_a_bad_file(tmp_path):
    path = tmp_path / "not_rochester.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(
        SchemaError,
        match=r"not_rochester.csv: column\(s\) named in the city spec are missing from the "
        r"data: 'OBJECTID' \(for id\), 'OccurredFrom_Timestamp' \(for date\)",
    ):
        read_rochester_snapshot(path)
    with pytest.raises(SourceError, match="does not exist"):
        read_rochester_snapshot(tmp_path / "missing.csv")


@pytest.mark.realdata
def test_real_rochester_snapshot_maps_every_row():
    path = shared_file("rochester", "day_2020-04-04.csv")
    frame = read_rochester_snapshot(path)
    check_canonical(frame)
    assert len(frame) == 1124
    counts = frame["primary_type"].value_counts()
    assert counts["Larceny"] == 686
    assert counts["Burglary"] == 148
    assert frame["id"].is_unique


@pytest.mark.realdata
def test_real_snapshot_served_by_the_fake_layer_matches_the_csv_reader(fast_client):
    path = shared_file("rochester", "day_2020-04-04.csv")
    expected = read_rochester_snapshot(path)
    start, end = (
        expected["date"].min().floor("D"),
        expected["date"].max().floor("D") + pd.Timedelta(days=1),
    )
    with FakeArcGISServer(features_from_snapshot(path), max_record_count=400) as server:
        fetched = make_source(server, fast_client).fetch(start, end)
    key = ["id"]
    pd.testing.assert_frame_equal(
        fetched.sort_values(key).reset_index(drop=True),
        expected.sort_values(key).reset_index(drop=True),
    )
