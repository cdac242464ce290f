"""The Dagster sensors: alert the failed checks of every finished run, and retry deliveries.

* Three run-status sensors (SUCCESS, FAILURE, CANCELED runs) open an alert for each failed
  check evaluation of the run (ERROR and WARN alike: a WARN failure leaves the run green, so
  nobody would notice it otherwise), close the open alerts whose check now passes, and make
  each new alert's first delivery attempt at once.
* ``<prefix>_delivery``, a plain sensor ticking every ``retry_interval_seconds``, attempts the
  deliveries whose retry is due (a run-status sensor only runs when a run finishes, so it
  cannot retry on its own). This is where a person sees delivery trouble in the UI
  (*Automation* > the sensor > its ticks): a tick that dead-letters an alert **fails**, with
  the alert, the sink, the attempts and the last error as its error message; a tick with
  retries pending is skipped with a message saying how many and when the next is due.

A run-status tick never raises for a delivery problem: the ledger holds the delivery and the
retry sensor owns it, so a failing webhook cannot make Dagster re-process runs.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    SensorDefinition,
    SkipReason,
    run_failure_sensor,
    run_status_sensor,
    sensor,
)

from superdan_assets.alerts.delivery import TickReport, deliver_due, open_alerts
from superdan_assets.alerts.evaluations import alerts_for_evaluations, check_evaluations_for_run
from superdan_assets.alerts.ledger import Delivery, DeliveryLedger, RetrySchedule
from superdan_assets.alerts.sinks import AlertSink, default_sinks, default_state_dir

#: Dead letters listed in a failed tick's message (the rest are counted).
MAX_LISTED_DEAD = 5


class AlertDeadLetterError(RuntimeError):
    """Raised by the delivery sensor's tick to show dead-lettered alerts in the UI."""


def process_run(
    instance: DagsterInstance,
    run_id: str,
    sinks: Sequence[AlertSink],
    ledger: DeliveryLedger,
    schedule: RetrySchedule,
    *,
    now: float,
    logger=None,
    rng: random.Random | None = None,
) -> TickReport:
    """A run-status tick's work: open the run's failed checks, close the ones that pass again,
    and attempt the new alerts' first deliveries."""
    evaluations = check_evaluations_for_run(instance, run_id)
    report = TickReport()
    new_ids = open_alerts(alerts_for_evaluations(evaluations), sinks, ledger, now, report)
    for e in evaluations:
        if e.passed and ledger.resolve(e.key, now):
            report.resolved.append(e.key)
    deliver_due(ledger, sinks, schedule, now, report, alert_ids=new_ids, logger=logger, rng=rng)
    return report


def retry_due(
    sinks: Sequence[AlertSink],
    ledger: DeliveryLedger,
    schedule: RetrySchedule,
    *,
    now: float,
    logger=None,
    rng: random.Random | None = None,
) -> tuple[TickReport, list[Delivery]]:
    """The delivery sensor's work: attempt the due retries; return them and every dead letter
    not yet reported (including ones dead-lettered by a run-status tick)."""
    report = TickReport()
    deliver_due(ledger, sinks, schedule, now, report, logger=logger, rng=rng)
    return report, ledger.take_unreported_dead()


def dead_letter_message(dead: Sequence[Delivery], state_dir: Path) -> str:
    lines = [
        f"{len(dead)} alert delivery(ies) gave up and were dead-lettered to "
        f"{state_dir / 'dead_letters.jsonl'}:"
    ]
    for d in dead[:MAX_LISTED_DEAD]:
        lines.append(
            f"- [{d.alert.severity}] {d.key} -> {d.sink}: {d.attempts} attempt(s), "
            f"last error: {d.last_error}"
        )
    if len(dead) > MAX_LISTED_DEAD:
        lines.append(f"- ... and {len(dead) - MAX_LISTED_DEAD} more")
    return "\n".join(lines)


