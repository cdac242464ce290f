"""The structured result of validating one partition: what every caller of the suites reads.

Why a project type instead of GX's result object: the Dagster checks, the alert sensor, the
tests and the benchmark want the same few facts per expectation (name, severity, passed, on how
many rows, a few examples) and a pass/fail per severity. GX's result is a deep, version-specific
structure; converting it once here keeps GX an implementation detail of ``checks/``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

import pandas as pd

from superdan_assets.checks.ids import IdReconciliation


class Severity(StrEnum):
    """How bad a failed expectation is; the names match Dagster's ``AssetCheckSeverity``.

    ERROR: the data would corrupt the model (broken schema, missing required fields, duplicated
    ids, rows from another day, an empty feature day). Fails the blocking check, stops
    downstream assets, and the partition is left out of training.
    WARN: the data is unusual but usable (new category, unusual volume). Reported and alerted,
    never blocks.
    """

    ERROR = "ERROR"
    WARN = "WARN"


@dataclass(frozen=True)
class ExpectationOutcome:
    """One expectation's verdict on one partition.

    ``unexpected_count``/``unexpected_percent`` count the failing ``unit``: rows for row-level
    expectations, columns for the schema ones, ids for the previously-stored-ids one; the other
    table-level ones (row count, a share) leave them ``None`` and put what was seen in
    ``observed_value``. ``examples`` are a few offending values with their row ids (or row
    positions when the frame has no id). ``value_counts`` lists every unexpected value with its
    count for the category expectations, so a new category is reported, never dropped.
    ``evaluated`` is False when the expectation had nothing to compare against (no history, no
    previously stored partition); such an expectation passes and says why in ``note``.
    """

    name: str
    severity: Severity
    success: bool
    expectation_type: str
    column: str | None = None
    why: str = ""
    element_count: int | None = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    unit: str = "rows"
    observed_value: Any = None
    examples: list[Any] = field(default_factory=list)
    value_counts: dict[str, int] = field(default_factory=dict)
    evaluated: bool = True
    note: str | None = None
    exception: str | None = None
    #: Every offending row's id (or position when the frame has no id): how a range validated
    #: in one pass is split into per-day decisions. Not part of the metadata.
    unexpected_rows: tuple = field(default=(), repr=False, compare=False)

    def summary(self) -> str:
        """One human-readable line, e.g. ``id_unique: 3 rows (0.4 %); e.g. ...``."""
        if self.exception:
            return f"{self.name}: could not be evaluated ({self.exception})"
        if self.unexpected_count is not None:
            pct = (
                f" ({self.unexpected_percent:.1f} %)"
                if self.unexpected_percent is not None and math.isfinite(self.unexpected_percent)
                else ""
            )
            head = f"{self.name}: {self.unexpected_count} {self.unit}{pct}"
        else:
            head = f"{self.name}: observed {_short(self.observed_value)}"
        if self.value_counts:
            top = ", ".join(f"{k!r} x{v}" for k, v in list(self.value_counts.items())[:5])
            return f"{head}; values {top}"
        if self.examples:
            return f"{head}; e.g. {_short(self.examples[:3])}"
        return head

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (severity as its name)."""
        out = asdict(self)
        out.pop("unexpected_rows", None)
        out["severity"] = self.severity.value
        return out


@dataclass(frozen=True)
class ValidationOutcome:
    """Every expectation of one asset's suite on one partition, plus where its Data Docs are.

    ``passed_error``: no ERROR expectation failed (what the blocking check reports).
    ``passed_warn``: no WARN expectation failed (what the non-blocking check reports).
    ``id_reconciliation``: for ``raw_crimes`` validated with ``previous`` rows, the full list of
    ids that moved days or vanished (the expectations carry counts and examples).
    """

    asset: str
    partition_key: str
    partition_start: pd.Timestamp
    partition_end: pd.Timestamp
    row_count: int
    expectations: tuple[ExpectationOutcome, ...]
    docs_url: str | None = None
    docs_path: str | None = None
    seconds: float = 0.0
    extras: dict[str, Any] = field(default_factory=dict)
    id_reconciliation: IdReconciliation | None = None

    def of_severity(self, severity: Severity) -> list[ExpectationOutcome]:
        return [e for e in self.expectations if e.severity is severity]

    def failed(self, severity: Severity | None = None) -> list[ExpectationOutcome]:
        return [
            e
            for e in self.expectations
            if not e.success and (severity is None or e.severity is severity)
        ]

    @property
    def passed_error(self) -> bool:
        return not self.failed(Severity.ERROR)

    @property
    def passed_warn(self) -> bool:
        return not self.failed(Severity.WARN)

    def get(self, name: str) -> ExpectationOutcome:
        """The outcome of the expectation called ``name``; KeyError naming the known ones."""
        for e in self.expectations:
            if e.name == name:
                return e
        raise KeyError(f"no expectation {name!r}; known: {[e.name for e in self.expectations]}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "asset": self.asset,
            "partition_key": self.partition_key,
            "partition_start": self.partition_start.isoformat(),
            "partition_end": self.partition_end.isoformat(),
            "row_count": self.row_count,
            "passed_error": self.passed_error,
            "passed_warn": self.passed_warn,
            "docs_url": self.docs_url,
            "docs_path": self.docs_path,
            "seconds": self.seconds,
            "expectations": [e.to_dict() for e in self.expectations],
            "extras": self.extras,
            "id_reconciliation": (
                self.id_reconciliation.to_dict() if self.id_reconciliation else None
            ),
        }


def _short(value: Any, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
