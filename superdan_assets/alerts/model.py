"""What an alert is: one failed check evaluation, as people are told about it.

Typed (frozen dataclasses) so that the sinks, the ledger and the message never dig through the
check's metadata dicts; :meth:`FailedExpectation.from_record` is the one place that reads the
``failed_expectations`` records the asset checks write (``checks/dagster_results.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple


class AlertKey(NamedTuple):
    """The de-duplication key: one alert per (asset, check, partition)."""

    asset_key: str
    check_name: str
    partition: str  # "" for an unpartitioned check

    def __str__(self) -> str:
        where = f"[{self.partition}]" if self.partition else ""
        return f"{self.asset_key}{where}.{self.check_name}"


@dataclass(frozen=True)
class FailedExpectation:
    """One failed expectation of a failed check, with what a reader needs to act on it."""

    expectation: str
    unexpected_count: int | None = None
    unit: str = "rows"
    column: str | None = None
    partition: str | None = None
    unexpected_percent: float | None = None
    value_counts: Mapping[str, int] = field(default_factory=dict)
    examples: tuple[Any, ...] = ()  # failing values with their row ids, as the check kept them
    why: str | None = None

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> FailedExpectation:
        """Parse one ``failed_expectations`` metadata record; unknown keys are ignored."""
        count = record.get("unexpected_count")
        percent = record.get("unexpected_percent")
        values = record.get("value_counts") or {}
        return cls(
            expectation=str(record.get("expectation") or "?"),
            unexpected_count=None if count is None else int(count),
            unit=str(record.get("unit") or "rows"),
            column=record.get("column"),
            partition=record.get("partition"),
            unexpected_percent=None if percent is None else float(percent),
            value_counts={str(k): int(v) for k, v in dict(values).items()},
            examples=tuple(record.get("examples") or ()),
            why=record.get("why"),
        )


@dataclass(frozen=True)
class Alert:
    """One failed check evaluation (ERROR or WARN)."""

    asset_key: str
    check_name: str
    partition: str | None
    severity: str  # "ERROR" | "WARN"
    description: str | None = None
    run_id: str | None = None
    failed_expectations: tuple[FailedExpectation, ...] = ()
    docs_url: str | None = None

    @property
    def key(self) -> AlertKey:
        return AlertKey(self.asset_key, self.check_name, self.partition or "")

    @property
    def blocking(self) -> bool:
        return self.severity == "ERROR"

    @property
    def text(self) -> str:
        from superdan_assets.alerts.message import build_alert_message

        return build_alert_message(self)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["failed_expectations"] = [
            {**f, "value_counts": dict(f["value_counts"]), "examples": list(f["examples"])}
            for f in data["failed_expectations"]
        ]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Alert:
        """The inverse of :meth:`to_dict` (the ledger stores alerts as JSON)."""
        return cls(
            asset_key=data["asset_key"],
            check_name=data["check_name"],
            partition=data.get("partition"),
            severity=data["severity"],
            description=data.get("description"),
            run_id=data.get("run_id"),
            failed_expectations=tuple(
                FailedExpectation.from_record(f) for f in data.get("failed_expectations") or ()
            ),
            docs_url=data.get("docs_url"),
        )
