"""Reading a finished run's asset-check evaluations from the instance's event log.

Why per run: Dagster 1.13 offers no non-deprecated way to page through all
``ASSET_CHECK_EVALUATION`` events across runs (``get_event_records`` is deprecated), while
``get_records_for_run`` reads one run's events directly, and a run-status sensor sees every run
that finishes in the code location.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dagster import AssetCheckEvaluation, DagsterEventType, DagsterInstance

from superdan_assets.alerts.model import Alert, AlertKey, FailedExpectation


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

    @property
    def key(self) -> AlertKey:
        return AlertKey(self.asset_key, self.check_name, self.partition or "")

    def to_alert(self) -> Alert:
        """The alert for this (failed) evaluation, from the check's own metadata."""
        failed = self.metadata.get("failed_expectations")
        docs = self.metadata.get("data_docs_url")
        records = getattr(failed, "data", None) or ()
        return Alert(
            asset_key=self.asset_key,
            check_name=self.check_name,
            partition=self.partition,
            severity=self.severity,
            description=self.description,
            run_id=self.run_id,
            failed_expectations=tuple(
                FailedExpectation.from_record(r) for r in records if isinstance(r, Mapping)
            ),
            docs_url=getattr(docs, "url", None),
        )


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
    return [e.to_alert() for e in evaluations if not e.passed]
