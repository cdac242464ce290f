"""Per-day quality decisions: which days of a step are written, and which are quarantined.

Why per day: a run covers a range (the daily schedule re-fetches a week, a backfill a year).
One bad late-report day must not keep yesterday's good day from its features and drift
report, nor must it reach them. So every day gets its own verdict from its blocking (ERROR)
expectations: good days are written, bad days are quarantined with the reason.

A short range is validated day by day already. A long one is validated in one pass (a year in
a few seconds), where a share tolerated over the range (``mostly``) can hide a day that breaks
it. So the offending rows of every blocking expectation, passed or not, are counted per day;
the days whose own share breaks the tolerance, or that hold any row a no-tolerance expectation
refused, or that are empty (which a pass over the whole range cannot see) are validated again
on their own, and that decides them. The others passed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd

from superdan_assets.checks.outcome import Severity, ValidationOutcome
from superdan_assets.checks.suites import suite_specs


@dataclass(frozen=True)
class DayDecision:
    """The verdict on one day: written (``passed``) or quarantined, and why."""

    day: str
    rows: int
    passed: bool
    reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {
            "day": self.day,
            "rows": self.rows,
            "passed": self.passed,
            "reasons": list(self.reasons),
        }


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


def _days_breaking(
    frame: pd.DataFrame,
    days: pd.Series,
    rows: Sequence,
    column: str | None,
    mostly: float | None,
) -> set[str]:
    """Days whose own share of offending ``rows`` breaks the tolerance ``mostly`` (any row
    when there is none). The share is taken of the day's rows with a value in ``column``
    (range expectations, which GX scores on non-null values only), else of all its rows."""
    if not rows:
        return set()
    if mostly is None:
        return _days_of_rows(frame, days, rows)
    if "id" in frame.columns:
        offending = frame["id"].astype("string").isin([str(r) for r in rows]).to_numpy()
    else:
        offending = pd.Series(False, index=range(len(frame)))
        offending.iloc[[int(r) for r in rows if 0 <= int(r) < len(frame)]] = True
        offending = offending.to_numpy()
    bad = pd.Series(offending, index=days.index).groupby(days.to_numpy()).sum()
    if column and column in frame.columns:
        base = frame[column].notna().groupby(days.to_numpy()).sum()
    else:
        base = days.value_counts()
    share = (bad / base.reindex(bad.index).clip(lower=1)).fillna(0)
    return set(share[share > (1 - mostly) + 1e-12].index)


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
    specs = {spec.name: spec for spec in suite_specs(whole.asset)}
    for e in whole.of_severity(Severity.ERROR):
        if e.success and not e.unexpected_rows:
            continue
        if not e.unexpected_rows or any(r is None for r in e.unexpected_rows):
            if not e.success:
                suspects |= set(keys)  # a table-level failure (schema, dtypes): every day
            continue
        mostly = specs[e.name].kwargs.get("mostly") if e.name in specs else None
        of_values = e.column if "not_be_null" not in e.expectation_type else None
        suspects |= _days_breaking(frame, days, e.unexpected_rows, of_values, mostly)
    decisions = {}
    for k in keys:
        if k in suspects:
            decisions[k] = _decision(k, int(rows.get(k, 0)), validate_day(k))
        else:
            decisions[k] = DayDecision(k, int(rows.get(k, 0)), True)
    return decisions
