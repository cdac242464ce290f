"""Where alerts go: the log, a JSON-lines file, a Slack-compatible webhook.

A sink makes exactly one delivery attempt per ``send`` and says, when it fails, whether trying
again later can help. Retrying is not a sink's job: the delivery ledger schedules the next
attempt for a later sensor tick (with backoff), so a webhook outage longer than one tick is
survived and a tick never blocks in a sleep.

The webhook URL is a secret: it is read from the environment at the moment of sending (so
rotating it needs no restart) and never logged, stored, or put in an error message.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import os
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Protocol

from superdan_assets.alerts.model import Alert

WEBHOOK_ENV_VAR = "SUPERDAN_ALERT_WEBHOOK_URL"
STATE_DIR_ENV_VAR = "SUPERDAN_ALERT_STATE_DIR"
LOGGER_NAME = "superdan.alerts"
#: Longest ``Retry-After`` honoured; a receiver asking for more is retried on the usual backoff.
MAX_RETRY_AFTER_S = 3600.0


class AlertSinkError(RuntimeError):
    """A sink could not deliver an alert; the message never contains a secret.

    ``retryable``: a later attempt may succeed (connection failure, timeout, 429, 5xx).
    ``retry_after``: seconds the receiver asked to wait (HTTP ``Retry-After``), if it did.
    """

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class AlertSink(Protocol):
    """Somewhere alerts go. ``send`` raises :class:`AlertSinkError` when it cannot deliver."""

    name: str

    def send(self, alert: Alert) -> None: ...


class LogSink:
    """Writes each alert to a logger (ERROR alerts at error level, WARN at warning level)."""

    name = "log"

    def __init__(self, logger: logging.Logger | Any | None = None) -> None:
        self.logger = logger or logging.getLogger(LOGGER_NAME)

    def send(self, alert: Alert) -> None:
        log = self.logger.error if alert.blocking else self.logger.warning
        log(alert.text)


class JsonLinesSink:
    """Appends one JSON object per alert to a file (a durable local record of what was sent)."""

    name = "jsonl"
    _lock = threading.Lock()

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def send(self, alert: Alert) -> None:
        record = {"sent_at": dt.datetime.now(dt.UTC).isoformat(), **alert.to_dict()}
        append_json_line(self.path, record)


def append_json_line(path: Path, record: dict[str, Any]) -> None:
    """Append ``record`` as one line; :class:`AlertSinkError` (retryable) when the disk refuses."""
    line = json.dumps(record, default=str) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with JsonLinesSink._lock, open(path, "a", encoding="utf-8") as fh:
            fh.write(line)
    except OSError as exc:
        raise AlertSinkError(
            f"cannot append to {path}: {exc.strerror or exc}", retryable=True
        ) from None


class WebhookSink:
    """POSTs ``{"text": message}`` (Slack incoming-webhook format) to the URL in ``env_var``.

    One attempt per call, bounded by ``timeout``. Connection errors, timeouts, HTTP 429 and
    5xx are retryable (a ``Retry-After`` is passed on); other 4xx and a missing or malformed URL
    are not (the request or the configuration is wrong: retrying will not help).
    """

    name = "webhook"

    def __init__(self, env_var: str = WEBHOOK_ENV_VAR, *, timeout: float = 5.0) -> None:
        self.env_var = env_var
        self.timeout = timeout

    @property
    def configured(self) -> bool:
        return bool(os.environ.get(self.env_var))

    def send(self, alert: Alert) -> None:
        url = os.environ.get(self.env_var)
        if not url:
            raise AlertSinkError(
                f"webhook not configured: environment variable {self.env_var} is empty",
                retryable=False,
            )
        body = json.dumps({"text": alert.text}).encode("utf-8")
        try:
            request = urllib.request.Request(
                url, data=body, method="POST", headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            # The HTTPError carries the URL (exc.url / exc.filename): use only the status.
            retryable = exc.code == 429 or exc.code >= 500
            raise AlertSinkError(
                f"HTTP {exc.code}",
                retryable=retryable,
                retry_after=_retry_after(exc.headers.get("Retry-After")) if retryable else None,
            ) from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            text = type(reason).__name__ if isinstance(reason, BaseException) else "error"
            if isinstance(reason, TimeoutError):
                text = f"timed out after {self.timeout:g} s"
            raise AlertSinkError(f"connection failed ({text})", retryable=True) from None
        except TimeoutError:
            raise AlertSinkError(f"timed out after {self.timeout:g} s", retryable=True) from None
        except OSError as exc:  # a reset while reading the answer
            raise AlertSinkError(
                f"connection failed ({type(exc).__name__})", retryable=True
            ) from None
        except ValueError:
            # A malformed URL: its message quotes the URL, so it is not repeated.
            raise AlertSinkError(
                f"the URL in {self.env_var} is malformed", retryable=False
            ) from None


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), capped; else None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_S)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    seconds = (when - dt.datetime.now(dt.UTC)).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def default_state_dir() -> Path:
    """``$SUPERDAN_ALERT_STATE_DIR``, else ``<SUPERDAN_HOME>/alerts`` (read at call time)."""
    explicit = os.environ.get(STATE_DIR_ENV_VAR)
    if explicit:
        return Path(explicit).expanduser()
    from superdan_assets.settings import project_home

    return project_home() / "alerts"


def default_sinks(state_dir: str | os.PathLike | None = None, logger=None) -> list[AlertSink]:
    """Log and JSON-lines always; the webhook when its environment variable is set."""
    state = Path(state_dir) if state_dir else default_state_dir()
    sinks: list[AlertSink] = [LogSink(logger), JsonLinesSink(state / "alerts.jsonl")]
    webhook = WebhookSink()
    if webhook.configured:
        sinks.append(webhook)
    return sinks
