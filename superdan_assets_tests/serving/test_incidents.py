"""The endpoint's fast incident conversion agrees with the canonical schema converter."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from superdan_assets.ml.schema import CANONICAL_DTYPES, to_canonical
from superdan_assets.serving.batching import MicroBatcher
from superdan_assets.serving.incidents import (
    IncidentColumns,
    InvalidIncidents,
    columns_from_records,
    columns_from_table,
    to_frame,
)
from superdan_assets.serving.protocol import (
    ClientError,
    decode_incidents,
    request_format,
    response_format,
)
from superdan_assets.serving.settings import SettingsError, resolve_settings

CODES = st.one_of(
    st.none(), st.integers(0, 9999), st.sampled_from(["8", "008", " 18 ", "8.0", "", "1834"])
)
VALID = st.fixed_dictionaries(
    {
        "date": st.datetimes(
            min_value=pd.Timestamp("1990-01-01").to_pydatetime(),
            max_value=pd.Timestamp("2030-01-01").to_pydatetime(),
        ).map(lambda d: d.replace(microsecond=0).isoformat())
    },
    optional={
        "block": st.one_of(st.none(), st.text(max_size=12)),
        "location_description": st.sampled_from(["STREET", " APARTMENT ", "", None]),
        "beat": CODES,
        "district": CODES,
        "ward": CODES,
        "community_area": CODES,
        "latitude": st.one_of(st.none(), st.floats(-90, 90), st.sampled_from(["41.8", " ", "-87"])),
        "longitude": st.one_of(st.none(), st.floats(-180, 180)),
        "domestic": st.sampled_from([True, False, None, "true", "N", "1"]),
        "arrest": st.booleans(),
        "updated_on": st.sampled_from([None, "2018-05-01T10:00:00", ""]),
        "ignored": st.integers(),
    },
)


@settings(max_examples=80, deadline=None)
@given(records=st.lists(VALID, min_size=1, max_size=6))
def test_frame_equals_to_canonical_for_valid_input(records):
    expected = to_canonical(pd.DataFrame(records), "chicago", required=("date",))
    pd.testing.assert_frame_equal(to_frame(columns_from_records(records), "chicago"), expected)


def test_frame_has_the_canonical_dtypes_even_when_fields_are_absent():
    frame = to_frame(columns_from_records([{"date": "2018-01-01T00:00:00"}]), "chicago")
    assert {c: str(t) for c, t in frame.dtypes.items()} == {
        c: str(pd.Series(dtype=t).dtype) for c, t in CANONICAL_DTYPES.items()
    }


def test_csv_rows_convert_like_json_rows():
    header = ["date", "beat", "district", "latitude", "domestic"]
    rows = [
        ["2018-01-01T10:00:00", "811", "008", "41.8", "false"],
        ["01/02/2018 01:30:00 PM", "", "8.0", "", ""],
    ]
    got = to_frame(columns_from_table(header, rows), "chicago")
    # Codes are not zero-padded on the way in ("811" stays "811"; the model strips leading
    # zeros, so "008" and "8" are one category), only trimmed and de-floated.
    assert got["beat"].tolist()[0] == "811" and got["beat"].isna().tolist()[1]
    assert got["district"].tolist() == ["008", "8"]
    json_rows = [dict(zip(header, row, strict=True)) for row in rows]
    pd.testing.assert_frame_equal(got, to_frame(columns_from_records(json_rows), "chicago"))
    assert got["date"].tolist() == [
        pd.Timestamp("2018-01-01 10:00"),
        pd.Timestamp("2018-01-02 13:30"),
    ]


def test_errors_list_every_bad_row_up_to_a_limit():
    records = [{"date": "2018-01-01", "latitude": "x"}] * 30 + [{"date": None}]
    with pytest.raises(InvalidIncidents) as caught:
        columns_from_records(records)
    assert caught.value.count == 31
    assert len(caught.value.errors) == 20
    assert caught.value.errors[0].as_dict() == {
        "row": 0,
        "field": "latitude",
        "message": "must be a number, got 'x'",
    }


def test_concat_keeps_row_order_and_fills_fields_one_part_lacks():
    a = columns_from_records([{"date": "2018-01-01", "beat": "1"}])
    b = columns_from_records([{"date": "2018-01-02"}, {"date": "2018-01-03", "beat": "2"}])
    merged = IncidentColumns.concat([a, b])
    assert merged.rows == 3
    assert merged.columns["beat"] == ["1", None, "2"]


@pytest.mark.parametrize(
    "accept,expected",
    [
        (None, "application/json"),
        ("text/csv", "text/csv"),
        ("*/*", "application/json"),
        ("application/*", "application/json"),
        ("text/csv, application/json", "text/csv"),
        ("application/json;q=0.1, text/csv;q=0.9", "text/csv"),
    ],
)
def test_accept_negotiation(accept, expected):
    assert response_format(accept) == expected


def test_unacceptable_accept_is_406():
    with pytest.raises(ClientError) as caught:
        response_format("application/xml, text/html;q=0.9")
    assert caught.value.status == 406


def test_settings_follow_the_sagemaker_environment():
    settings_ = resolve_settings(
        env={
            "SAGEMAKER_BIND_TO_PORT": "9000",
            "SAGEMAKER_MODEL_SERVER_WORKERS": "3",
            "SAGEMAKER_MODEL_SERVER_TIMEOUT": "30",
        }
    )
    assert (settings_.port, settings_.workers, settings_.timeout_s) == (9000, 3, 30)
    assert settings_.max_payload_bytes == 5 * 1024 * 1024
    assert str(settings_.model_dir) == "/opt/ml/model"
    assert resolve_settings(port=1234, env={"SAGEMAKER_BIND_TO_PORT": "9000"}).port == 1234
    assert resolve_settings(env={"SUPERDAN_BATCH_WAIT_MS": "4"}).batch_wait_s == 0.004
    with pytest.raises(SettingsError, match="SAGEMAKER_MAX_PAYLOAD_IN_MB"):
        resolve_settings(env={"SAGEMAKER_MAX_PAYLOAD_IN_MB": "lots"})


async def _score_concurrently(batcher, parts):
    import asyncio

    return await asyncio.gather(*(batcher.score(p) for p in parts))


def test_concurrent_requests_share_one_model_call_and_get_their_own_rows():
    import asyncio

    calls = []

    def scorer(incidents):
        calls.append(incidents.rows)
        return np.arange(incidents.rows, dtype=float)

    batcher = MicroBatcher(scorer)
    parts = [columns_from_records([{"date": "2018-01-01"}] * n) for n in (1, 2, 3)]
    results = asyncio.run(_score_concurrently(batcher, parts))
    assert calls == [6]
    assert [r.tolist() for r in results] == [[0.0], [1.0, 2.0], [3.0, 4.0, 5.0]]


def test_a_request_that_breaks_the_shared_call_fails_alone():
    import asyncio

    def scorer(incidents):
        if "poison" in (incidents.columns.get("block") or []):
            raise ValueError("cannot score poison")
        return np.zeros(incidents.rows)

    batcher = MicroBatcher(scorer)
    good = columns_from_records([{"date": "2018-01-01"}])
    bad = columns_from_records([{"date": "2018-01-01", "block": "poison"}])

    async def run():
        return await asyncio.gather(
            batcher.score(good), batcher.score(bad), batcher.score(good), return_exceptions=True
        )

    first, second, third = asyncio.run(run())
    assert first.tolist() == [0.0] and third.tolist() == [0.0]
    assert isinstance(second, ValueError)


def test_lone_surrogates_and_off_globe_coordinates_are_refused_with_the_field():
    with pytest.raises(InvalidIncidents) as refused:
        columns_from_records(
            [
                {"date": "2018-03-04T13:00:00", "block": "01XX \ud800 ST"},
                {"date": "2018-03-04T13:00:00", "latitude": 90.5, "longitude": -181},
            ]
        )
    problems = {(e.row, e.field): e.message for e in refused.value.errors}
    assert "lone surrogate" in problems[(0, "block")]
    assert "between -90 and 90" in problems[(1, "latitude")]
    assert "between -180 and 180" in problems[(1, "longitude")]
    edge = columns_from_records(
        [{"date": "2018-03-04T13:00:00", "latitude": -90, "longitude": 180}]
    )
    assert (edge.columns["latitude"], edge.columns["longitude"]) == ([-90.0], [180.0])


@pytest.mark.parametrize("charset", ["base64", "zlib", "rot13", "nope"])
def test_charsets_that_are_not_text_encodings_are_415(charset):
    with pytest.raises(ClientError) as refused:
        request_format(f"application/json; charset={charset}")
    assert refused.value.status == 415


def test_a_body_its_codec_cannot_decode_is_400():
    """idna raises a plain UnicodeError, not UnicodeDecodeError: still the client's mistake."""
    kind, codec = request_format("application/json; charset=idna")
    with pytest.raises(ClientError) as refused:
        decode_incidents(b"xn--" + b"a" * 100, kind, codec)
    assert refused.value.status == 400 and "not valid idna" in refused.value.message
