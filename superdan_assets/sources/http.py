"""A small retrying ``GET -> JSON`` helper shared by the network sources.

Why our own: open-data portals throttle (429), have bad minutes (5xx, resets, stalls) and
sometimes cut a large response short. A daily partition must either get *complete* data or
fail loudly, so every request is retried with exponential backoff plus jitter (so many
partitions of a backfill do not retry in lock-step), honouring the server's ``Retry-After``
up to a cap, and a body that is not valid JSON counts as a failed attempt rather than as data.

Why not urllib3's ``Retry`` (mounted on the session) or tenacity: ``Retry`` works at the
transport level, so it retries a 429/5xx or a stall before the headers, but not a body cut
off mid-transfer (``ChunkedEncodingError`` is raised by requests after urllib3 returned) nor a
complete body that is not valid JSON, nor an HTTP-200 error payload (ArcGIS): probed against
this project's fake server (urllib3 2.8, ``Retry(total=3, status_forcelist=(429, 5xx))``),
``truncate`` and ``invalid_json`` reached the server once and failed. It would need this loop
around it anyway, with attempts multiplying across the two layers. tenacity could run this
loop, but the Retry-After-or-jittered-backoff wait, the logging and the final message would
still be written here: no shorter, and one more dependency.

Secrets: request headers such as ``X-App-Token`` are sent but never logged, and their values
are scrubbed from every message; query parameters whose names look secret and any user
info in the URL are redacted too.
"""

from __future__ import annotations

import email.utils
import importlib.metadata
import json
import logging
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

import requests

from superdan_assets.sources.base import SourceError

logger = logging.getLogger(__name__)

#: Header names whose values are credentials (compared case-insensitively).
SECRET_HEADERS = frozenset(
    {"x-app-token", "authorization", "proxy-authorization", "cookie", "x-api-key"}
)
_SECRET_PARAM = re.compile(r"token|key|secret|password|passwd|signature|auth", re.IGNORECASE)
_BODY_EXCERPT = 200

