"""Delivering alerts: open them in the ledger, attempt due deliveries, dead-letter the lost.

One attempt per due (alert, sink) per tick; the outcome goes back to the ledger (delivered,
retry scheduled, or dead). A sink that fails for a transient reason is not tried again for
the rest of the tick (its other due deliveries are given back untried, not counted as
attempts), so an unreachable webhook costs one timeout per tick, not one per alert. A dead
delivery gets a record in ``dead_letters.jsonl`` beside the ledger and an ERROR log line.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from superdan_assets.alerts.ledger import Delivery, DeliveryLedger, DeliveryStatus, RetrySchedule
from superdan_assets.alerts.model import Alert, AlertKey
from superdan_assets.alerts.sinks import LOGGER_NAME, AlertSink, AlertSinkError, append_json_line

DEAD_LETTER_FILE = "dead_letters.jsonl"


class Outcome(StrEnum):
    DELIVERED = "delivered"
    RETRY_SCHEDULED = "retry scheduled"
    DEAD_LETTERED = "dead-lettered"
    DEFERRED = "deferred"  # not attempted: the sink failed earlier in this tick


@dataclass(frozen=True)
class DeliveryOutcome:
    """What one tick did with one (alert, sink) delivery."""

    key: AlertKey
    sink: str
    outcome: Outcome
    attempts: int
    error: str | None = None
    next_attempt_at: float | None = None

    def describe(self) -> str:
        text = f"{self.key} -> {self.sink}: {self.outcome.value}"
        if self.error:
            text += f" after attempt {self.attempts} ({self.error})"
        if self.next_attempt_at is not None and self.outcome is Outcome.RETRY_SCHEDULED:
            when = dt.datetime.fromtimestamp(self.next_attempt_at, dt.UTC)
            text += f", next attempt at {when:%Y-%m-%d %H:%M:%S} UTC"
        return text


@dataclass
class TickReport:
    """What one sensor tick did: alerts opened, duplicates, resolved keys, delivery outcomes."""

    opened: list[AlertKey] = field(default_factory=list)
    duplicates: list[AlertKey] = field(default_factory=list)
    resolved: list[AlertKey] = field(default_factory=list)
    outcomes: list[DeliveryOutcome] = field(default_factory=list)

    def of(self, outcome: Outcome) -> list[DeliveryOutcome]:
        return [o for o in self.outcomes if o.outcome is outcome]

    @property
    def delivered(self) -> list[DeliveryOutcome]:
        return self.of(Outcome.DELIVERED)

    @property
    def retrying(self) -> list[DeliveryOutcome]:
        return self.of(Outcome.RETRY_SCHEDULED)

    @property
    def dead(self) -> list[DeliveryOutcome]:
        return self.of(Outcome.DEAD_LETTERED)

    def summary(self) -> str:
        return (
            f"{len(self.opened)} new alert(s), {len(self.duplicates)} duplicate(s) skipped, "
            f"{len(self.resolved)} resolved; {self.delivery_summary()}"
        )

    def delivery_summary(self) -> str:
        return (
            f"deliveries: {len(self.delivered)} delivered, {len(self.retrying)} retry "
            f"scheduled, {len(self.of(Outcome.DEFERRED))} deferred, {len(self.dead)} dead-lettered"
        )


def open_alerts(
    alerts: Iterable[Alert],
    sinks: Sequence[AlertSink],
    ledger: DeliveryLedger,
    now: float,
    report: TickReport,
) -> list[int]:
    """Open each new alert with one pending delivery per sink; returns the new alert ids."""
    ids = []
    for alert in alerts:
        alert_id = ledger.open_alert(alert, [s.name for s in sinks], now)
        if alert_id is None:
            report.duplicates.append(alert.key)
        else:
            report.opened.append(alert.key)
            ids.append(alert_id)
    return ids


def deliver_due(
    ledger: DeliveryLedger,
    sinks: Sequence[AlertSink],
    schedule: RetrySchedule,
    now: float,
    report: TickReport,
    *,
    alert_ids: Iterable[int] | None = None,
    logger=None,
    rng: random.Random | None = None,
) -> None:
    """Attempt every delivery due at ``now`` (of ``alert_ids`` only, when given)."""
    log = logger or logging.getLogger(LOGGER_NAME)
    by_name = {sink.name: sink for sink in sinks}
    unavailable: set[str] = set()
    for delivery in ledger.claim_due(now, alert_ids=alert_ids):
        if delivery.sink in unavailable:
            ledger.release(delivery)
            report.outcomes.append(
                DeliveryOutcome(delivery.key, delivery.sink, Outcome.DEFERRED, delivery.attempts)
            )
            continue
        sink = by_name.get(delivery.sink)
        try:
            if sink is None:
                raise AlertSinkError(
                    f"sink {delivery.sink!r} is no longer configured", retryable=False
                )
            sink.send(delivery.alert)
        except Exception as exc:  # one broken sink must not silence the rest
            if isinstance(exc, AlertSinkError):
                message, retryable, after = str(exc), exc.retryable, exc.retry_after
            else:  # an unexpected error: its type only (its text might hold a secret)
                message, retryable, after = f"unexpected {type(exc).__name__}", True, None
            updated = ledger.mark_failed(
                delivery,
                message,
                retryable=retryable,
                now=now,
                schedule=schedule,
                retry_after=after,
                rng=rng,
            )
            if updated.status is DeliveryStatus.DEAD:
                _dead_letter(ledger.state_dir, updated, now, log)
                outcome = Outcome.DEAD_LETTERED
            else:
                unavailable.add(delivery.sink)
                outcome = Outcome.RETRY_SCHEDULED
                log.warning(
                    f"alert {delivery.key} -> {delivery.sink}: attempt {updated.attempts} of "
                    f"{schedule.max_attempts} failed ({message}); retrying on a later tick"
                )
            report.outcomes.append(
                DeliveryOutcome(
                    delivery.key,
                    delivery.sink,
                    outcome,
                    updated.attempts,
                    message,
                    updated.next_attempt_at,
                )
            )
            continue
        updated = ledger.mark_delivered(delivery, now)
        report.outcomes.append(
            DeliveryOutcome(delivery.key, delivery.sink, Outcome.DELIVERED, updated.attempts)
        )


def _dead_letter(state_dir: Path, delivery: Delivery, now: float, log) -> None:
    """Write the dead-letter record and say so at ERROR level (the record holds the alert)."""
    path = state_dir / DEAD_LETTER_FILE
    record = {
        "dead_at": dt.datetime.fromtimestamp(now, dt.UTC).isoformat(),
        "sink": delivery.sink,
        "attempts": delivery.attempts,
        "last_error": delivery.last_error,
        "alert": delivery.alert.to_dict(),
    }
    try:
        append_json_line(path, record)
        where = f"recorded in {path}"
    except AlertSinkError as exc:  # the ledger still holds it as dead
        where = f"and the dead-letter file could not be written: {exc}"
    log.error(
        f"alert {delivery.key} was NOT delivered to {delivery.sink} after "
        f"{delivery.attempts} attempt(s) ({delivery.last_error}); dead-lettered, {where}"
    )
