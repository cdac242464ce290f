"""Property: whatever a client sends to /invocations, the answer is never a 5xx.

The model behind the server is the real trained pipeline (``real_model``), so hostile values
reach the real feature code; every property runs twice, directly against ``superdan serve``
and through the local endpoint's proxy (``LocalEndpoint``, as the main job leaves it running).
Arbitrary bytes, arbitrary JSON documents, incidents whose every field holds long, unicode,
control-character, extreme-number or wrong-type values, CSV, bodies just under and over the
size limit, slow and truncated bodies and many rows. A 200 must carry one finite probability
per incident; anything else must be a 4xx with a JSON body. Afterwards the server and the
proxy are still up, and ``/metrics`` counted exactly the 4xx the clients saw.
"""

from __future__ import annotations

import json
import math
import re
import socket
import time
from collections import Counter
from urllib.parse import urlparse

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from superdan_assets.deploy.proxy_control import ProxyControl
from superdan_assets.deploy.state import StateStore
from superdan_assets.ml.schema import CANONICAL_DTYPES, STRING
from superdan_assets.serving.incidents import INPUT_FIELDS
from superdan_assets_tests.serving.conftest import REAL_MAX_PAYLOAD_BYTES

pytestmark = pytest.mark.slow

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
        "application/json; charset=base64",
        "text/csv; charset=unicode_escape",
        "application/json; charset=idna",
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
LONE_SURROGATES = st.sampled_from(["\ud800", "\udfff", "a\udc80b", "\udbff\udbff"])
CONTROL_TEXT = st.text(alphabet=st.characters(max_codepoint=0x1F), max_size=50)
#: Long values: repeated characters up to a few thousand, masked blocks with huge numbers.
LONG_TEXT = st.builds(lambda c, n: c * n, st.characters(), st.integers(300, 5000))
HOSTILE_BLOCKS = st.builds(
    lambda digits, mask, street: f"{digits}{mask} {street}",
    st.sampled_from(["", "0", "045", "9" * 400, "9" * 5000, "٣٣", "0" * 1000]),
    st.sampled_from(["X", "XX", "X" * 400, "X" * 5000]),
    st.sampled_from(["S STATE ST", "N", "😀 ST", "\x00", "S " * 300]),
)
EXTREME_NUMBERS = st.sampled_from(
    [
        1e308,
        -1e308,
        5e-324,
        2**63,
        -(2**63) - 1,
        10**300,
        math.inf,
        -math.inf,
        math.nan,
        -0.0,
        90.0000001,
        "1e309",
        "-1e-400",
        "NaN",
        "Infinity",
        "0x10",
        "1_000",
        " 41.88 ",
    ]
)
TEXT = (
    st.text(max_size=30)
    | LONE_SURROGATES
    | CONTROL_TEXT
    | LONG_TEXT
    | HOSTILE_BLOCKS
    | st.builds(lambda a, b: a + b, st.text(max_size=5), LONE_SURROGATES)
)
DATES = st.datetimes(
    min_value=__import__("datetime").datetime(1677, 9, 22),
    max_value=__import__("datetime").datetime(2262, 4, 11),
).map(lambda d: d.isoformat()) | st.sampled_from(
    [
        "2018-03-04T13:00:00",
        "2018-02-30",
        "0001-01-01",
        "9999-12-31T23:59:59",
        "2018-03-04T13:00:00+01:00",
        "03/04/2018 01:00:00 PM",
        "13/45/2018 99:00:00 PM",
        "",
        " ",
    ]
)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | EXTREME_NUMBERS | TEXT | DATES
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = st.sampled_from([*INPUT_FIELDS, "city", "year", "location", "x"])
#: Mostly a valid ``date`` (so the incident reaches the model), hostile values everywhere else.
INCIDENT = st.builds(
    lambda date, rest: {"date": date, **rest} if date is not None else rest,
    st.one_of(st.just("2018-03-04T13:00:00"), DATES, st.none()),
    st.dictionaries(FIELDS, SCALARS | JSON_VALUES, max_size=len(INPUT_FIELDS)),
)
#: Every input field, each with a value of its own type but hostile content: what gets past
#: validation and into the features (text fields as text, coordinates as numbers).
REACHING = st.fixed_dictionaries(
    {"date": DATES},
    optional={
        **{name: TEXT for name in INPUT_FIELDS if name not in ("date", "latitude", "longitude")},
        "latitude": st.floats(-90, 90) | EXTREME_NUMBERS,
        "longitude": st.floats(-180, 180) | EXTREME_NUMBERS,
        "domestic": st.sampled_from([True, False, "true", "N", "0", 1, 0.0, "maybe"]),
    },
)


