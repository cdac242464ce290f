"""Dagster asset check results from :class:`ValidationOutcome` s and per-day decisions.

Two checks per asset, one per severity group:

* ``<asset>_blocking_quality``: ERROR severity, declared ``blocking=True``. Each day of a step
  is decided on its own (``checks/decide.py``): a day that failed an ERROR expectation is
  quarantined, never written. The check fails, and so stops downstream assets, only when no
  day of the step was good; otherwise it passes and lists the quarantined days and why.
  Stored partitions therefore passed by construction: training reads them as they are.
* ``<asset>_warn_quality``: WARN severity, non-blocking. Fails when any WARN expectation fails
  or any day was quarantined; never fails a run (the alert sensor reports it).

Metadata says which expectations failed, on how many rows, with examples and every unknown
category with its count, links the partition's Data Docs page, and (ranges up to 62 days)
the status of every day. Why per-day status in metadata rather than partitioned asset checks:
Dagster 1.13 (where ``AssetCheckSpec(partitions_def=...)`` is a preview) records a check's
partition only for a single-partition step, never for the days of a ranged step.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    MetadataValue,
)

from superdan_assets.checks.decide import DayDecision
from superdan_assets.checks.outcome import ExpectationOutcome, Severity, ValidationOutcome
from superdan_assets.checks.suites import BLOCKS

#: Unknown values listed per expectation in metadata (the rest are counted).
MAX_VALUE_COUNTS = 20
_GROUP = {Severity.ERROR: "blocking", Severity.WARN: "warn"}


def check_name(asset: str, severity: Severity) -> str:
    """``raw_crimes_blocking_quality`` (ERROR) or ``raw_crimes_warn_quality`` (WARN)."""
    return f"{asset}_{_GROUP[severity]}_quality"


def quality_check_specs(
    asset: str, asset_key: AssetKey | str | None = None
) -> list[AssetCheckSpec]:
    """The two :class:`AssetCheckSpec` of ``asset`` (blocking ERROR group, non-blocking WARN)."""
    key = AssetKey.from_coercible(asset_key or asset)
    return [
        AssetCheckSpec(
            check_name(asset, Severity.ERROR),
            asset=key,
            blocking=True,
            description=(
                "Great Expectations suite, ERROR expectations: schema, required fields, unique "
                f"ids, rows inside the day, coordinates. A failure stops {BLOCKS[asset]}."
            ),
        ),
        AssetCheckSpec(
            check_name(asset, Severity.WARN),
            asset=key,
            blocking=False,
            description=(
                "Great Expectations suite, WARN expectations: unknown categories, coordinates "
                "outside the city, volume and burglary share against learnt bounds. Alerted, "
                "never blocks."
            ),
        ),
    ]


Outcomes = ValidationOutcome | Sequence[ValidationOutcome]


def asset_check_results(
    outcomes: Outcomes,
    asset_key: AssetKey | str | None = None,
    decisions: Mapping[str, DayDecision] | None = None,
) -> list[AssetCheckResult]:
    """Both check results, ``[blocking (ERROR), warn (WARN)]``, for one partition's outcome or
    for the daily outcomes of a partition range (a single-run backfill step validates each day
    separately; a group passes only if it passes on every day, and the metadata says which
    days failed)."""
    return [
        check_result(outcomes, Severity.ERROR, asset_key, decisions),
        check_result(outcomes, Severity.WARN, asset_key, decisions),
    ]


def check_result(
    outcomes: Outcomes,
    severity: Severity,
    asset_key: AssetKey | str | None = None,
    decisions: Mapping[str, DayDecision] | None = None,
) -> AssetCheckResult:
    """The :class:`AssetCheckResult` of the ``severity`` group (see :func:`asset_check_results`).

    With per-day ``decisions``, the blocking (ERROR) check passes when at least one day of the
    step was good (the bad ones were quarantined, and downstream goes on with the good ones);
    the WARN check fails when any day was quarantined, so the quarantine is alerted.
    """
    days = _as_list(outcomes)
    asset = days[0].asset
    failing_days = [o for o in days if o.failed(severity)]
    passed = not failing_days
    description = _description(days, severity)
    metadata = check_metadata(days, severity)
    if decisions:
        bad = {d: v for d, v in sorted(decisions.items()) if not v.passed}
        good = len(decisions) - len(bad)
        if severity is Severity.ERROR:
            passed = good > 0
        elif bad:
            passed = False
        if bad:
            description = (
                f"{len(bad)} of {len(decisions)} day(s) quarantined (failed blocking "
                f"expectations), {good} written: "
                + ", ".join(f"{d} ({'; '.join(v.reasons)[:120]})" for d, v in list(bad.items())[:5])
                + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
                + (f". {description}" if severity is Severity.WARN else "")
            )
            metadata["quarantined_days"] = MetadataValue.md(_quarantine_table(bad))
        metadata["days_written"] = MetadataValue.int(good)
        metadata["days_quarantined"] = MetadataValue.int(len(bad))
        if len(decisions) <= MAX_DAY_STATUS:
            # Per-day status in the check itself: partitioned asset checks (a preview in
            # Dagster 1.13) record a partition only for single-partition steps, not ranges.
            metadata["day_status"] = MetadataValue.json(
                {d: "written" if v.passed else "quarantined" for d, v in sorted(decisions.items())}
            )
    return AssetCheckResult(
        passed=passed,
        asset_key=AssetKey.from_coercible(asset_key or asset),
        check_name=check_name(asset, severity),
        severity=AssetCheckSeverity.ERROR
        if severity is Severity.ERROR
        else AssetCheckSeverity.WARN,
        description=description,
        metadata=metadata,
    )


#: Ranges up to this many days list every day's status in the check metadata.
MAX_DAY_STATUS = 62


def _quarantine_table(bad: Mapping[str, DayDecision]) -> str:
    lines = ["| day | rows | why |", "| --- | --- | --- |"]
    for day, decision in list(bad.items())[:100]:
        why = "; ".join(decision.reasons).replace("|", "/")[:300]
        lines.append(f"| {day} | {decision.rows} | {why} |")
    if len(bad) > 100:
        lines.append(f"| ... | | {len(bad) - 100} more days |")
    return "\n".join(lines)


def check_metadata(outcomes: Outcomes, severity: Severity) -> dict[str, Any]:
    """Metadata of one severity group's check result (see module docstring)."""
    days = _as_list(outcomes)
    single = len(days) == 1
    failed = [(o, e) for o in days for e in o.failed(severity)]
    metadata: dict[str, Any] = {
        "partition": MetadataValue.text(
            days[0].partition_key
            if single
            else f"{days[0].partition_key}..{days[-1].partition_key}"
        ),
        "rows": MetadataValue.int(sum(o.row_count for o in days)),
        "expectations_evaluated": MetadataValue.int(
            sum(e.evaluated for o in days for e in o.of_severity(severity))
        ),
        "expectations_failed": MetadataValue.int(len(failed)),
        "failed_expectations": MetadataValue.json(
            [_failure_record(e, None if single else o.partition_key) for o, e in failed]
        ),
        "validation_seconds": MetadataValue.float(float(sum(o.seconds for o in days))),
    }
    if not single:
        metadata["failed_partitions"] = MetadataValue.json(
            sorted({o.partition_key for o, _ in failed})
        )
    if failed:
        metadata["failures"] = MetadataValue.md(_failures_markdown(failed, single))
    skipped = {e.name: e.note for o in days for e in o.of_severity(severity) if not e.evaluated}
    if skipped:
        metadata["not_evaluated"] = MetadataValue.json(skipped)
    if severity is Severity.ERROR:
        metadata["blocks"] = MetadataValue.text(BLOCKS.get(days[0].asset, "downstream assets"))
    elif single:
        outcome = days[0]
        for key in ("row_count_bounds", "burglary_share_bounds"):
            if key in outcome.extras:
                metadata[key] = MetadataValue.text(str(outcome.extras[key]))
        if outcome.id_reconciliation is not None:
            metadata["id_reconciliation"] = MetadataValue.json(outcome.id_reconciliation.to_dict())
    # Link the page of the first failing day (else the first day); all pages for a range.
    shown = next((o for o, _ in failed if o.docs_url), None) or days[0]
    if shown.docs_path:
        metadata["data_docs"] = MetadataValue.path(shown.docs_path)
    if shown.docs_url:
        metadata["data_docs_url"] = MetadataValue.url(shown.docs_url)
    if not single and any(o.docs_url for o in days):
        metadata["data_docs_by_partition"] = MetadataValue.json(
            {o.partition_key: o.docs_url for o in days if o.docs_url}
        )
    errors = {o.partition_key: o.extras["docs_error"] for o in days if "docs_error" in o.extras}
    if errors:
        metadata["data_docs_error"] = MetadataValue.json(errors)
    return metadata


