"""Per-day quality decisions: which days of a step are written, and which are quarantined.

Why per day: a run covers a range (the daily schedule re-fetches a week, a backfill a year).
One bad late-report day must not keep yesterday's good day from its features and drift
report, nor must it reach them. So every day gets its own verdict from its blocking (ERROR)
expectations: good days are written, bad days are quarantined with the reason.

A short range is validated day by day already. A long one is validated in one pass (a year in
a few seconds); when that pass finds blocking failures, the offending rows say which days they
lie on, and only those days (plus any empty day, which a pass over the whole range cannot see)
are validated again on their own to decide them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd

from superdan_assets.checks.outcome import Severity, ValidationOutcome


@dataclass(frozen=True)
class DayDecision:
    """The verdict on one day: written (``passed``) or quarantined, and why."""

    day: str
    rows: int
    passed: bool
    reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"day": self.day, "rows": self.rows, "passed": self.passed,
                "reasons": list(self.reasons)}


def _day_keys(frame: pd.DataFrame) -> pd.Series:
    if not len(frame):
        return pd.Series([], dtype="string")
    return frame["date"].dt.strftime("%Y-%m-%d")


def _decision(day: str, rows: int, outcome: ValidationOutcome) -> DayDecision:
    failed = outcome.failed(Severity.ERROR)
    return DayDecision(day, rows, not failed, tuple(e.summary() for e in failed))


def _days_of_rows(frame: pd.DataFrame, days: pd.Series, rows: Sequence) -> set[str]:
    """The days the offending ``rows`` (ids, or positions when there is no id) lie on."""
    if not rows:
        return set()
    if "id" in frame.columns:
        by_id = pd.Series(days.to_numpy(), index=frame["id"].astype("string").to_numpy())
        wanted = pd.Index([str(r) for r in rows if r is not None])
        return set(by_id[by_id.index.isin(wanted)].unique())
    positions = [int(r) for r in rows if isinstance(r, int) and 0 <= int(r) < len(frame)]
    return set(days.iloc[positions].unique())


def decide_days(
    frame: pd.DataFrame,
    keys: Sequence[str],
    outcomes: Sequence[ValidationOutcome],
    validate_day: Callable[[str], ValidationOutcome],
) -> dict[str, DayDecision]:
    """A decision for every day of ``keys``.

    ``outcomes``: one per day (a short range), or one for the whole range. ``validate_day``
    validates one day on its own (used for the days a one-pass failure points at).
    """
    days = _day_keys(frame)
    rows = days.value_counts().to_dict() if len(days) else {}
    by_day = {o.partition_key: o for o in outcomes}
    if len(outcomes) == len(keys) and set(by_day) == set(keys):
        return {k: _decision(k, int(rows.get(k, 0)), by_day[k]) for k in keys}
    (whole,) = outcomes
    suspects = {k for k in keys if not rows.get(k)}
    for e in whole.failed(Severity.ERROR):
        if e.unexpected_rows and all(r is not None for r in e.unexpected_rows):
            suspects |= _days_of_rows(frame, days, e.unexpected_rows)
        else:
            suspects |= set(keys)  # a table-level failure (schema, dtypes): every day
    decisions = {}
    for k in keys:
        if k in suspects:
            decisions[k] = _decision(k, int(rows.get(k, 0)), validate_day(k))
        else:
            decisions[k] = DayDecision(k, int(rows.get(k, 0)), True)
    return decisions
