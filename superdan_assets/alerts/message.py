"""The text people read: short, self-contained, Slack ``mrkdwn`` compatible, plain-text readable."""

from __future__ import annotations

from superdan_assets.alerts.model import Alert, FailedExpectation

#: Failed expectations listed in a message (the rest are counted).
MAX_LISTED_EXPECTATIONS = 8
#: Unexpected values listed per expectation.
MAX_LISTED_VALUES = 5


def build_alert_message(alert: Alert) -> str:
    """Headline (severity, check, asset, partition), description, failures, run, Data Docs."""
    icon = ":rotating_light:" if alert.blocking else ":warning:"
    where = f" partition {alert.partition}" if alert.partition else ""
    blocking = " (blocking: downstream assets did not run)" if alert.blocking else ""
    lines = [
        f"{icon} [{alert.severity}] check `{alert.check_name}` failed on `{alert.asset_key}`"
        f"{where}{blocking}"
    ]
    if alert.description:
        lines.append(alert.description)
    lines += [f"• {_failure_line(f)}" for f in alert.failed_expectations[:MAX_LISTED_EXPECTATIONS]]
    hidden = len(alert.failed_expectations) - MAX_LISTED_EXPECTATIONS
    if hidden > 0:
        lines.append(f"• ... and {hidden} more")
    if alert.run_id:
        lines.append(f"run {alert.run_id}")
    if alert.docs_url:
        lines.append(f"Data Docs: {alert.docs_url}")
    return "\n".join(lines)


def _failure_line(failure: FailedExpectation) -> str:
    day = f"{failure.partition} " if failure.partition else ""
    detail = (
        f": {failure.unexpected_count} {failure.unit}"
        if failure.unexpected_count is not None
        else ""
    )
    if failure.value_counts:
        shown = list(failure.value_counts.items())[:MAX_LISTED_VALUES]
        detail += " (" + ", ".join(f"{k} x{v}" for k, v in shown) + ")"
    return f"{day}{failure.expectation}{detail}"
