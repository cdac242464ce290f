"""Alerts for failed asset checks, including WARN ones, which never fail a run; never lost.

Open-source Dagster has no built-in alert on a failed check (GUIDE section 5), and a failed
WARN check leaves its run green, so nobody would notice an unknown category or an odd volume.
One module per job:

* :mod:`.model`: what an alert is (typed);
* :mod:`.message`: the text people read;
* :mod:`.sinks`: where alerts go (log, JSON lines, webhook), one attempt per send;
* :mod:`.ledger`: open alerts and each one's delivery state per sink, in SQLite;
* :mod:`.delivery`: attempting due deliveries, retry scheduling, dead letters;
* :mod:`.evaluations`: a finished run's check evaluations, from the event log;
* :mod:`.sensors`: the Dagster sensors that tie these together.

Only :mod:`.evaluations` and :mod:`.sensors` import Dagster.
"""

from superdan_assets.alerts.delivery import DeliveryOutcome, Outcome, TickReport
from superdan_assets.alerts.ledger import Delivery, DeliveryLedger, DeliveryStatus, RetrySchedule
from superdan_assets.alerts.message import build_alert_message
from superdan_assets.alerts.model import Alert, AlertKey, FailedExpectation
from superdan_assets.alerts.sensors import build_check_alert_sensors
from superdan_assets.alerts.sinks import (
    STATE_DIR_ENV_VAR,
    WEBHOOK_ENV_VAR,
    AlertSink,
    AlertSinkError,
    JsonLinesSink,
    LogSink,
    WebhookSink,
    default_sinks,
    default_state_dir,
)

__all__ = [
    "STATE_DIR_ENV_VAR",
    "WEBHOOK_ENV_VAR",
    "Alert",
    "AlertKey",
    "AlertSink",
    "AlertSinkError",
    "Delivery",
    "DeliveryLedger",
    "DeliveryOutcome",
    "DeliveryStatus",
    "FailedExpectation",
    "JsonLinesSink",
    "LogSink",
    "Outcome",
    "RetrySchedule",
    "TickReport",
    "WebhookSink",
    "build_alert_message",
    "build_check_alert_sensors",
    "default_sinks",
    "default_state_dir",
]
