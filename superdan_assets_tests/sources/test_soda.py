"""SodaSource against a real local SODA fake: paging, token handling, retries, schema checks."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from superdan_assets.ml.schema import SchemaError, check_canonical
from superdan_assets.sources.base import CrimeSource, SourceError
from superdan_assets.sources.soda import (
    SodaSource,
    records_to_canonical,
    split_range,
    where_clause,
)
from superdan_assets_tests.fakes.soda_server import FakeSodaServer, soda_record

START = pd.Timestamp("2018-03-01")
END = pd.Timestamp("2018-03-02")
TOKEN = "s3cr3t-app-token-value"


def day_records(n: int, day: str = "2018-03-01", first_id: int = 1) -> list[dict]:
    """``n`` records spread over one day, ids consecutive from ``first_id``."""
    base = pd.Timestamp(day)
    step = pd.Timedelta(days=1) / n
    return [
        soda_record(first_id + i, (base + step * i).floor("s").strftime("%Y-%m-%dT%H:%M:%S"))
        for i in range(n)
    ]


def boundary_records() -> list[dict]:
    """Records just outside and exactly on the range boundaries (ids 900001..)."""
    return [
        soda_record(900001, "2018-02-28T23:59:59"),  # before start: out
        soda_record(900002, "2018-03-01T00:00:00"),  # == start: in
        soda_record(900003, "2018-03-01T23:59:59"),  # last second: in
        soda_record(900004, "2018-03-02T00:00:00"),  # == end: out
    ]


def make_source(server, client, **kwargs) -> SodaSource:
    return SodaSource(url=server.url, client=client, **kwargs)


@pytest.fixture(autouse=True)
def no_token(monkeypatch):
    """Tests start without a token in the environment, whatever the developer's shell has."""
    monkeypatch.delenv("SUPERDAN_SODA_APP_TOKEN", raising=False)


# -- paging and ranges -----------------------------------------------------------------------


def test_pages_return_every_row_in_range_exactly_once(soda_server, fast_client):
    soda_server.set_records(day_records(2343) + boundary_records())
    progress: list[str] = []

    frame = make_source(soda_server, fast_client, page_size=500).fetch(START, END, progress.append)

    expected_ids = {str(i) for i in range(1, 2344)} | {"900002", "900003"}
    assert len(frame) == 2345
    assert set(frame["id"]) == expected_ids
    assert frame["id"].is_unique
    assert frame["date"].min() == START and frame["date"].max() < END
    offsets = [int(r.params["$offset"]) for r in soda_server.requests]
    assert offsets == [0, 500, 1000, 1500, 2000]
    first = soda_server.requests[0].params
    assert first["$where"] == "date >= '2018-03-01T00:00:00' AND date < '2018-03-02T00:00:00'"
    assert first["$order"] == "date,id"
    assert first["$limit"] == "500"
    assert sum(line.startswith("SODA page") for line in progress) == 5


def test_full_last_page_is_followed_by_an_empty_page(soda_server, fast_client):
    soda_server.set_records(day_records(1000))

    frame = make_source(soda_server, fast_client, page_size=500).fetch(START, END)

    assert len(frame) == 1000
    assert [r.params["$offset"] for r in soda_server.requests] == ["0", "500", "1000"]


def test_long_range_is_split_per_month_with_progress(soda_server, fast_client):
    records = day_records(10, "2018-01-20") + day_records(10, "2018-02-10", 101)
    records += day_records(10, "2018-03-05", 201)
    soda_server.set_records(records)
    progress: list[str] = []

    frame = make_source(soda_server, fast_client).fetch(
        pd.Timestamp("2018-01-15"), pd.Timestamp("2018-03-10"), progress.append
    )

    assert len(frame) == 30
    wheres = [r.params["$where"] for r in soda_server.requests]
    assert wheres == [
        "date >= '2018-01-15T00:00:00' AND date < '2018-02-01T00:00:00'",
        "date >= '2018-02-01T00:00:00' AND date < '2018-03-01T00:00:00'",
        "date >= '2018-03-01T00:00:00' AND date < '2018-03-10T00:00:00'",
    ]
    assert [line for line in progress if line.startswith("SODA chunk")] == [
        "SODA chunk 1/3 [2018-01-15 00:00:00 .. 2018-02-01 00:00:00): 10 rows in 1 page(s)",
        "SODA chunk 2/3 [2018-02-01 00:00:00 .. 2018-03-01 00:00:00): 10 rows in 1 page(s)",
        "SODA chunk 3/3 [2018-03-01 00:00:00 .. 2018-03-10 00:00:00): 10 rows in 1 page(s)",
    ]