@pytest.fixture(scope="module", params=["direct", "proxy"])
def target(request):
    """The URL of the real-model server, directly or through the local endpoint's proxy."""
    if request.param == "direct":
        return request.getfixturevalue("real_server").url
    return request.getfixturevalue("real_endpoint").url


#: Statuses the clients saw, per target URL (compared with ``/metrics`` at the end).
SEEN: Counter[tuple[str, int]] = Counter()


def client_errors(url: str) -> tuple[float, float]:
    """``superdan_request_errors_total`` (client, server) from the server's ``/metrics``."""
    text = requests.get(f"{url}/metrics", timeout=30).text
    found = dict(re.findall(r'superdan_request_errors_total\{kind="(\w+)"\} (\S+)', text))
    return float(found["client"]), float(found["server"])


def proxy_counters(running) -> Counter[str]:
    """The proxy's own counters, from its control API (as the deployer reads them)."""
    state = StateStore(running.endpoint.state_dir).load()
    return Counter(ProxyControl(state.proxy.control_port, state.token).status()["counters"])


def check(url: str, body: bytes, content_type: str, accept: str | None, rows: int | None = None):
    headers = {"Content-Type": content_type}
    if accept is not None:
        headers["Accept"] = accept
    response = requests.post(f"{url}/invocations", data=body, headers=headers, timeout=60)
    SEEN[(url, response.status_code)] += 1
    assert response.status_code < 500, (response.status_code, response.text, body[:300])
    if response.status_code != 200:
        assert response.headers["content-type"] == "application/json", response.text
        assert "error" in response.json()
    elif response.headers["content-type"].startswith("application/json"):
        predictions = response.json()["predictions"]
        if rows is not None:
            assert len(predictions) == rows
        for prediction in predictions:
            assert 0.0 <= prediction["burglary_probability"] <= 1.0
            assert prediction["predicted_type"] in ("THEFT", "BURGLARY")
    return response


@FUZZ
@given(body=st.binary(max_size=2000), content_type=CONTENT_TYPES, accept=ACCEPTS)
def test_arbitrary_bytes_never_5xx(target, body, content_type, accept):
    check(target, body, content_type, accept)


@FUZZ
@given(document=JSON_VALUES, accept=ACCEPTS)
def test_arbitrary_json_never_5xx(target, document, accept):
    check(target, json.dumps(document).encode(), "application/json", accept)


@FUZZ
@given(incidents=st.lists(INCIDENT, min_size=1, max_size=5), wrap=st.booleans(), accept=ACCEPTS)
def test_incident_shaped_json_never_5xx(target, incidents, wrap, accept):
    document = {"instances": incidents} if wrap else incidents
    check(target, json.dumps(document).encode(), "application/json", accept, len(incidents))


@FUZZ
@given(incidents=st.lists(REACHING, min_size=1, max_size=8))
def test_hostile_values_of_the_right_type_reach_the_model_without_a_5xx(target, incidents):
    """Lone surrogates and off-globe coordinates are 400s; a body over the limit is a 413;
    everything else is scored."""
    body = json.dumps({"instances": incidents}).encode()
    response = check(target, body, "application/json", None)
    if len(body) > REAL_MAX_PAYLOAD_BYTES:
        assert response.status_code == 413, response.text
    elif response.status_code == 400:
        problems = " ".join(d["message"] for d in response.json().get("details", []))
        assert re.search(
            r"Unicode|degrees|number|date-time|out of range|UTC|true or false|required", problems
        )
    else:
        assert response.status_code == 200
        assert len(response.json()["predictions"]) == len(incidents)