def pending_message(ledger: DeliveryLedger, report: TickReport) -> str:
    pending = ledger.pending()
    text = report.delivery_summary()
    if not pending:
        return f"{text}; nothing pending"
    due = min(d.next_attempt_at for d in pending if d.next_attempt_at is not None)
    when = dt.datetime.fromtimestamp(due, dt.UTC)
    sinks = sorted({d.sink for d in pending})
    return (
        f"{text}; {len(pending)} delivery(ies) pending ({', '.join(sinks)}), "
        f"next attempt at {when:%Y-%m-%d %H:%M:%S} UTC"
    )


def build_check_alert_sensors(
    *,
    state_dir: str | os.PathLike | None = None,
    sinks_factory: Callable[[Path, Any], Sequence[AlertSink]] = default_sinks,
    schedule: RetrySchedule | None = None,
    name_prefix: str = "check_failure_alerts",
    default_status: DefaultSensorStatus = DefaultSensorStatus.RUNNING,
    minimum_interval_seconds: int = 30,
    retry_interval_seconds: int = 60,
    clock: Callable[[], float] = time.time,
    rng: random.Random | None = None,
) -> list[SensorDefinition]:
    """The three run-status sensors and the delivery (retry) sensor, in that order.

    ``state_dir``: where the ledger, ``alerts.jsonl`` and ``dead_letters.jsonl`` live; default
    ``$SUPERDAN_ALERT_STATE_DIR``, else ``$SUPERDAN_HOME/alerts``, read at each tick.
    ``sinks_factory(state_dir, logger)`` builds the sinks per tick, so a webhook URL set in the
    environment later is picked up without a reload. ``clock`` and ``rng`` exist for tests.
    """
    schedule = schedule or RetrySchedule()

    def state() -> Path:
        return Path(state_dir) if state_dir else default_state_dir()

    def on_run(context):
        """``context`` is a ``RunStatusSensorContext`` (left unannotated: Dagster inspects it)."""
        where = state()
        report = process_run(
            context.instance,
            context.dagster_run.run_id,
            sinks_factory(where, context.log),
            DeliveryLedger(where),
            schedule,
            now=clock(),
            logger=context.log,
            rng=rng,
        )
        context.log.info(f"run {context.dagster_run.run_id}: {report.summary()}")

    def on_tick(context):
        where = state()
        ledger = DeliveryLedger(where)
        report, dead = retry_due(
            sinks_factory(where, context.log),
            ledger,
            schedule,
            now=clock(),
            logger=context.log,
            rng=rng,
        )
        if dead:
            raise AlertDeadLetterError(dead_letter_message(dead, where))
        return SkipReason(pending_message(ledger, report))

    common = {"default_status": default_status}
    run_sensors = {"minimum_interval_seconds": minimum_interval_seconds, **common}
    on_success = run_status_sensor(
        run_status=DagsterRunStatus.SUCCESS,
        name=f"{name_prefix}_on_success",
        description="Alerts failed asset checks (WARN ones included) of successful runs.",
        **run_sensors,
    )(on_run)
    on_failure = run_failure_sensor(
        name=f"{name_prefix}_on_failure",
        description="Alerts failed asset checks (blocking ERROR ones included) of failed runs.",
        **run_sensors,
    )(on_run)
    on_canceled = run_status_sensor(
        run_status=DagsterRunStatus.CANCELED,
        name=f"{name_prefix}_on_canceled",
        description="Alerts failed asset checks evaluated before a run was canceled.",
        **run_sensors,
    )(on_run)
    delivery = sensor(
        name=f"{name_prefix}_delivery",
        description=(
            "Retries alert deliveries that failed (with backoff) and fails its tick when an "
            "alert is dead-lettered; a skipped tick says what is pending."
        ),
        minimum_interval_seconds=retry_interval_seconds,
        **common,
    )(on_tick)
    return [on_success, on_failure, on_canceled, delivery]
