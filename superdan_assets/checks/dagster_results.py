"""Dagster asset check results from a :class:`ValidationOutcome`, and which partitions passed.

Two checks per asset, one per severity group:

* ``<asset>_blocking_quality``: ERROR severity, declared ``blocking=True``. Fails when any
  ERROR expectation fails, which fails the step, so downstream assets of that partition do not
  run; :func:`partitions_passing_blocking_checks` keeps the partition out of training.
* ``<asset>_warn_quality``: WARN severity, non-blocking. Fails when any WARN expectation fails;
  never fails a run (the alert sensor in ``superdan_assets.alerts`` reports it).

Metadata says which expectations failed, on how many rows, with examples and every unknown
category with its count, and links the partition's Data Docs page. A single-run backfill step
covering a range of days passes the daily outcomes together: one result per group, failing if
any day fails, naming the failing days (Dagster 1.13 records no per-partition check result in a
range step unless the check spec has a ``partitions_def``, which is still a preview feature).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any

from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    AssetRecordsFilter,
    DagsterEventType,
    DagsterInstance,
    MetadataValue,
)
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

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


# -- which partitions passed ----------------------------------------------------------------


class CheckStatus(StrEnum):
    """The state of a partition's latest blocking check against its latest materialization."""

    PASSED = "passed"
    FAILED = "failed"
    STALE = "stale"  # the latest evaluation checked an older materialization
    MISSING = "missing"  # its latest materialization was never checked, or none exists


def blocking_check_status(
    instance: DagsterInstance,
    asset_key: AssetKey | str,
    check_name: str,
    partition_keys: Sequence[str],
    *,
    page_size: int = 1000,
) -> dict[str, CheckStatus]:
    """Per partition key: did the latest evaluation of ``check_name`` on the partition's latest
    materialization pass?

    An evaluation covers a partition when it names it (checks declared with a
    ``partitions_def``), when it ran in the run that produced the partition's latest
    materialization (checks computed in the asset's step, including single-run backfills of a
    range, where one evaluation covers every day of the range), or when it targeted that
    materialization (``target_materialization_data.storage_id``, checks run separately).
    Reads ``instance.event_log_storage.get_asset_check_execution_history`` newest first, a page
    at a time, until every requested partition is decided.
    """
    key = AssetKey.from_coercible(asset_key)
    check_key = AssetCheckKey(key, check_name)
    wanted = list(dict.fromkeys(partition_keys))
    latest = _latest_materializations(instance, key, wanted)  # pk -> (storage id, run id)
    partition_of_storage_id = {sid: pk for pk, (sid, _) in latest.items()}
    partitions_of_run: dict[str, list[str]] = {}
    for pk, (_, run_id) in latest.items():
        partitions_of_run.setdefault(run_id, []).append(pk)

    status: dict[str, CheckStatus] = {}
    cursor = None
    while len(status) < len(latest):
        records = instance.event_log_storage.get_asset_check_execution_history(
            check_key,
            limit=page_size,
            cursor=cursor,
            status={
                AssetCheckExecutionRecordStatus.SUCCEEDED,
                AssetCheckExecutionRecordStatus.FAILED,
            },
        )
        for record in records:
            evaluation = _evaluation(record)
            if evaluation is None:
                continue
            verdict = CheckStatus.PASSED if evaluation.passed else CheckStatus.FAILED
            target = evaluation.target_materialization_data
            named = record.partition or evaluation.partition
            if named is not None:
                if named in latest and named not in status:
                    current = target is None or target.storage_id == latest[named][0]
                    status[named] = verdict if current else CheckStatus.STALE
                continue
            covered = list(partitions_of_run.get(record.run_id, []))
            if target is not None and target.storage_id in partition_of_storage_id:
                covered.append(partition_of_storage_id[target.storage_id])
            for pk in covered:
                status.setdefault(pk, verdict)
        if len(records) < page_size:
            break
        cursor = records[-1].id
    return {pk: status.get(pk, CheckStatus.MISSING) for pk in wanted}


def _latest_materializations(
    instance: DagsterInstance, key: AssetKey, partition_keys: Sequence[str]
) -> dict[str, tuple[int, str]]:
    """partition key -> (storage id, run id) of its latest materialization."""
    storage_ids = instance.get_latest_storage_id_by_partition(
        key, DagsterEventType.ASSET_MATERIALIZATION, partitions=set(partition_keys)
    )
    if not storage_ids:
        return {}
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=key, storage_ids=list(storage_ids.values())),
        limit=len(storage_ids),
    ).records
    run_of_storage_id = {r.storage_id: r.run_id for r in records}
    return {pk: (sid, run_of_storage_id.get(sid, "")) for pk, sid in storage_ids.items()}


def partitions_passing_blocking_checks(
    instance: DagsterInstance,
    asset_key: AssetKey | str,
    check_name: str,
    partition_keys: Sequence[str],
) -> list[str]:
    """The subset of ``partition_keys`` (in their order) whose latest materialization's latest
    blocking check evaluation passed; train only on these."""
    status = blocking_check_status(instance, asset_key, check_name, partition_keys)
    return [pk for pk in dict.fromkeys(partition_keys) if status[pk] is CheckStatus.PASSED]


def _evaluation(record) -> AssetCheckEvaluation | None:
    event = record.event
    if event is None or event.dagster_event is None:
        return None
    if event.dagster_event.event_type != DagsterEventType.ASSET_CHECK_EVALUATION:
        return None
    return event.dagster_event.asset_check_evaluation_data