#: The fields read as text (booleans and numbers have their own checks).
TEXT_FIELDS = [name for name in INPUT_FIELDS if CANONICAL_DTYPES[name] == STRING]


@FUZZ
@given(name=st.sampled_from(TEXT_FIELDS), value=HOSTILE_BLOCKS | TEXT, other=REACHING)
def test_one_hostile_text_field_at_a_time(target, name, value, other):
    """Each text field on its own, beside a valid date, so the value surely reaches the model."""
    incidents = [{"date": "2018-03-04T13:00:00", name: value}, other]
    body = json.dumps(incidents).encode()
    response = check(target, body, "application/json", None)
    if len(body) > REAL_MAX_PAYLOAD_BYTES:
        assert response.status_code == 413, response.text
        return
    rejected = set()
    if response.status_code != 200:
        rejected = {detail["row"] for detail in response.json().get("details", [])}
    if not any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        assert 0 not in rejected, response.text


@pytest.mark.parametrize(
    "fields,status",
    [
        ({"block": "0" * 400 + "XX S STATE ST"}, 200),
        ({"block": "1" + "X" * 400 + " S STATE ST"}, 200),
        ({"block": "9" * 5000 + "XX S STATE ST"}, 200),
        ({"block": "\ud800"}, 400),
        ({"location_description": "RESIDENCE\udfff"}, 400),
        ({"latitude": 1e308, "longitude": -87.6}, 400),
        ({"beat": "9" * 5000, "district": 10**30, "ward": -1.5}, 200),
    ],
)
def test_the_inputs_that_gave_500_before(target, fields, status):
    """Found by hand against the local endpoint (issue 12): each gave a 500."""
    body = json.dumps([{"date": "2018-03-04T13:00:00", **fields}])
    assert check(target, body.encode(), "application/json", None, rows=1).status_code == status


@FUZZ
@given(
    header=st.lists(FIELDS, min_size=1, max_size=8, unique=True),
    rows=st.lists(st.lists(st.text(max_size=20) | TEXT, min_size=1, max_size=8), max_size=5),
    charset=st.sampled_from(["utf-8", "unicode_escape", "latin-1"]),
)
def test_csv_never_5xx(target, header, rows, charset):
    def line(values):
        return ",".join('"' + v.replace('"', '""') + '"' for v in values)

    body = "\n".join([line(header), *(line(r) for r in rows)]).encode("utf-8", "surrogatepass")
    check(target, body, f"text/csv; charset={charset}", None)


def test_extreme_number_literals_and_deep_nesting_are_400(target):
    for raw in (
        b'[{"date": "2018-03-04T13:00:00", "latitude": 1' + b"0" * 5000 + b"}]",
        b'[{"date": "2018-03-04T13:00:00", "latitude": 1e999999}]',
        b'[{"date": "2018-03-04T13:00:00", "block": "\\ud800"}]',
        b"[" * 100_000 + b"]" * 100_000,
    ):
        assert check(target, raw, "application/json", None).status_code == 400


def _padded_body(size: int) -> bytes:
    """A valid JSON request of exactly ``size`` bytes (padding in an ignored field)."""
    skeleton = json.dumps({"instances": [{"date": "2018-03-04T13:00:00", "pad": ""}]})
    return skeleton.replace('"pad": ""', '"pad": "' + "x" * (size - len(skeleton)) + '"').encode()