def test_split_range_edges():
    start, end = pd.Timestamp("2018-01-31 12:00"), pd.Timestamp("2018-02-01")
    assert split_range(start, end, "MS") == [(start, end)]
    assert split_range(end, start, "MS") == []
    assert split_range(start, end, None) == [(start, end)]


def test_where_clause_keeps_milliseconds_only_when_present():
    assert where_clause(pd.Timestamp("2018-01-01"), pd.Timestamp("2018-01-01 10:00:00.250")) == (
        "date >= '2018-01-01T00:00:00' AND date < '2018-01-01T10:00:00.250'"
    )


def test_aware_bounds_are_read_as_chicago_local_time(soda_server, fast_client):
    make_source(soda_server, fast_client).fetch(
        pd.Timestamp("2018-03-01 06:00", tz="UTC"), pd.Timestamp("2018-03-02 06:00", tz="UTC")
    )
    assert soda_server.requests[0].params["$where"].startswith("date >= '2018-03-01T00:00:00'")


def test_empty_range_is_an_empty_canonical_frame(soda_server, fast_client):
    frame = make_source(soda_server, fast_client).fetch(START, END)
    assert frame.empty
    check_canonical(frame)
    assert len(soda_server.requests) == 1


# -- conversion ------------------------------------------------------------------------------


def test_records_become_canonical_whatever_json_types_the_api_uses(soda_server, fast_client):
    soda_server.set_records(
        [
            soda_record(
                1,
                "2018-03-01T08:30:00",
                beat=111,
                district=1,
                ward=2,
                community_area=8,
                latitude=41.9,
                longitude=-87.6,
                arrest=True,
                iucr="820",
            ),
            soda_record(
                2,
                "2018-03-01T09:00:00",
                latitude=None,
                longitude=None,
                ward=None,
                arrest=None,
                computed_region_xyz="7",
            ),
        ]
    )

    frame = make_source(soda_server, fast_client).fetch(START, END)

    check_canonical(frame)
    assert isinstance(make_source(soda_server, fast_client), CrimeSource)
    one, two = frame.iloc[0], frame.iloc[1]
    assert (one["beat"], one["district"], one["ward"], one["community_area"]) == (
        "0111",
        "001",
        "02",
        "08",
    )
    assert one["iucr"] == "0820" and bool(one["arrest"]) is True
    assert one["date"] == pd.Timestamp("2018-03-01 08:30:00")
    assert one["latitude"] == pytest.approx(41.9) and one["city"] == "chicago"
    assert pd.isna(two["latitude"]) and pd.isna(two["ward"]) and pd.isna(two["arrest"])
    assert two["updated_on"] == pd.Timestamp("2019-01-01 15:50:00")


def test_records_to_canonical_rejects_nested_values_for_scalar_fields():
    record = soda_record(1, "2018-03-01T08:30:00", latitude={"value": "41.9"})
    with pytest.raises(SchemaError, match=r"page X: record 0 has nested values .*latitude"):
        records_to_canonical([record], "page X")


def test_records_to_canonical_rejects_a_non_list_payload():
    with pytest.raises(SchemaError, match="expected a JSON list"):
        records_to_canonical({"error": True}, "page X")


# -- app token -------------------------------------------------------------------------------


def test_app_token_header_is_sent_when_the_env_var_is_set(soda_server, fast_client, monkeypatch):
    source = make_source(soda_server, fast_client)
    # Read at request time, not at construction.
    monkeypatch.setenv("SUPERDAN_SODA_APP_TOKEN", TOKEN)

    source.fetch(START, END)

    assert soda_server.requests[0].header("X-App-Token") == TOKEN
    assert TOKEN not in repr(source)


def test_app_token_header_is_absent_when_the_env_var_is_unset(soda_server, fast_client):
    make_source(soda_server, fast_client).fetch(START, END)
    assert soda_server.requests[0].header("X-App-Token") is None
    assert soda_server.requests[0].header("User-Agent").startswith("superdan/")


def test_app_token_env_name_is_configurable(soda_server, fast_client, monkeypatch):
    monkeypatch.setenv("OTHER_TOKEN_VAR", TOKEN)
    make_source(soda_server, fast_client, app_token_env="OTHER_TOKEN_VAR").fetch(START, END)
    assert soda_server.requests[0].header("X-App-Token") == TOKEN


def test_app_token_never_appears_in_errors_or_logs(soda_server, fast_client, monkeypatch, caplog):
    monkeypatch.setenv("SUPERDAN_SODA_APP_TOKEN", TOKEN)
    soda_server.fail_next("500", times=10)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(SourceError) as failure:
        make_source(soda_server, fast_client).fetch(START, END)

    assert soda_server.requests[0].header("X-App-Token") == TOKEN
    assert TOKEN not in str(failure.value)
    assert caplog.records and all(TOKEN not in r.getMessage() for r in caplog.records)


