"""Alerts: a real local webhook receiver, sink isolation, de-duplication, and the run sensors."""

from __future__ import annotations

import json
import logging
import threading
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
    materialize,
)

from superdan_assets.alerts import (
    WEBHOOK_ENV_VAR,
    Alert,
    AlertLedger,
    AlertSinkError,
    JsonLinesSink,
    LogSink,
    WebhookSink,
    build_alert_message,
    build_check_alert_sensors,
    check_evaluations_for_run,
    dispatch_alerts,
)
from superdan_assets.checks.dagster_results import asset_check_results, quality_check_specs
from superdan_assets.checks.outcome import ExpectationOutcome, Severity, ValidationOutcome

SECRET_PATH = "/services/T0SECRET/B0SECRET/xoxb-very-secret-token"


class Receiver:
    """A real HTTP server on 127.0.0.1 that records POSTs and answers with scripted statuses."""

    def __init__(self, statuses=(200,)):
        self.requests: list[dict] = []
        self.statuses = list(statuses)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                receiver.requests.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": self.rfile.read(length),
                    }
                )
                status = (
                    receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                )
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"error")

            def log_message(self, *args):  # keep the test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{SECRET_PATH}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def no_sleep(_seconds: float) -> None:
    pass


ALERT = Alert(
    asset_key="raw_crimes",
    check_name="raw_crimes_warn_quality",
    partition="2018-06-05",
    severity="WARN",
    description="2018-06-05: 1 of 20 warn expectations failed: primary_type_known (2 rows)",
    run_id="run-1",
    failed_expectations=(
        {
            "expectation": "primary_type_known",
            "unexpected_count": 2,
            "unit": "rows",
            "value_counts": {"DRONE NUISANCE": 2},
        },
    ),
    docs_url="file:///tmp/docs/page.html",
)


def test_message_names_the_check_partition_and_failures():
    text = build_alert_message(ALERT)
    assert "[WARN]" in text and "raw_crimes_warn_quality" in text and "2018-06-05" in text
    assert "primary_type_known: 2 rows (DRONE NUISANCE x2)" in text
    assert "file:///tmp/docs/page.html" in text


def test_webhook_posts_slack_json_and_retries_a_server_error(monkeypatch):
    with Receiver(statuses=[503, 200]) as receiver:
        monkeypatch.setenv(WEBHOOK_ENV_VAR, receiver.url)
        WebhookSink(sleep=no_sleep, timeout=2).send(ALERT)
    assert len(receiver.requests) == 2  # one retry after the 503
    request = receiver.requests[-1]
    assert request["path"] == SECRET_PATH
    assert request["headers"]["Content-Type"] == "application/json"
    assert json.loads(request["body"]) == {"text": ALERT.text}


def test_webhook_failures_are_bounded_and_never_reveal_the_url(monkeypatch, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    with Receiver(statuses=[500]) as receiver:
        monkeypatch.setenv(WEBHOOK_ENV_VAR, receiver.url)
        with pytest.raises(AlertSinkError) as failure:
            WebhookSink(sleep=no_sleep, attempts=3, timeout=2).send(ALERT)
        assert len(receiver.requests) == 3
        assert "HTTP 500" in str(failure.value)

        receiver.statuses = [400]  # a client error is not retried
        with pytest.raises(AlertSinkError):
            WebhookSink(sleep=no_sleep, attempts=3, timeout=2).send(ALERT)
        assert len(receiver.requests) == 4

        # A failing webhook does not stop the other sinks.
        jsonl = tmp_path / "alerts.jsonl"
        report = dispatch_alerts(
            [ALERT],
            [WebhookSink(sleep=no_sleep, timeout=2), JsonLinesSink(jsonl), LogSink()],
            AlertLedger(tmp_path),
        )
        url = receiver.url
    assert [a.key for a in report.sent] == [ALERT.key]
    assert report.sink_errors[0][0] == "webhook"
    assert json.loads(jsonl.read_text())["check_name"] == "raw_crimes_warn_quality"

    monkeypatch.setenv(WEBHOOK_ENV_VAR, url)  # the server is gone now: connection refused
    with pytest.raises(AlertSinkError, match="connection failed") as refused:
        WebhookSink(sleep=no_sleep, attempts=2, timeout=2).send(ALERT)

    for text in (
        str(failure.value),
        str(refused.value),
        caplog.text,
        jsonl.read_text(),
        repr(report),
    ):
        assert url not in text and "very-secret-token" not in text


def test_same_failure_twice_is_alerted_once_until_the_check_passes_again(tmp_path):
    ledger = AlertLedger(tmp_path)
    sink = JsonLinesSink(tmp_path / "alerts.jsonl")
    first = dispatch_alerts([ALERT], [sink], ledger)
    again = dispatch_alerts([ALERT], [sink], AlertLedger(tmp_path))  # a new process, same store
    assert len(first.sent) == 1 and len(again.sent) == 0 and len(again.duplicates) == 1
    assert len((tmp_path / "alerts.jsonl").read_text().splitlines()) == 1

    assert ledger.resolve("raw_crimes", "raw_crimes_warn_quality", "2018-06-05")
    regression = dispatch_alerts([ALERT], [sink], ledger)
    assert len(regression.sent) == 1


def test_undelivered_alert_is_released_for_a_retry(tmp_path, monkeypatch):
    monkeypatch.delenv(WEBHOOK_ENV_VAR, raising=False)
    ledger = AlertLedger(tmp_path)
    report = dispatch_alerts([ALERT], [WebhookSink(sleep=no_sleep)], ledger)
    assert report.undelivered == [ALERT] and "not configured" in report.sink_errors[0][2]
    assert not ledger.is_recorded(ALERT.key)


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
    tmp_path, monkeypatch, caplog
):
    caplog.set_level(logging.DEBUG)
    instance = DagsterInstance.ephemeral()
    state = tmp_path / "alerts"
    with Receiver() as receiver:
        monkeypatch.setenv(WEBHOOK_ENV_VAR, receiver.url)
        on_success, on_failure, _ = build_check_alert_sensors(state_dir=state)

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
    posted = [json.loads(r["body"])["text"] for r in receiver.requests]
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
        *(p.read_text(errors="ignore") for p in state.iterdir() if p.suffix == ".jsonl"),
    ]:
        assert url not in text and "very-secret-token" not in text


def test_default_state_dir_follows_the_environment(monkeypatch, tmp_path):
    from superdan_assets.alerts import default_state_dir

    monkeypatch.setenv("SUPERDAN_ALERT_STATE_DIR", str(tmp_path / "x"))
    assert default_state_dir() == Path(tmp_path / "x")