#: Failures that say nothing about the request itself: the next attempt may well succeed.
_TRANSIENT_EXCEPTIONS = (
    requests.Timeout,
    requests.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


def _package_version() -> str:
    try:
        return importlib.metadata.version("superdan")
    except importlib.metadata.PackageNotFoundError:
        # Running from a source checkout that was not pip-installed.
        return "dev"


USER_AGENT = f"superdan/{_package_version()}"


class TransientResponseError(Exception):
    """Raised by a response check for an answer worth retrying (e.g. an ArcGIS 503 payload)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one request.

    ``timeout`` is requests' connect and per-read timeout in seconds (a stalled server counts
    as a failed attempt); the delay before retry ``n`` (1-based) is drawn uniformly from
    ``[d/2, d]`` with ``d = min(max_delay, base_delay * 2 ** (n - 1))``; a ``Retry-After`` from
    the server replaces that delay but is capped at ``max_retry_after``.
    """

    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 30.0
    timeout: float = 30.0
    max_retry_after: float = 120.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        for name in ("base_delay", "max_delay", "timeout", "max_retry_after"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    def backoff(self, retry_number: int, rng: random.Random) -> float:
        """Seconds to wait before retry ``retry_number`` (1-based): exponential, jittered."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (retry_number - 1))
        return rng.uniform(ceiling / 2, ceiling)


class _RetryableFailure(Exception):
    """One failed attempt that may be retried; ``wait`` overrides the backoff when set."""

    def __init__(self, cause: str, wait: float | None = None):
        super().__init__(cause)
        self.cause = cause
        self.wait = wait


# -- redaction -----------------------------------------------------------------------------


def safe_url(url: str) -> str:
    """``url`` without user info and with secret-looking query values replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    query = urlencode(
        [(k, "***" if _SECRET_PARAM.search(k) else v) for k, v in parse_qsl(parts.query)],
        safe="$:',=<> *",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def safe_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Query parameters with the values of secret-looking names replaced by ``***``."""
    return {k: ("***" if _SECRET_PARAM.search(k) else v) for k, v in (params or {}).items()}


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _secret_values(headers: Mapping[str, str], params: Mapping[str, Any] | None) -> list[str]:
    """Values that must never be printed: secret headers and secret-looking parameters."""
    values = [v for k, v in headers.items() if k.lower() in SECRET_HEADERS and v]
    values += [str(v) for k, v in (params or {}).items() if _SECRET_PARAM.search(k) and v]
    # Exception texts may carry the request URL, where a parameter appears URL-encoded.
    encoded = [form for v in values for form in (quote(v, safe=""), quote_plus(v))]
    return sorted({*values, *encoded}, key=len, reverse=True)


# -- response interpretation ----------------------------------------------------------------


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date); None if unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _excerpt(response: requests.Response) -> str:
    text = response.text or ""
    text = " ".join(text.split())
    return text[:_BODY_EXCERPT] + ("..." if len(text) > _BODY_EXCERPT else "")


def _decode(response: requests.Response, policy: RetryPolicy) -> Any:
    """The JSON payload of a response, raising ``_RetryableFailure``/``SourceError`` otherwise."""
    status = response.status_code
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        wait = None if retry_after is None else min(retry_after, policy.max_retry_after)
        raise _RetryableFailure(f"HTTP 429 Too Many Requests: {_excerpt(response)}", wait)
    if status >= 500:
        raise _RetryableFailure(f"HTTP {status}: {_excerpt(response)}")
    if status >= 400:
        raise SourceError(
            f"HTTP {status} (not retried: the request itself was refused): {_excerpt(response)}"
        )
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError) as exc:
        size = len(response.content)
        raise _RetryableFailure(f"invalid or truncated JSON body ({size} bytes): {exc}") from None


# -- the client -----------------------------------------------------------------------------


class JsonHttpClient:
    """GETs JSON with retries; one ``requests.Session`` (connection reuse) per client.

    ``sleep`` and ``rng`` are injectable so tests can observe the waits without waiting.
    """

    def __init__(
        self,
        policy: RetryPolicy | None = None,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ):
        self.policy = policy or RetryPolicy()
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self._sleep = sleep
        self._rng = rng or random.Random()

    def __repr__(self) -> str:
        return f"JsonHttpClient(policy={self.policy!r})"

    def close(self) -> None:
        """Release pooled connections."""
        self.session.close()

    def __enter__(self) -> JsonHttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get_json(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        check: Callable[[Any], None] | None = None,
        what: str = "request",
    ) -> Any:
        """GET ``url`` and return its decoded JSON, retrying transient failures.

        ``check(payload)`` may raise :class:`TransientResponseError` to retry a well-formed
        but failed answer (APIs that report errors with HTTP 200), or :class:`SourceError`
        to fail at once. ``what`` names the request in messages (e.g. ``"page 3"``). After
        the last attempt raises :class:`SourceError` naming the URL, the parameters, the
        attempts made and the last cause; secret header values never appear in it.
        """
        headers = dict(headers or {})
        secrets = _secret_values(headers, params)
        label = f"GET {safe_url(url)} ({what}; params {safe_params(params)})"
        last_cause = "no attempt made"
        for attempt in range(1, self.policy.max_attempts + 1):
            try:
                return self._attempt(url, params, headers, check)
            except _RetryableFailure as failure:
                last_cause = _scrub(failure.cause, secrets)
                if attempt == self.policy.max_attempts:
                    break
                wait = (
                    failure.wait
                    if failure.wait is not None
                    else self.policy.backoff(attempt, self._rng)
                )
                logger.warning(
                    "%s: attempt %d/%d failed (%s); retrying in %.2f s",
                    label,
                    attempt,
                    self.policy.max_attempts,
                    last_cause,
                    wait,
                )
                self._sleep(wait)
            except SourceError as exc:
                raise SourceError(_scrub(f"{label} failed: {exc}", secrets)) from None
        raise SourceError(
            f"{label} failed after {self.policy.max_attempts} attempt(s); last error: {last_cause}"
        )

    def _attempt(
        self,
        url: str,
        params: Mapping[str, Any] | None,
        headers: dict[str, str],
        check: Callable[[Any], None] | None,
    ) -> Any:
        try:
            response = self.session.get(
                url, params=params, headers=headers, timeout=self.policy.timeout
            )
        except _TRANSIENT_EXCEPTIONS as exc:
            raise _RetryableFailure(f"{type(exc).__name__}: {exc}") from None
        except requests.RequestException as exc:
            raise SourceError(f"{type(exc).__name__}: {exc}") from None
        payload = _decode(response, self.policy)
        if check is not None:
            try:
                check(payload)
            except TransientResponseError as exc:
                raise _RetryableFailure(str(exc)) from None
        return payload


def retrying_client(
    max_attempts: int, timeout: float, backoff: float, max_delay: float
) -> JsonHttpClient:
    """The client a city source uses when none is injected: the source's retry settings."""
    return JsonHttpClient(
        RetryPolicy(
            max_attempts=max_attempts, base_delay=backoff, max_delay=max_delay, timeout=timeout
        )
    )