# -- faults ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["429", "500", "truncate", "invalid_json", "hang"])
def test_transient_fault_on_a_middle_page_is_retried_and_the_result_is_complete(
    soda_server, fast_client, sleeps, kind
):
    soda_server.set_records(day_records(1200))
    soda_server.fail_at_offset(500, kind, hang_seconds=3.0)

    frame = make_source(soda_server, fast_client, page_size=500).fetch(START, END)

    assert len(frame) == 1200 and frame["id"].is_unique
    assert [r.params["$offset"] for r in soda_server.requests] == ["0", "500", "500", "1000"]
    assert len(sleeps.waits) == 1


def test_several_transient_faults_in_a_row_are_retried(soda_server, fast_client, sleeps):
    soda_server.set_records(day_records(10))
    soda_server.fail_next("429", retry_after=None)
    soda_server.fail_next("500")
    soda_server.fail_next("truncate")

    frame = make_source(soda_server, fast_client).fetch(START, END)

    assert len(frame) == 10
    assert len(soda_server.requests) == 4
    assert len(sleeps.waits) == 3 and all(w <= 0.005 for w in sleeps.waits)


def test_persistent_500_fails_after_the_configured_attempts(soda_server, fast_client):
    soda_server.set_records(day_records(10))
    soda_server.fail_next("500", times=100)

    with pytest.raises(SourceError) as failure:
        make_source(soda_server, fast_client).fetch(START, END)

    message = str(failure.value)
    assert len(soda_server.requests) == 4
    assert "failed after 4 attempt(s)" in message
    assert soda_server.url in message
    assert "date >= '2018-03-01T00:00:00'" in message and "'$offset': 0" in message
    assert "HTTP 500" in message


def test_a_refused_request_fails_at_once(soda_server, fast_client):
    source = SodaSource(url=soda_server.base_url + "/resource/unknown.json", client=fast_client)
    with pytest.raises(SourceError, match=r"HTTP 404 \(not retried"):
        source.fetch(START, END)
    assert len(soda_server.requests) == 1


def test_renamed_field_mid_paging_fails_naming_the_page_and_the_change(soda_server, fast_client):
    soda_server.set_records(day_records(1200))
    soda_server.add_hook(
        lambda request: (
            soda_server.rename_field("primary_type", "primary_category")
            if request.params.get("$offset") == "500"
            else None
        )
    )

    with pytest.raises(SchemaError) as failure:
        make_source(soda_server, fast_client, page_size=500).fetch(START, END)

    message = str(failure.value)
    assert "page 2 (offset 500)" in message
    assert "lacks required key(s) ['primary_type']" in message
    assert "primary_category" in message


def test_value_of_a_changed_type_fails_naming_the_page_and_column(soda_server, fast_client):
    soda_server.set_records(
        day_records(3) + [soda_record(99, "2018-03-01T12:00:00", latitude="north side")]
    )

    with pytest.raises(
        SchemaError, match=r"page 1 \(offset 0\).*'latitude' must be numeric.*north side"
    ):
        make_source(soda_server, fast_client).fetch(START, END)


class RangeIgnoringSodaServer(FakeSodaServer):
    """A broken server that answers every query with all its records."""

    @staticmethod
    def _where(records, where):
        return records


def test_a_server_ignoring_the_range_is_an_error_not_silently_wrong_data(fast_client):
    outside = r"page 1 \(offset 0\).*2 row\(s\) outside the requested range"
    with (
        RangeIgnoringSodaServer(day_records(3) + boundary_records()) as server,
        pytest.raises(SourceError, match=outside),
    ):
        make_source(server, fast_client).fetch(START, END)


# -- data shifting while paging --------------------------------------------------------------


def test_rows_repeated_across_pages_are_deduplicated_keeping_the_last_update(
    soda_server, fast_client
):
    records = day_records(1000)
    soda_server.set_records(records)

    def shift_after_first_page(request):
        if request.params.get("$offset") != "500":
            return
        # An earlier record appears and the row at the page boundary is updated meanwhile:
        # page 2 now starts with the row already seen as the last of page 1.
        updated = dict(records[499], description="UPDATED", updated_on="2019-06-01T00:00:00.000")
        shifted = [soda_record(0, "2018-03-01T00:00:00"), *records[:499], updated, *records[500:]]
        soda_server.set_records(shifted)

    soda_server.add_hook(shift_after_first_page)
    progress: list[str] = []

    frame = make_source(soda_server, fast_client, page_size=500).fetch(START, END, progress.append)

    assert frame["id"].is_unique
    assert set(frame["id"]) == {str(i) for i in range(1, 1001)}
    boundary = frame.set_index("id").loc[records[499]["id"]]
    assert boundary["description"] == "UPDATED"
    assert any("1 id(s) were returned more than once" in line for line in progress)