def _as_list(outcomes: Outcomes) -> list[ValidationOutcome]:
    days = [outcomes] if isinstance(outcomes, ValidationOutcome) else list(outcomes)
    if not days:
        raise ValueError("need at least one ValidationOutcome")
    if len({o.asset for o in days}) != 1:
        raise ValueError(f"outcomes of different assets: {sorted({o.asset for o in days})}")
    return sorted(days, key=lambda o: o.partition_key)


def _failure_record(e: ExpectationOutcome, partition: str | None = None) -> dict[str, Any]:
    record = {"partition": partition} if partition else {}
    record |= {
        "expectation": e.name,
        "column": e.column,
        "unexpected_count": e.unexpected_count,
        "unexpected_percent": None
        if e.unexpected_percent is None
        else round(e.unexpected_percent, 3),
        "unit": e.unit,
        "examples": e.examples,
        "why": e.why,
    }
    if e.value_counts:
        record["value_counts"] = dict(list(e.value_counts.items())[:MAX_VALUE_COUNTS])
        record["distinct_unexpected_values"] = len(e.value_counts)
    if e.unexpected_count is None:
        record["observed_value"] = e.observed_value
    if e.exception:
        record["exception"] = e.exception
    return record


def _failures_markdown(
    failed: Iterable[tuple[ValidationOutcome, ExpectationOutcome]], single: bool
) -> str:
    head = (
        "| expectation | failing | details |"
        if single
        else "| day | expectation | failing | details |"
    )
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for o, e in failed:
        if e.unexpected_count is not None:
            pct = f" ({e.unexpected_percent:.1f} %)" if e.unexpected_percent is not None else ""
            count = f"{e.unexpected_count} {e.unit}{pct}"
        else:
            count = f"observed {e.observed_value!r}"[:80]
        summary = e.summary()
        detail = summary.split("; ", 1)[1] if "; " in summary else (e.exception or "")
        day = "" if single else f"| {o.partition_key} "
        lines.append(f"{day}| `{e.name}` | {count} | {detail.replace('|', '/')[:200]} |")
    return "\n".join(lines)


def _description(days: Sequence[ValidationOutcome], severity: Severity) -> str:
    group = _GROUP[severity]
    per_day = len(days[0].of_severity(severity))
    where = (
        days[0].partition_key
        if len(days) == 1
        else f"{days[0].partition_key}..{days[-1].partition_key}"
    )
    failed = [(o, e) for o in days for e in o.failed(severity)]
    if not failed:
        return f"{where}: all {per_day} {group} expectations passed" + (
            f" on all {len(days)} days" if len(days) > 1 else ""
        )
    names = ", ".join(
        (f"{o.partition_key} " if len(days) > 1 else "")
        + (
            f"{e.name} ({e.unexpected_count} {e.unit})"
            if e.unexpected_count is not None
            else e.name
        )
        for o, e in failed[:10]
    )
    more = f" and {len(failed) - 10} more" if len(failed) > 10 else ""
    if len(days) == 1:
        return f"{where}: {len(failed)} of {per_day} {group} expectations failed: {names}{more}"
    bad_days = len({o.partition_key for o, _ in failed})
    return f"{where}: {group} expectations failed on {bad_days} of {len(days)} days: {names}{more}"
