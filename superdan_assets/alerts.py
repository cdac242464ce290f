"""Alerts for failed asset checks, including WARN ones, which never fail a run.

Open-source Dagster has no built-in alert on a failed check (GUIDE section 5), and a failed
WARN check leaves its run green, so nobody would notice an unknown category or an odd volume.
This module reads the check evaluations of a finished run from the instance's event log, turns
each failed one (ERROR or WARN) into an :class:`Alert`, de-duplicates it (one alert per asset,
check and partition, remembered in a small SQLite file), and delivers it to every configured
sink: the log, a JSON-lines file, and a Slack-compatible webhook.

Why run-status sensors (SUCCESS, FAILURE and CANCELED) rather than one cursor sensor over
check events: a run status sensor is guaranteed to see every run that finishes in the code
location, including *successful* runs, which is exactly where WARN failures hide; the daemon
keeps its cursor, and a tick that raises is retried on the same run. Dagster 1.13 offers no
non-deprecated way to page through all ``ASSET_CHECK_EVALUATION`` events across runs
(``get_event_records`` is deprecated), while ``get_records_for_run`` reads one run's events
directly. The de-duplication store makes re-processing a run harmless.

The webhook URL is a secret: it is read from the environment (``SUPERDAN_ALERT_WEBHOOK_URL``
by default) at the moment of sending and never logged, stored, put in metadata or in an error
message.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from dagster import (
    AssetCheckEvaluation,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    SensorDefinition,
    run_failure_sensor,
    run_status_sensor,
)

WEBHOOK_ENV_VAR = "SUPERDAN_ALERT_WEBHOOK_URL"
STATE_DIR_ENV_VAR = "SUPERDAN_ALERT_STATE_DIR"
LOGGER_NAME = "superdan.alerts"
#: Failed expectations listed in a message (the rest are counted).
MAX_LISTED_EXPECTATIONS = 8


# -- what an alert is ----------------------------------------------------------------------


@dataclass(frozen=True)
class Alert:
    """One failed check evaluation, as people are told about it."""

    asset_key: str
    check_name: str
    partition: str | None
    severity: str  # "ERROR" | "WARN"
    description: str | None = None
    run_id: str | None = None
    failed_expectations: tuple[dict[str, Any], ...] = ()
    docs_url: str | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        """The de-duplication key: one alert per (asset, check, partition)."""
        return (self.asset_key, self.check_name, self.partition or "")

    @property
    def text(self) -> str:
        return build_alert_message(self)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"failed_expectations": list(self.failed_expectations)}


def build_alert_message(alert: Alert) -> str:
    """A short, self-contained message (Slack ``mrkdwn`` compatible, readable as plain text)."""
    icon = ":rotating_light:" if alert.severity == "ERROR" else ":warning:"
    where = f" partition {alert.partition}" if alert.partition else ""
    blocking = " (blocking: downstream assets did not run)" if alert.severity == "ERROR" else ""
    lines = [
        f"{icon} [{alert.severity}] check `{alert.check_name}` failed on `{alert.asset_key}`"
        f"{where}{blocking}"
    ]
    if alert.description:
        lines.append(alert.description)
    for failure in alert.failed_expectations[:MAX_LISTED_EXPECTATIONS]:
        name = failure.get("expectation", "?")
        count = failure.get("unexpected_count")
        unit = failure.get("unit", "rows")
        detail = f": {count} {unit}" if count is not None else ""
        values = failure.get("value_counts")
        if values:
            detail += " (" + ", ".join(f"{k} x{v}" for k, v in list(values.items())[:5]) + ")"
        lines.append(f"• {name}{detail}")
    hidden = len(alert.failed_expectations) - MAX_LISTED_EXPECTATIONS
    if hidden > 0:
        lines.append(f"• ... and {hidden} more")
    if alert.run_id:
        lines.append(f"run {alert.run_id}")
    if alert.docs_url:
        lines.append(f"Data Docs: {alert.docs_url}")
    return "\n".join(lines)


# -- sinks ---------------------------------------------------------------------------------


class AlertSinkError(RuntimeError):
    """A sink could not deliver an alert; the message never contains a secret."""


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
        log = self.logger.error if alert.severity == "ERROR" else self.logger.warning
        log(alert.text)


class JsonLinesSink:
    """Appends one JSON object per alert to a file (a durable local record of what was sent)."""

    name = "jsonl"
    _lock = threading.Lock()

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def send(self, alert: Alert) -> None:
        record = {"sent_at": dt.datetime.now(dt.UTC).isoformat(), **alert.to_dict()}
        line = json.dumps(record, default=str) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock, open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line)
        except OSError as exc:
            raise AlertSinkError(f"cannot append to {self.path}: {exc.strerror or exc}") from None


class WebhookSink:
    """POSTs ``{"text": message}`` (Slack incoming-webhook format) to the URL in ``env_var``.

    The URL is read at send time, so rotating it needs no restart, and it is never logged or
    echoed in an error. Retries connection errors, timeouts, HTTP 429 and 5xx up to
    ``attempts`` times with exponential backoff; other 4xx are not retried (the request is
    wrong, retrying will not help). Worst case per alert: ``attempts * timeout`` plus backoff.
    """

    name = "webhook"

    def __init__(
        self,
        env_var: str = WEBHOOK_ENV_VAR,
        *,
        timeout: float = 5.0,
        attempts: int = 3,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be >= 1")
        self.env_var = env_var
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self._sleep = sleep

    @property
    def configured(self) -> bool:
        return bool(os.environ.get(self.env_var))

    def send(self, alert: Alert) -> None:
        url = os.environ.get(self.env_var)
        if not url:
            raise AlertSinkError(
                f"webhook not configured: environment variable {self.env_var} is empty"
            )
        body = json.dumps({"text": alert.text}).encode("utf-8")
        last_problem = "no attempt made"
        for attempt in range(1, self.attempts + 1):
            retry, last_problem = self._post(url, body)
            if last_problem is None:
                return
            if not retry or attempt == self.attempts:
                break
            self._sleep(self.backoff * 2 ** (attempt - 1))
        raise AlertSinkError(
            f"webhook POST failed after {attempt} attempt(s): {_redact(last_problem, url)}"
        )

    def _post(self, url: str, body: bytes) -> tuple[bool, str | None]:
        """One POST: ``(retryable, problem)``; ``problem`` is None on success. Never raises."""
        try:
            request = urllib.request.Request(
                url, data=body, method="POST", headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
                return False, None
        except urllib.error.HTTPError as exc:
            # The HTTPError carries the URL (exc.url / exc.filename): use only the status.
            return exc.code == 429 or exc.code >= 500, f"HTTP {exc.code}"
        except urllib.error.URLError as exc:
            reason = exc.reason
            text = (
                type(reason).__name__ if isinstance(reason, BaseException) else "connection error"
            )
            return True, f"connection failed ({text})"
        except TimeoutError:
            return True, f"timed out after {self.timeout:g} s"
        except (ValueError, OSError) as exc:
            # ValueError: malformed URL (its message quotes the URL, so it is not repeated).
            return isinstance(exc, OSError), f"{type(exc).__name__} (check {self.env_var})"


def _redact(text: str, secret: str) -> str:
    """``text`` without ``secret`` (belt and braces: messages are built without it already)."""
    return text.replace(secret, "<redacted>") if secret else text


def default_state_dir() -> Path:
    """``$SUPERDAN_ALERT_STATE_DIR``, else ``<SUPERDAN_HOME>/alerts``."""
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


# -- de-duplication ----------------------------------------------------------------------------


class AlertLedger:
    """Remembers which (asset, check, partition) failures were alerted, in a SQLite file.

    ``claim`` is atomic (an ``INSERT OR IGNORE`` on the primary key), so two sensor ticks or
    processes racing on the same failure send it once. ``resolve`` forgets a key when its check
    passes again, so a later regression is alerted anew; ``release`` undoes a claim whose
    delivery failed everywhere, so a retry can send it.
    """

    def __init__(self, state_dir: str | os.PathLike) -> None:
        self.path = Path(state_dir) / "alerts.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS sent ("
                " asset_key TEXT NOT NULL, check_name TEXT NOT NULL, partition TEXT NOT NULL,"
                " severity TEXT, run_id TEXT, sent_at TEXT NOT NULL,"
                " PRIMARY KEY (asset_key, check_name, partition))"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def claim(self, alert: Alert) -> bool:
        """Record ``alert`` as sent; False when its key was already recorded."""
        with self._connect() as conn:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO sent VALUES (?, ?, ?, ?, ?, ?)",
                (*alert.key, alert.severity, alert.run_id, dt.datetime.now(dt.UTC).isoformat()),
            )
            return cursor.rowcount == 1

    def release(self, alert: Alert) -> None:
        self.forget(alert.key)

    def resolve(self, asset_key: str, check_name: str, partition: str | None) -> bool:
        """Forget a key because its check passed; True if something was forgotten."""
        return self.forget((asset_key, check_name, partition or ""))

    def forget(self, key: tuple[str, str, str]) -> bool:
        with self._connect() as conn:
            cursor = conn.execute(
                "DELETE FROM sent WHERE asset_key = ? AND check_name = ? AND partition = ?", key
            )
            return cursor.rowcount > 0

    def is_recorded(self, key: tuple[str, str, str]) -> bool:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT 1 FROM sent WHERE asset_key = ? AND check_name = ? AND partition = ?", key
            ).fetchone()
            return row is not None


@dataclass
class DispatchReport:
    """What happened to a batch of alerts."""

    sent: list[Alert] = field(default_factory=list)
    duplicates: list[Alert] = field(default_factory=list)
    undelivered: list[Alert] = field(default_factory=list)
    sink_errors: list[tuple[str, tuple[str, str, str], str]] = field(default_factory=list)
    resolved: list[tuple[str, str, str]] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{len(self.sent)} alert(s) sent, {len(self.duplicates)} duplicate(s) skipped, "
            f"{len(self.undelivered)} undelivered, {len(self.sink_errors)} sink error(s), "
            f"{len(self.resolved)} resolved"
        )


def dispatch_alerts(
    alerts: Iterable[Alert], sinks: Sequence[AlertSink], ledger: AlertLedger, logger=None
) -> DispatchReport:
    """Send each new alert to every sink; a failing sink never stops the others."""
    log = logger or logging.getLogger(LOGGER_NAME)
    report = DispatchReport()
    for alert in alerts:
        if not ledger.claim(alert):
            report.duplicates.append(alert)
            continue
        delivered = False
        for sink in sinks:
            try:
                sink.send(alert)
                delivered = True
            except Exception as exc:  # one broken sink must not silence the rest
                message = str(exc) if isinstance(exc, AlertSinkError) else type(exc).__name__
                report.sink_errors.append((sink.name, alert.key, message))
                log.warning(f"alert sink {sink.name!r} failed for {alert.key}: {message}")
        if delivered:
            report.sent.append(alert)
        else:
            ledger.release(alert)
            report.undelivered.append(alert)
    return report


# -- reading a run's check evaluations -------------------------------------------------------


@dataclass(frozen=True)
class CheckEvaluationRecord:
    """One ``ASSET_CHECK_EVALUATION`` event of a run, with its partition resolved."""

    asset_key: str
    check_name: str
    partition: str | None
    passed: bool
    severity: str
    description: str | None
    metadata: Mapping[str, Any]
    run_id: str


def check_evaluations_for_run(
    instance: DagsterInstance, run_id: str
) -> list[CheckEvaluationRecord]:
    """Every check evaluation of ``run_id``, from the instance's event log.

    The partition is the evaluation's own (checks with a ``partitions_def``), else the
    partition of the materialization the check targeted (found among the run's
    materializations), else the run's ``dagster/partition`` tag.
    """
    connection = instance.get_records_for_run(
        run_id,
        of_type={DagsterEventType.ASSET_CHECK_EVALUATION, DagsterEventType.ASSET_MATERIALIZATION},
    )
    records = list(connection.records)
    partition_of_storage_id = {
        r.storage_id: r.event_log_entry.dagster_event.partition
        for r in records
        if r.event_log_entry.dagster_event_type == DagsterEventType.ASSET_MATERIALIZATION
    }
    run = instance.get_run_by_id(run_id)
    run_partition = run.tags.get("dagster/partition") if run else None
    out = []
    for r in records:
        event = r.event_log_entry.dagster_event
        if event is None or event.event_type != DagsterEventType.ASSET_CHECK_EVALUATION:
            continue
        evaluation: AssetCheckEvaluation = event.asset_check_evaluation_data
        target = evaluation.target_materialization_data
        partition = evaluation.partition
        if partition is None and target is not None:
            partition = partition_of_storage_id.get(target.storage_id)
        out.append(
            CheckEvaluationRecord(
                asset_key=evaluation.asset_key.to_user_string(),
                check_name=evaluation.check_name,
                partition=partition or run_partition,
                passed=evaluation.passed,
                severity=evaluation.severity.value,
                description=evaluation.description,
                metadata=dict(evaluation.metadata),
                run_id=run_id,
            )
        )
    return out


def alerts_for_evaluations(evaluations: Iterable[CheckEvaluationRecord]) -> list[Alert]:
    """An :class:`Alert` for every failed evaluation, ERROR and WARN alike."""
    alerts = []
    for e in evaluations:
        if e.passed:
            continue
        failed = e.metadata.get("failed_expectations")
        docs = e.metadata.get("data_docs_url")
        alerts.append(
            Alert(
                asset_key=e.asset_key,
                check_name=e.check_name,
                partition=e.partition,
                severity=e.severity,
                description=e.description,
                run_id=e.run_id,
                failed_expectations=tuple(getattr(failed, "data", None) or ()),
                docs_url=getattr(docs, "url", None),
            )
        )
    return alerts


def process_run(
    instance: DagsterInstance,
    run_id: str,
    sinks: Sequence[AlertSink],
    ledger: AlertLedger,
    logger=None,
) -> DispatchReport:
    """The sensor's core: alert the run's failed checks, forget the ones that now pass."""
    evaluations = check_evaluations_for_run(instance, run_id)
    report = dispatch_alerts(alerts_for_evaluations(evaluations), sinks, ledger, logger)
    for e in evaluations:
        if e.passed and ledger.resolve(e.asset_key, e.check_name, e.partition):
            report.resolved.append((e.asset_key, e.check_name, e.partition or ""))
    return report


class AlertDeliveryError(RuntimeError):
    """Raised by the sensor when an alert reached no sink: the tick fails and is retried."""


def build_check_alert_sensors(
    *,
    state_dir: str | os.PathLike | None = None,
    sinks_factory: Callable[[Path, Any], Sequence[AlertSink]] = default_sinks,
    name_prefix: str = "check_failure_alerts",
    default_status: DefaultSensorStatus = DefaultSensorStatus.RUNNING,
    minimum_interval_seconds: int = 30,
) -> list[SensorDefinition]:
    """Run-status sensors (on SUCCESS, FAILURE and CANCELED runs) that alert failed checks.

    ``sinks_factory(state_dir, logger)`` builds the sinks per tick, so a webhook URL set in the
    environment later is picked up without a reload.
    """

    def evaluate(context):
        """``context`` is a ``RunStatusSensorContext`` (left unannotated: Dagster inspects it)."""
        state = Path(state_dir) if state_dir else default_state_dir()
        report = process_run(
            context.instance,
            context.dagster_run.run_id,
            sinks_factory(state, context.log),
            AlertLedger(state),
            context.log,
        )
        context.log.info(f"run {context.dagster_run.run_id}: {report.summary()}")
        if report.undelivered:
            raise AlertDeliveryError(
                f"{len(report.undelivered)} alert(s) reached no sink: "
                + "; ".join(f"{sink}: {err}" for sink, _, err in report.sink_errors)
            )

    common = {
        "default_status": default_status,
        "minimum_interval_seconds": minimum_interval_seconds,
    }
    on_success = run_status_sensor(
        run_status=DagsterRunStatus.SUCCESS,
        name=f"{name_prefix}_on_success",
        description="Alerts failed asset checks (WARN ones included) of successful runs.",
        **common,
    )(evaluate)
    on_failure = run_failure_sensor(
        name=f"{name_prefix}_on_failure",
        description="Alerts failed asset checks (blocking ERROR ones included) of failed runs.",
        **common,
    )(evaluate)
    on_canceled = run_status_sensor(
        run_status=DagsterRunStatus.CANCELED,
        name=f"{name_prefix}_on_canceled",
        description="Alerts failed asset checks evaluated before a run was canceled.",
        **common,
    )(evaluate)
    return [on_success, on_failure, on_canceled]
