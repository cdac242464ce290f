"""The retrying JSON client against real local sockets: what is retried, waits, messages."""

from __future__ import annotations

import random
import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from superdan_assets.sources.base import SourceError
from superdan_assets.sources.http import (
    USER_AGENT,
    JsonHttpClient,
    RetryPolicy,
    TransientResponseError,
    parse_retry_after,
    safe_url,
)
from superdan_assets_tests.fakes import FakeHTTPServer, Response

TOKEN = "s3cr3t-token-value"


class EchoServer(FakeHTTPServer):
    """Answers ``{"params": ...}``; ``status`` param sets the HTTP status (to echo in errors)."""

    path = "/echo"

    def page_offset(self, params):
        return int(params.get("offset", "0"))

    def handle(self, params):
        return Response(int(params.get("status", "200")), {"params": params})


@pytest.fixture
def echo():
    with EchoServer() as server:
        yield server


def test_returns_decoded_json_and_sends_the_user_agent(echo, fast_client):
    assert fast_client.get_json(echo.url, {"a": "1"}) == {"params": {"a": "1"}}
    assert echo.requests[0].header("User-Agent") == USER_AGENT
    assert USER_AGENT.startswith("superdan/")


def test_retry_after_seconds_is_honoured(echo, fast_client, sleeps):
    echo.fail_next("429", retry_after="3")
    fast_client.get_json(echo.url)
    assert sleeps.waits == [3.0]


def test_retry_after_is_capped(echo, sleeps):
    echo.fail_next("429", retry_after="1000")
    policy = RetryPolicy(max_attempts=2, base_delay=0.001, timeout=1.0, max_retry_after=5.0)
    with JsonHttpClient(policy, sleep=sleeps) as client:
        client.get_json(echo.url)
    assert sleeps.waits == [5.0]


def test_retry_after_http_date_form():
    now = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(header, now=now) == pytest.approx(30.0)
    assert parse_retry_after("garbage") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("-5") == 0.0


def test_429_without_retry_after_uses_jittered_exponential_backoff(echo, sleeps):
    echo.fail_next("429", times=3, retry_after=None)
    policy = RetryPolicy(max_attempts=4, base_delay=0.002, max_delay=1.0, timeout=1.0)
    with JsonHttpClient(policy, sleep=sleeps, rng=random.Random(7)) as client:
        client.get_json(echo.url)
    assert len(sleeps.waits) == 3
    for retry, wait in enumerate(sleeps.waits, 1):
        ceiling = 0.002 * 2 ** (retry - 1)
        assert ceiling / 2 <= wait <= ceiling


def test_backoff_is_capped_and_jittered():
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0)
    rng = random.Random(1)
    waits = [policy.backoff(10, rng) for _ in range(50)]
    assert all(4.0 <= w <= 8.0 for w in waits)
    assert len(set(waits)) > 1


def test_policy_rejects_nonsense():
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="timeout"):
        RetryPolicy(timeout=-1)


@pytest.mark.parametrize(
    ("kind", "cause"),
    [
        ("500", "HTTP 500"),
        ("429", "HTTP 429"),
        ("truncate", "ChunkedEncodingError"),
        ("invalid_json", "invalid or truncated JSON body"),
        ("hang", "ReadTimeout"),
    ],
)
def test_each_transient_fault_is_retried_then_reported_with_its_cause(echo, sleeps, kind, cause):
    echo.fail_next(kind, times=2, hang_seconds=3.0)
    policy = RetryPolicy(max_attempts=2, base_delay=0.001, timeout=0.5)
    with JsonHttpClient(policy, sleep=sleeps) as client, pytest.raises(SourceError) as failure:
        client.get_json(echo.url, {"offset": 0}, what="page 1")
    message = str(failure.value)
    assert len(echo.requests) == 2
    assert f"GET {echo.url} (page 1; params {{'offset': 0}})" in message
    assert "failed after 2 attempt(s)" in message
    assert cause in message


def test_connection_refused_is_retried_then_reported(sleeps):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    policy = RetryPolicy(max_attempts=3, base_delay=0.001, timeout=1.0)
    with JsonHttpClient(policy, sleep=sleeps) as client, pytest.raises(SourceError) as failure:
        client.get_json(f"http://127.0.0.1:{port}/x")
    assert "failed after 3 attempt(s)" in str(failure.value)
    assert "ConnectionError" in str(failure.value)
    assert len(sleeps.waits) == 2


def test_client_errors_are_not_retried(echo, fast_client):
    with pytest.raises(SourceError, match=r"HTTP 403 \(not retried"):
        fast_client.get_json(echo.url, {"status": "403"})
    assert len(echo.requests) == 1


def test_secrets_never_reach_the_message(echo, fast_client):
    # The server echoes the parameters back in its error body; the token sent as a header
    # and as a secret-looking parameter must both be scrubbed.
    with pytest.raises(SourceError) as failure:
        fast_client.get_json(
            echo.url,
            {"status": "400", "$$app_token": TOKEN, "echo": TOKEN},
            headers={"X-App-Token": TOKEN},
        )
    assert TOKEN not in str(failure.value)
    assert "***" in str(failure.value)
    assert echo.requests[0].header("X-App-Token") == TOKEN


def test_safe_url_drops_user_info_and_secret_query_values():
    url = "https://user:pw@example.org:8443/resource/x.json?$$app_token=abc&$limit=5"
    assert safe_url(url) == "https://example.org:8443/resource/x.json?$$app_token=***&$limit=5"


def test_check_callback_can_retry_or_fail(echo, fast_client, sleeps):
    answers = iter([TransientResponseError("busy"), None])

    def flaky(payload):
        error = next(answers)
        if error:
            raise error

    assert fast_client.get_json(echo.url, check=flaky) == {"params": {}}
    assert len(echo.requests) == 2 and len(sleeps.waits) == 1

    def refuse(payload):
        raise SourceError("bad query")

    with pytest.raises(SourceError, match="failed: bad query"):
        fast_client.get_json(echo.url, check=refuse)


def test_fake_rejects_unknown_fault_kinds(echo):
    with pytest.raises(ValueError, match="unknown fault kind"):
        echo.fail_next("teapot")