def test_bodies_just_under_at_and_over_the_limit(target):
    limit = REAL_MAX_PAYLOAD_BYTES
    for size, status in ((limit - 1, 200), (limit, 200), (limit + 1, 413), (6 * 1024 * 1024, 413)):
        body = _padded_body(size)
        assert len(body) == size
        response = check(target, body, "application/json", None, rows=1)
        assert response.status_code == status, (size, response.text)
    assert "exceeds the limit" in response.json()["error"]


def test_many_rows_in_one_request(target):
    """As many CSV rows as fit under the limit are all scored, in order."""
    line = "2018-03-04T13:00:00,012XX S STATE ST,41.86,-87.62\n"
    rows = (REAL_MAX_PAYLOAD_BYTES - 100) // len(line)
    body = ("date,block,latitude,longitude\n" + line * rows).encode()
    response = check(target, body, "text/csv", None, rows=rows)
    assert response.status_code == 200 and rows > 4000


def _raw(url: str) -> socket.socket:
    parsed = urlparse(url)
    return socket.create_connection((parsed.hostname, parsed.port), timeout=30)


def test_slow_and_truncated_bodies_never_5xx(target):
    body = json.dumps({"instances": [{"date": "2018-03-04T13:00:00", "block": "0XX N"}]}).encode()
    head = (
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
    )
    # Slow: the body trickles in, a few bytes at a time (a paced client, not a synchronisation).
    with _raw(target) as conn:
        conn.sendall(head)
        for start in range(0, len(body), 8):
            conn.sendall(body[start : start + 8])
            time.sleep(0.01)
        answer = _read_all(conn)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]

    # Truncated: half the body, then the client stops sending. No answer, or a 4xx; never 5xx.
    with _raw(target) as conn:
        conn.sendall(head + body[: len(body) // 2])
        conn.shutdown(socket.SHUT_WR)
        answer = _read_all(conn)
    assert not answer or answer.split(b" ", 2)[1].startswith(b"4"), answer[:300]

    # Declared bigger than the limit, body never sent: refused at once from the head alone,
    # when the client waits for "100 Continue", or when the body is too large even to drop.
    waiting = head.replace(b"Connection: close", b"Expect: 100-continue\r\nConnection: close")
    for declared, head_with in ((REAL_MAX_PAYLOAD_BYTES * 10, waiting), (100 * 2**20, head)):
        with _raw(target) as conn:
            conn.sendall(head_with.replace(b"%d" % len(body), b"%d" % declared))
            answer = _read_all(conn)
        assert answer.split(b" ", 2)[1] == b"413", answer[:300]
        SEEN[(target, 413)] += 1


def _read_all(conn: socket.socket) -> bytes:
    received = b""
    try:
        while chunk := conn.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def test_zz_still_up_and_metrics_counted_every_4xx(target, request):
    """Runs last in the module for each target: nothing crashed, nothing went uncounted."""
    seen_4xx = sum(n for (url, status), n in SEEN.items() if url == target and 400 <= status < 500)
    if not seen_4xx:
        pytest.skip("nothing to compare: the fuzz tests of this module did not run before it")
    assert requests.get(f"{target}/ping", timeout=10).status_code == 200
    client, server = client_errors(target)
    assert server == 0
    proxied = "proxy" in request.node.callspec.id
    if proxied:
        # What the proxy refused itself (a body over its own limit) never reached the server.
        client += proxy_counters(request.getfixturevalue("real_endpoint"))["client_errors"]
    # Every 4xx a client saw was counted; the truncated request may add one (a 400 or 499).
    assert seen_4xx <= client <= seen_4xx + 1
    if proxied:
        endpoint = request.getfixturevalue("real_endpoint")
        status = endpoint.endpoint.status()
        assert (status.proxy_pid, status.server_pid) == (endpoint.proxy_pid, endpoint.server_pid)
        assert status.proxy_alive and status.server_alive and status.healthy
    else:
        server_process = request.getfixturevalue("real_server")
        assert server_process.process.poll() is None
        logs = server_process.logs()
        assert "replacing it" not in logs and "Traceback" not in logs, logs[-3000:]
