"""Alerts: a real local webhook receiver that fails and recovers, per-sink delivery state,
retries across sensor ticks, dead letters, de-duplication, and the sensors on real runs.

Time is a test clock passed to the sensors (``clock=``), so "the next tick, ten minutes later"
needs no sleeping; the receiver is a real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest
from dagster import (
    DagsterEventType,
    DagsterInstance,
    DailyPartitionsDefinition,
    MaterializeResult,
    asset,
    build_run_status_sensor_context,
    build_sensor_context,
    materialize,
)

from superdan_assets.alerts import (
    STATE_DIR_ENV_VAR,
    WEBHOOK_ENV_VAR,
    Alert,
    AlertKey,
    AlertSinkError,
    DeliveryLedger,
    DeliveryStatus,
    FailedExpectation,
    JsonLinesSink,
    LogSink,
    Outcome,
    RetrySchedule,
    TickReport,
    WebhookSink,
    build_alert_message,
    build_check_alert_sensors,
)
from superdan_assets.alerts.delivery import deliver_due, open_alerts
from superdan_assets.alerts.evaluations import check_evaluations_for_run
from superdan_assets.alerts.sensors import AlertDeadLetterError
from superdan_assets.checks.dagster_results import asset_check_results, quality_check_specs
from superdan_assets.checks.outcome import ExpectationOutcome, Severity, ValidationOutcome

SECRET_PATH = "/services/T0SECRET/B0SECRET/xoxb-very-secret-token"


class Receiver:
    """A real HTTP server on 127.0.0.1 that records POSTs and answers with scripted statuses.

    ``statuses`` are used in order, the last one for every later request; ``headers`` are sent
    with every answer (e.g. ``Retry-After``). Setting ``statuses`` later makes it recover.
    """

    def __init__(self, statuses=(200,), headers=None):
        self.requests: list[dict] = []
        self.statuses = list(statuses)
        self.headers = dict(headers or {})
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                with receiver._lock:
                    receiver.requests.append(
                        {
                            "path": self.path,
                            "headers": dict(self.headers),
                            "body": self.rfile.read(length),
                        }
                    )
                    many = len(receiver.statuses) > 1
                    status = receiver.statuses.pop(0) if many else receiver.statuses[0]
                self.send_response(status)
                for name, value in receiver.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"error")

            def log_message(self, *args):  # keep the test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{SECRET_PATH}"

    def texts(self) -> list[str]:
        return [json.loads(r["body"])["text"] for r in self.requests]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


class Clock:
    """The sensors' clock: starts at a fixed instant and moves only when told."""

    def __init__(self, now: float = 1_750_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


ALERT = Alert(
    asset_key="raw_crimes",
    check_name="raw_crimes_warn_quality",
    partition="2018-06-05",
    severity="WARN",
    description="2018-06-05: 1 of 20 warn expectations failed: primary_type_known (2 rows)",
    run_id="run-1",
    failed_expectations=(
        FailedExpectation.from_record(
            {
                "expectation": "primary_type_known",
                "unexpected_count": 2,
                "unit": "rows",
                "value_counts": {"DRONE NUISANCE": 2},
                "examples": [{"id": "1", "primary_type": "DRONE NUISANCE"}],
                "severity": "WARN",  # unknown keys are ignored
            }
        ),
    ),
    docs_url="file:///tmp/docs/page.html",
)
#: No jitter, short delays: 10 s, 20 s, 40 s ...; dead after the 4th failed attempt.
SCHEDULE = RetrySchedule(max_attempts=4, base_delay=10.0, max_delay=100.0, jitter=0.0)


def test_message_names_the_check_partition_and_failures():
    text = build_alert_message(ALERT)
    assert "[WARN]" in text and "raw_crimes_warn_quality" in text and "2018-06-05" in text
    assert "primary_type_known: 2 rows (DRONE NUISANCE x2)" in text
    assert "file:///tmp/docs/page.html" in text


def test_alert_survives_the_ledgers_json_round_trip():
    assert Alert.from_dict(json.loads(json.dumps(ALERT.to_dict()))) == ALERT
    assert str(ALERT.key) == "raw_crimes[2018-06-05].raw_crimes_warn_quality"


def test_webhook_posts_slack_json_once_per_send(monkeypatch):
    with Receiver(statuses=[200]) as receiver:
        monkeypatch.setenv(WEBHOOK_ENV_VAR, receiver.url)
        WebhookSink(timeout=5).send(ALERT)
    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert request["path"] == SECRET_PATH
    assert request["headers"]["Content-Type"] == "application/json"
    assert json.loads(request["body"]) == {"text": ALERT.text}


def test_webhook_errors_say_whether_retrying_helps_and_never_reveal_the_url(monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    errors = {}
    with Receiver(statuses=[503, 429, 400], headers={"Retry-After": "120"}) as receiver:
        monkeypatch.setenv(WEBHOOK_ENV_VAR, receiver.url)
        for status in ("503", "429", "400"):
            with pytest.raises(AlertSinkError) as failure:
                WebhookSink(timeout=5).send(ALERT)
            errors[status] = failure.value
        url = receiver.url
    assert [str(errors[s]) for s in errors] == ["HTTP 503", "HTTP 429", "HTTP 400"]
    assert errors["503"].retryable and errors["429"].retryable and not errors["400"].retryable
    assert errors["429"].retry_after == 120.0 and errors["400"].retry_after is None

    with pytest.raises(AlertSinkError, match="connection failed") as refused:  # server gone
        WebhookSink(timeout=5).send(ALERT)
    assert refused.value.retryable
    monkeypatch.setenv(WEBHOOK_ENV_VAR, "not a url " + SECRET_PATH)
    with pytest.raises(AlertSinkError, match="malformed") as malformed:
        WebhookSink(timeout=5).send(ALERT)
    assert not malformed.value.retryable
    monkeypatch.delenv(WEBHOOK_ENV_VAR)
    with pytest.raises(AlertSinkError, match="not configured") as unset:
        WebhookSink().send(ALERT)
    assert not unset.value.retryable

    for text in [*map(str, errors.values()), str(refused.value), str(malformed.value), caplog.text]:
        assert url not in text and "very-secret-token" not in text


def test_retry_schedule_backs_off_exponentially_with_bounded_jitter():
    import random

    plain = RetrySchedule(max_attempts=6, base_delay=60, max_delay=600, jitter=0.0)
    assert [plain.delay(n) for n in range(1, 7)] == [60, 120, 240, 480, 600, 600]
    assert plain.delay(1, retry_after=300) == 300  # a receiver's Retry-After wins when longer
    jittered = RetrySchedule(base_delay=100, max_delay=1000, jitter=0.2)
    delays = [jittered.delay(1, rng=random.Random(seed)) for seed in range(200)]
    assert 80 <= min(delays) < 90 and 110 < max(delays) <= 120  # spread, within +-20 %
    with pytest.raises(ValueError, match="max_attempts"):
        RetrySchedule(max_attempts=0)


def test_a_failing_sink_does_not_stop_the_others_and_only_it_is_retried(tmp_path, monkeypatch):
    ledger = DeliveryLedger(tmp_path)
    jsonl = tmp_path / "alerts.jsonl"
    clock = Clock()
    with Receiver(statuses=[500, 200]) as receiver:
        monkeypatch.setenv(WEBHOOK_ENV_VAR, receiver.url)
        sinks = [WebhookSink(timeout=5), JsonLinesSink(jsonl), LogSink()]
        first = TickReport()
        ids = open_alerts([ALERT], sinks, ledger, clock(), first)
        deliver_due(ledger, sinks, SCHEDULE, clock(), first, alert_ids=ids)
        assert {(o.sink, o.outcome) for o in first.outcomes} == {
            ("webhook", Outcome.RETRY_SCHEDULED),
            ("jsonl", Outcome.DELIVERED),
            ("log", Outcome.DELIVERED),
        }
        state = {d.sink: d for d in ledger.deliveries(ALERT.key)}
        assert state["webhook"].status is DeliveryStatus.PENDING
        assert state["webhook"].attempts == 1 and state["webhook"].last_error == "HTTP 500"
        assert state["webhook"].next_attempt_at == clock() + 10
        assert state["jsonl"].status is DeliveryStatus.DELIVERED

        early = TickReport()
        deliver_due(ledger, sinks, SCHEDULE, clock() + 9, early)  # not yet due
        assert early.outcomes == [] and len(receiver.requests) == 1

        clock.advance(10)
        later = TickReport()
        deliver_due(ledger, sinks, SCHEDULE, clock(), later)
        assert [(o.sink, o.outcome, o.attempts) for o in later.outcomes] == [
            ("webhook", Outcome.DELIVERED, 2)
        ]
    assert len(jsonl.read_text().splitlines()) == 1  # the file sink was not written twice
    assert receiver.texts() == [ALERT.text, ALERT.text]


def test_same_failure_twice_is_alerted_once_until_the_check_passes_again(tmp_path):
    ledger = DeliveryLedger(tmp_path)
    sink = JsonLinesSink(tmp_path / "alerts.jsonl")
    first, again = TickReport(), TickReport()
    assert open_alerts([ALERT], [sink], ledger, 1.0, first)
    assert not open_alerts([ALERT], [sink], DeliveryLedger(tmp_path), 2.0, again)  # new process
    assert first.opened == [ALERT.key] and again.duplicates == [ALERT.key]

    assert ledger.resolve(ALERT.key, 3.0) and not ledger.is_open(ALERT.key)
    regression = TickReport()
    assert open_alerts([ALERT], [sink], ledger, 4.0, regression)
    assert regression.opened == [ALERT.key]


def test_a_leased_delivery_is_not_sent_twice_and_a_dead_ticks_lease_expires(tmp_path):
    ledger = DeliveryLedger(tmp_path)
    ledger.open_alert(ALERT, ["webhook"], now=100.0)
    assert len(ledger.claim_due(100.0, lease_seconds=60)) == 1
    assert ledger.claim_due(100.0, lease_seconds=60) == []  # another tick, same moment
    assert ledger.claim_due(159.0) == []
    assert [d.sink for d in ledger.claim_due(161.0)] == ["webhook"]  # the first tick died


def test_a_ledger_of_the_earlier_format_keeps_its_alerted_keys(tmp_path):
    import sqlite3

    with sqlite3.connect(tmp_path / "alerts.sqlite") as conn:
        conn.execute(
            "CREATE TABLE sent (asset_key TEXT NOT NULL, check_name TEXT NOT NULL,"
            " partition TEXT NOT NULL, severity TEXT, run_id TEXT, sent_at TEXT NOT NULL,"
            " PRIMARY KEY (asset_key, check_name, partition))"
        )
        conn.execute("INSERT INTO sent VALUES (?, ?, ?, 'WARN', 'r', 'x')", tuple(ALERT.key))
    ledger = DeliveryLedger(tmp_path)
    assert ledger.is_open(ALERT.key)
    assert not open_alerts([ALERT], [LogSink()], ledger, 1.0, TickReport())


# -- the sensors on real Dagster runs -----------------------------------------------------------

PARTITIONS = DailyPartitionsDefinition(start_date="2018-06-01", end_date="2018-06-08")


def outcome(partition: str, *failures: ExpectationOutcome) -> ValidationOutcome:
    start = pd.Timestamp(partition)
    ok = ExpectationOutcome(
        "id_unique", Severity.ERROR, True, "expect_column_values_to_be_unique", "id"
    )
    return ValidationOutcome(
        "raw_crimes", partition, start, start + pd.Timedelta(days=1), 700, (ok, *failures)
    )


NEW_TYPE = ExpectationOutcome(
    "primary_type_known",
    Severity.WARN,
    False,
    "expect_column_values_to_be_in_set",
    "primary_type",
    unexpected_count=2,
    unexpected_percent=0.3,
    examples=[{"primary_type": "DRONE NUISANCE", "id": "1"}],
    value_counts={"DRONE NUISANCE": 2},
)
DUPLICATES = ExpectationOutcome(
    "id_unique",
    Severity.ERROR,
    False,
    "expect_column_values_to_be_unique",
    "id",
    unexpected_count=4,
)
FAILURES = {"2018-06-05": (NEW_TYPE,), "2018-06-06": (DUPLICATES,)}


@asset(name="raw_crimes", partitions_def=PARTITIONS, check_specs=quality_check_specs("raw_crimes"))
def canned_raw_crimes(context):
    failures = FAILURES.get(context.partition_key, ())
    yield MaterializeResult(
        check_results=asset_check_results(outcome(context.partition_key, *failures))
    )


def run_sensor(sensor, instance, run_id, event_type):
    run = instance.get_run_by_id(run_id)
    event = next(
        r.event_log_entry.dagster_event
        for r in instance.get_records_for_run(run_id, of_type=event_type).records
    )
    context = build_run_status_sensor_context(
        sensor_name=sensor.name, dagster_event=event, dagster_instance=instance, dagster_run=run
    )
    return sensor(context)


def test_sensors_alert_warn_failures_of_green_runs_and_blocking_failures(
    tmp_path, monkeypatch, caplog, capfd
):
    caplog.set_level(logging.DEBUG)
    instance = DagsterInstance.ephemeral()
    state = tmp_path / "alerts"
    with Receiver() as receiver:
        monkeypatch.setenv(WEBHOOK_ENV_VAR, receiver.url)
        on_success, on_failure, _, _ = build_check_alert_sensors(state_dir=state)

        green = materialize([canned_raw_crimes], partition_key="2018-06-05", instance=instance)
        assert green.success  # a WARN failure never fails the run ...
        evaluations = check_evaluations_for_run(instance, green.run_id)
        assert {(e.check_name, e.passed, e.partition) for e in evaluations} == {
            ("raw_crimes_blocking_quality", True, "2018-06-05"),
            ("raw_crimes_warn_quality", False, "2018-06-05"),
        }
        run_sensor(on_success, instance, green.run_id, DagsterEventType.RUN_SUCCESS)
        run_sensor(on_success, instance, green.run_id, DagsterEventType.RUN_SUCCESS)  # re-tick

        red = materialize(
            [canned_raw_crimes], partition_key="2018-06-06", instance=instance, raise_on_error=False
        )
        assert not red.success  # ... a blocking ERROR one does
        run_sensor(on_failure, instance, red.run_id, DagsterEventType.RUN_FAILURE)
        url = receiver.url

    lines = [json.loads(line) for line in (state / "alerts.jsonl").read_text().splitlines()]
    assert [(a["check_name"], a["severity"], a["partition"]) for a in lines] == [
        ("raw_crimes_warn_quality", "WARN", "2018-06-05"),  # ... but it is alerted, once
        ("raw_crimes_blocking_quality", "ERROR", "2018-06-06"),
    ]
    assert lines[0]["failed_expectations"][0]["value_counts"] == {"DRONE NUISANCE": 2}
    assert lines[0]["failed_expectations"][0]["examples"] == [
        {"primary_type": "DRONE NUISANCE", "id": "1"}
    ]
    posted = receiver.texts()
    assert len(posted) == 2 and "DRONE NUISANCE x2" in posted[0] and "[ERROR]" in posted[1]

    # The secret URL is nowhere: not in the event log (check metadata), logs or the files.
    stored = [
        str(r.event_log_entry.to_json())
        for run_id in (green.run_id, red.run_id)
        for r in instance.get_records_for_run(run_id).records
    ]
    for text in [
        *stored,
        caplog.text,
        capfd.readouterr().err,  # the sensors' context.log
        *(p.read_text(errors="ignore") for p in state.iterdir() if p.suffix == ".jsonl"),
    ]:
        assert url not in text and "very-secret-token" not in text


def delivery_tick(sensor, instance):
    return sensor(build_sensor_context(instance=instance, sensor_name=sensor.name))


def test_a_failing_webhook_is_retried_on_later_ticks_until_the_receiver_recovers(
    tmp_path, monkeypatch
):
    instance = DagsterInstance.ephemeral()
    clock = Clock()
    with Receiver(statuses=[500, 503]) as receiver:  # down for two attempts, then 503 ...
        monkeypatch.setenv(WEBHOOK_ENV_VAR, receiver.url)
        monkeypatch.setenv(STATE_DIR_ENV_VAR, str(tmp_path / "from-env"))
        on_success, _, _, delivery = build_check_alert_sensors(schedule=SCHEDULE, clock=clock)
        green = materialize([canned_raw_crimes], partition_key="2018-06-05", instance=instance)
        run_sensor(on_success, instance, green.run_id, DagsterEventType.RUN_SUCCESS)

        state = tmp_path / "from-env"  # the sensors follow SUPERDAN_ALERT_STATE_DIR
        ledger = DeliveryLedger(state)
        key = AlertKey("raw_crimes", "raw_crimes_warn_quality", "2018-06-05")
        assert {d.sink: d.status for d in ledger.deliveries(key)} == {
            "log": DeliveryStatus.DELIVERED,
            "jsonl": DeliveryStatus.DELIVERED,
            "webhook": DeliveryStatus.PENDING,  # the log succeeding does not count for it
        }

        skipped = delivery_tick(delivery, instance)  # not due yet: no request
        assert len(receiver.requests) == 1
        assert "1 delivery(ies) pending (webhook)" in skipped.skip_message

        clock.advance(10)
        delivery_tick(delivery, instance)  # 2nd attempt: 503, backs off to 20 s
        (webhook,) = [d for d in ledger.deliveries(key) if d.sink == "webhook"]
        assert (webhook.attempts, webhook.last_error) == (2, "HTTP 503")
        assert webhook.next_attempt_at == clock() + 20

        receiver.statuses = [200]  # ... and recovers
        clock.advance(20)
        recovered = delivery_tick(delivery, instance)
        assert "1 delivered" in recovered.skip_message and "nothing pending" in (
            recovered.skip_message
        )
        clock.advance(1000)
        delivery_tick(delivery, instance)  # nothing more is sent
    assert len(receiver.requests) == 3
    assert receiver.texts()[-1] == receiver.texts()[0]
    assert "raw_crimes_warn_quality" in receiver.texts()[-1]
    assert {d.sink: d.status for d in DeliveryLedger(state).deliveries(key)}["webhook"] is (
        DeliveryStatus.DELIVERED
    )
    assert len((state / "alerts.jsonl").read_text().splitlines()) == 1
    assert not (state / "dead_letters.jsonl").exists()


def test_after_the_last_retry_an_alert_is_dead_lettered_logged_and_fails_the_tick(
    tmp_path, monkeypatch, capfd
):
    instance = DagsterInstance.ephemeral()
    clock = Clock()
    state = tmp_path / "alerts"
    with Receiver(statuses=[500]) as receiver:  # never recovers
        monkeypatch.setenv(WEBHOOK_ENV_VAR, receiver.url)
        _, on_failure, _, delivery = build_check_alert_sensors(
            state_dir=state, schedule=SCHEDULE, clock=clock
        )
        red = materialize(
            [canned_raw_crimes], partition_key="2018-06-06", instance=instance, raise_on_error=False
        )
        run_sensor(on_failure, instance, red.run_id, DagsterEventType.RUN_FAILURE)
        for wait in (10, 20, 40):
            assert not (state / "dead_letters.jsonl").exists()
            clock.advance(wait)
            if wait < 40:
                delivery_tick(delivery, instance)
        with pytest.raises(AlertDeadLetterError) as dead:  # the tick fails: red in the UI
            delivery_tick(delivery, instance)
        url = receiver.url
    assert len(receiver.requests) == SCHEDULE.max_attempts
    message = str(dead.value)
    assert "raw_crimes[2018-06-06].raw_crimes_blocking_quality -> webhook" in message
    assert "4 attempt(s), last error: HTTP 500" in message and "dead_letters.jsonl" in message

    (record,) = [json.loads(x) for x in (state / "dead_letters.jsonl").read_text().splitlines()]
    assert (record["sink"], record["attempts"], record["last_error"]) == ("webhook", 4, "HTTP 500")
    assert record["alert"]["severity"] == "ERROR" and record["alert"]["partition"] == "2018-06-06"
    logged = capfd.readouterr().err  # the sensor's context.log (shown in the tick's log)
    assert "was NOT delivered to webhook after 4 attempt(s)" in logged

    clock.advance(10_000)
    after = delivery_tick(delivery, instance)  # reported once; nothing is retried any more
    assert "nothing pending" in after.skip_message
    assert len(receiver.requests) == SCHEDULE.max_attempts
    for text in (message, logged, (state / "dead_letters.jsonl").read_text()):
        assert url not in text and "very-secret-token" not in text


def test_a_client_error_is_dead_lettered_at_once_without_retries(tmp_path, monkeypatch):
    ledger = DeliveryLedger(tmp_path)
    with Receiver(statuses=[400]) as receiver:
        monkeypatch.setenv(WEBHOOK_ENV_VAR, receiver.url)
        report = TickReport()
        ids = open_alerts([ALERT], [WebhookSink(timeout=5)], ledger, 1.0, report)
        deliver_due(ledger, [WebhookSink(timeout=5)], SCHEDULE, 1.0, report, alert_ids=ids)
    assert [(o.outcome, o.attempts) for o in report.outcomes] == [(Outcome.DEAD_LETTERED, 1)]
    assert [d.sink for d in ledger.take_unreported_dead()] == ["webhook"]
    assert ledger.take_unreported_dead() == []  # reported once
    assert len(receiver.requests) == 1


def test_an_unreachable_webhook_costs_one_attempt_per_tick_not_one_per_alert(tmp_path, monkeypatch):
    with Receiver() as receiver:
        url = receiver.url
    monkeypatch.setenv(WEBHOOK_ENV_VAR, url)  # nothing listens there any more
    ledger = DeliveryLedger(tmp_path)
    sinks = [WebhookSink(timeout=5)]
    report = TickReport()
    alerts = [Alert("raw_crimes", "c", f"2018-06-0{i}", "WARN") for i in range(1, 4)]
    open_alerts(alerts, sinks, ledger, 1.0, report)
    deliver_due(ledger, sinks, SCHEDULE, 1.0, report)
    assert [o.outcome for o in report.outcomes] == [
        Outcome.RETRY_SCHEDULED,
        Outcome.DEFERRED,
        Outcome.DEFERRED,
    ]
    assert [d.attempts for d in ledger.deliveries()] == [1, 0, 0]
    assert "connection failed" in report.outcomes[0].error


def test_default_state_dir_follows_the_environment(monkeypatch, tmp_path):
    from superdan_assets.alerts import default_state_dir

    monkeypatch.setenv(STATE_DIR_ENV_VAR, str(tmp_path / "x"))
    assert default_state_dir() == Path(tmp_path / "x")
    monkeypatch.delenv(STATE_DIR_ENV_VAR)
    monkeypatch.setenv("SUPERDAN_HOME", str(tmp_path / "home"))
    assert default_state_dir() == (tmp_path / "home" / "alerts").resolve()


def test_a_dead_letter_requeued_after_the_fix_is_delivered(tmp_path, monkeypatch, capsys):
    from superdan_assets import cli

    ledger = DeliveryLedger(tmp_path)
    with Receiver(statuses=[400, 200]) as receiver:
        monkeypatch.setenv(WEBHOOK_ENV_VAR, receiver.url)
        report = TickReport()
        ids = open_alerts([ALERT], [WebhookSink(timeout=5)], ledger, 1.0, report)
        deliver_due(ledger, [WebhookSink(timeout=5)], SCHEDULE, 1.0, report, alert_ids=ids)
        assert [d.status for d in ledger.deliveries()] == [DeliveryStatus.DEAD]

        # The operator lists the dead letters, fixes the cause and requeues them.
        assert cli.main(["alerts", "list", "--status", "dead", "--state-dir", str(tmp_path)]) == 0
        listed = capsys.readouterr().out
        assert "dead" in listed and "webhook" in listed and "HTTP 400" in listed
        assert cli.main(["alerts", "requeue", "--sink", "log", "--state-dir", str(tmp_path)]) == 0
        assert "0 dead deliveries requeued" in capsys.readouterr().out  # only that sink
        assert cli.main(["alerts", "requeue", "--state-dir", str(tmp_path)]) == 0
        assert "1 dead delivery requeued" in capsys.readouterr().out
        (pending,) = ledger.deliveries()
        assert (pending.status, pending.attempts) == (DeliveryStatus.PENDING, 0)

        report = TickReport()
        deliver_due(ledger, [WebhookSink(timeout=5)], SCHEDULE, time.time(), report)
    assert [o.outcome for o in report.outcomes] == [Outcome.DELIVERED]
    assert [d.status for d in ledger.deliveries()] == [DeliveryStatus.DELIVERED]
    assert len(receiver.requests) == 2
