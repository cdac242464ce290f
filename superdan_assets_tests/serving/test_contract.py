"""The endpoint contract of GUIDE section 3, status by status, over real HTTP."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pandas as pd
import pytest
import requests

from superdan_assets.ml.artifact import load_model
from superdan_assets.ml.schema import to_canonical
from superdan_assets_tests.serving.fixture_model import THRESHOLD, VERSION

INCIDENTS = [
    {
        "date": "2018-03-04T13:00:00.000",
        "block": "003XX E NORTH WATER ST",
        "location_description": "APARTMENT",
        "beat": "1834",
        "district": "018",
        "ward": "42",
        "community_area": "8",
        "latitude": 41.889497462,
        "longitude": -87.618294943,
    },
    {"date": "2018-07-01T02:30:00", "location_description": "STREET", "latitude": "41.75"},
    {"date": "2018-01-01 00:00:00"},
]


def post(server, body, content_type="application/json", **headers) -> requests.Response:
    data = json.dumps(body) if not isinstance(body, bytes | str) else body
    return requests.post(
        f"{server.url}/invocations",
        data=data,
        headers={"Content-Type": content_type, **headers},
        timeout=30,
    )


def expected_probabilities(model_dir, records) -> np.ndarray:
    """What the model says in-process, through the canonical schema converter."""
    frame = to_canonical(pd.DataFrame(records), "chicago", required=("date",))
    return load_model(model_dir).predict_proba(frame)


def assert_error(response: requests.Response, status: int, *words: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["status"] == status
    for word in words:
        assert word in body["error"], body
    return body


def test_ping_is_ok_once_the_model_is_loaded(server):
    response = requests.get(f"{server.url}/ping", timeout=5)
    assert response.status_code == 200
    assert response.json()["model_version"] == VERSION


def test_instances_object_scores_every_incident_in_order(server, model_dir):
    response = post(server, {"instances": INCIDENTS})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == VERSION
    got = np.array([p["burglary_probability"] for p in body["predictions"]])
    np.testing.assert_allclose(got, expected_probabilities(model_dir, INCIDENTS), rtol=1e-12)
    for p in body["predictions"]:
        assert p["predicted_type"] == (
            "BURGLARY" if p["burglary_probability"] >= THRESHOLD else "THEFT"
        )
    assert response.headers["x-model-version"] == VERSION


def test_bare_list_is_accepted(server):
    by_list = post(server, INCIDENTS).json()
    by_instances = post(server, {"instances": INCIDENTS}).json()
    assert by_list == by_instances


def test_unknown_fields_are_ignored_and_optional_fields_may_be_missing(server, model_dir):
    records = [
        {"date": "2018-03-04T13:00:00", "not_a_field": [1, 2], "primary_type": "BURGLARY"},
        {"date": "2018-03-04T13:00:00", "location_description": None, "latitude": ""},
    ]
    response = post(server, {"instances": records})
    assert response.status_code == 200, response.text
    got = [p["burglary_probability"] for p in response.json()["predictions"]]
    np.testing.assert_allclose(got, expected_probabilities(model_dir, records), rtol=1e-12)


def _csv(records) -> str:
    out = io.StringIO()
    fields = sorted({k for r in records for k in r})
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue()


@pytest.mark.parametrize(
    "content_type", ["text/csv", "text/csv; charset=utf-8", "TEXT/CSV;charset=UTF-8"]
)
def test_csv_with_and_without_charset(server, content_type):
    response = post(server, _csv(INCIDENTS).encode(), content_type)
    assert response.status_code == 200, response.text
    assert response.json() == post(server, {"instances": INCIDENTS}).json()


def test_accept_csv_gives_the_same_predictions_as_csv(server):
    as_json = post(server, {"instances": INCIDENTS}).json()["predictions"]
    response = post(server, {"instances": INCIDENTS}, Accept="text/csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [float(r["burglary_probability"]) for r in rows] == [
        p["burglary_probability"] for p in as_json
    ]
    assert [r["predicted_type"] for r in rows] == [p["predicted_type"] for p in as_json]


@pytest.mark.parametrize(
    "accept,expected",
    [
        ("*/*", "application/json"),
        ("text/*", "text/csv"),
        ("text/csv;q=0.5, application/json", "application/json"),
        ("", "application/json"),
    ],
)
def test_accept_negotiation(server, accept, expected):
    response = post(server, {"instances": INCIDENTS[:1]}, Accept=accept)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(expected)


@pytest.mark.parametrize(
    "body,words",
    [
        (b'{"instances": [', "not valid JSON"),
        (b'{"rows": []}', "instances"),
        (b'{"instances": {"date": "2018-01-01"}}', "list"),
        (b"[1, 2]", "row 0"),
        (b"[]", "no incidents"),
        (b'"just a string"', "list"),
        (b"[" * 40_000, "JSON"),
    ],
)
def test_malformed_json_is_400(server, body, words):
    assert_error(post(server, body), 400, words)


def test_wrong_type_names_the_row_and_field(server):
    records = [{"date": "2018-01-01T00:00:00"}, {"date": "2018-01-01T00:00:00", "latitude": "abc"}]
    body = assert_error(post(server, records), 400, "row 1", "latitude")
    assert body["details"][0] == {
        "row": 1,
        "field": "latitude",
        "message": "must be a number, got 'abc'",
    }


@pytest.mark.parametrize(
    "record,field",
    [
        ({"date": "yesterday"}, "date"),
        ({"date": "2018-01-01T00:00:00+02:00"}, "date"),
        ({"date": "3000-01-01T00:00:00"}, "date"),
        ({"date": 1514764800}, "date"),
        ({"location_description": "STREET"}, "date"),
        ({"date": "2018-01-01", "longitude": True}, "longitude"),
        ({"date": "2018-01-01", "latitude": 1e400}, "latitude"),
        ({"date": "2018-01-01", "block": {"a": 1}}, "block"),
        ({"date": "2018-01-01", "domestic": "maybe"}, "domestic"),
    ],
)
def test_bad_values_are_400_naming_the_field(server, record, field):
    body = assert_error(post(server, [record]), 400, "row 0", field)
    assert body["details"][0]["field"] == field


def test_csv_errors_name_the_row(server):
    body = b"date,latitude\n2018-01-01T00:00:00,41.8\n2018-01-01T00:00:00,north\n"
    assert_error(post(server, body, "text/csv"), 400, "row 1", "latitude")
    ragged = b"date,latitude\n2018-01-01T00:00:00,41.8,extra\n"
    assert_error(post(server, ragged, "text/csv"), 400, "row 0", "field")
    assert_error(post(server, b"date,latitude\n", "text/csv"), 400, "no incidents")
    assert_error(post(server, b"\xff\xfe\x00garbage", "text/csv"), 400, "utf-8")


@pytest.mark.parametrize("body", [b"", b"   \n"])
def test_empty_body_is_400(server, body):
    assert_error(post(server, body), 400, "empty")


def test_oversize_body_is_413(server):
    big = json.dumps([{"date": "2018-01-01T00:00:00", "block": "X" * 100}] * 1000).encode()
    assert len(big) > 0.05 * 1024 * 1024
    assert_error(post(server, big), 413, "limit")


def test_oversize_chunked_body_is_413_without_a_length(server):
    def chunks():
        for _ in range(100):
            yield b" " * 1024

    response = requests.post(
        f"{server.url}/invocations",
        data=chunks(),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert_error(response, 413, "limit")


@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "text/plain", "application/json; charset=klingon"],
)
def test_unknown_content_type_is_415(server, content_type):
    assert_error(
        post(server, b"[]", content_type),
        415,
        "Content-Type" if "klingon" not in content_type else "charset",
    )


def test_missing_content_type_is_415(server):
    response = requests.post(f"{server.url}/invocations", data=b"[]", timeout=10)
    # requests sends no Content-Type for a bytes body.
    assert_error(response, 415, "Content-Type")


@pytest.mark.parametrize("accept", ["application/xml", "image/png", "text/csv;q=0"])
def test_unsupported_accept_is_406(server, accept):
    assert_error(post(server, {"instances": INCIDENTS}, Accept=accept), 406, "accept")


def test_other_paths_and_methods_are_json_4xx(server):
    assert_error(requests.get(f"{server.url}/nope", timeout=5), 404, "no such path")
    response = requests.get(f"{server.url}/invocations", timeout=5)
    assert_error(response, 405, "not allowed")
    assert response.headers["allow"] == "POST"


def test_predictions_match_in_process_model_for_many_incidents(server, model_dir):
    from superdan_assets_tests.serving.fixture_model import training_incidents

    frame, _ = training_incidents(n=300, seed=7)
    records = [
        {"date": d.isoformat(), "location_description": p, "latitude": lat, "longitude": lon}
        for d, p, lat, lon in zip(
            frame["date"],
            frame["location_description"],
            frame["latitude"],
            frame["longitude"],
            strict=True,
        )
    ]
    response = post(server, {"instances": records})
    assert response.status_code == 200
    got = [p["burglary_probability"] for p in response.json()["predictions"]]
    np.testing.assert_allclose(got, expected_probabilities(model_dir, records), rtol=1e-12)
