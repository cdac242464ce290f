"""Property: whatever a client sends to /invocations, the answer is never a 5xx.

Arbitrary bytes, arbitrary JSON documents and JSON/CSV incidents with hostile values go to the
real server over HTTP with a spread of Content-Type and Accept headers. A 200 must carry one
prediction per incident; anything else must be a 4xx with a JSON body.
"""

from __future__ import annotations

import json

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from superdan_assets.ml.schema import CANONICAL_COLUMNS

FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "text/csv",
        "text/csv; charset=utf-8",
        "text/csv; charset=latin-1",
        "text/plain",
        "",
        "*/*",
        "application/json; charset=nope",
        "multipart/form-data; boundary=x",
    ]
)
ACCEPTS = st.sampled_from(
    [
        None,
        "application/json",
        "text/csv",
        "*/*",
        "text/html",
        "application/json;q=abc",
        ",,,",
        "text/csv;q=0.1, */*;q=0.2",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(
        [
            "2018-03-04T13:00:00",
            "2018-02-30",
            "0001-01-01",
            "NaN",
            "1e309",
            "03/04/2018 01:00:00 PM",
            "",
            " ",
            "\x00",
            "9" * 5000,
        ]
    )
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = st.sampled_from([*CANONICAL_COLUMNS, "year", "location", "x"])
INCIDENT = st.dictionaries(FIELDS, SCALARS | JSON_VALUES, max_size=8)


def check(server, body: bytes, content_type: str, accept: str | None) -> requests.Response:
    headers = {"Content-Type": content_type}
    if accept is not None:
        headers["Accept"] = accept
    response = requests.post(f"{server.url}/invocations", data=body, headers=headers, timeout=30)
    assert response.status_code < 500, (response.status_code, response.text, body[:200])
    if response.status_code != 200:
        assert response.headers["content-type"] == "application/json"
        assert "error" in response.json()
    return response


@FUZZ
@given(body=st.binary(max_size=2000), content_type=CONTENT_TYPES, accept=ACCEPTS)
def test_arbitrary_bytes_never_5xx(server, body, content_type, accept):
    check(server, body, content_type, accept)


@FUZZ
@given(document=JSON_VALUES, accept=ACCEPTS)
def test_arbitrary_json_never_5xx(server, document, accept):
    check(server, json.dumps(document).encode(), "application/json", accept)


@FUZZ
@given(incidents=st.lists(INCIDENT, min_size=1, max_size=5), wrap=st.booleans(), accept=ACCEPTS)
def test_incident_shaped_json_never_5xx(server, incidents, wrap, accept):
    document = {"instances": incidents} if wrap else incidents
    response = check(server, json.dumps(document).encode(), "application/json", accept)
    if response.status_code == 200 and accept in (None, "application/json"):
        assert len(response.json()["predictions"]) == len(incidents)


@FUZZ
@given(
    header=st.lists(FIELDS, min_size=1, max_size=6, unique=True),
    rows=st.lists(st.lists(st.text(max_size=20), min_size=1, max_size=6), max_size=5),
)
def test_csv_never_5xx(server, header, rows):
    def line(values):
        return ",".join('"' + v.replace('"', '""') + '"' for v in values)

    body = "\n".join([line(header), *(line(r) for r in rows)]).encode("utf-8", "surrogatepass")
    check(server, body, "text/csv", None)
