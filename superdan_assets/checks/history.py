"""Bounds learnt from earlier partitions: what "an unusual day" means for this feed.

Why learnt, not constants: Chicago's daily volume fell from ~920 reports a day in 2012 to ~700
in 2018, rises ~30 % from January to June and differs by weekday; a fixed range would either
never fire or fire every Sunday. The caller passes the statistics of recent partitions (for
example the last 12 weeks) and the suites compare today with Tukey fences
``[Q1 - k*IQR, Q3 + k*IQR]`` built from quantiles, so one broken day in the history does not
stretch them.

Row counts are compared *relative to the recent level*: for each earlier same-weekday partition
the ratio of its rows to the median of the 14 days before it, fences on those ratios, times
today's level. Measured on the 181 days of 2018-01..06 with 12 weeks of history: plain fences on
raw counts flagged 22 days (k=1.5) or 7 (k=3) because of the spring rise; level-relative fences
with k=3 flag 3, while still flagging a day that lost about a third of its rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Tukey's whisker for row counts: 3 marks the classical "far out" values (see module docstring).
ROW_COUNT_WHISKER = 3.0
#: Tukey's whisker for the burglary share: 1.5 (2 of 181 days of 2018-01..06 outside).
SHARE_WHISKER = 1.5
#: The level a day's row count is compared with: the median of this many preceding days.
LEVEL_DAYS = 14
#: Fewer same-weekday partitions than this and the weekday bounds fall back to all weekdays.
MIN_SAME_WEEKDAY = 4
#: Fewer partitions than this in total and no bound is learnt at all.
MIN_PARTITIONS = 7

_WEEKDAYS = ("Mondays", "Tuesdays", "Wednesdays", "Thursdays", "Fridays", "Saturdays", "Sundays")


@dataclass(frozen=True)
class PartitionStats:
    """What the suites need to remember about one earlier partition."""

    day: dt.date
    rows: int
    burglary_share: float | None = None

    @classmethod
    def from_frame(cls, day: dt.date | str | pd.Timestamp, frame: pd.DataFrame) -> PartitionStats:
        """Stats of a stored partition; ``burglary_share`` when the frame has a ``label``."""
        share = None
        if "label" in frame.columns and len(frame):
            share = float(pd.to_numeric(frame["label"], errors="coerce").mean())
        return cls(day=pd.Timestamp(day).date(), rows=len(frame), burglary_share=share)


def history_from_counts(
    rows: Mapping[str, int], burglary_shares: Mapping[str, float] | None = None
) -> list[PartitionStats]:
    """:class:`PartitionStats` from ``{partition key: rows}`` (and optional shares), e.g. read
    from Parquet footers of stored partitions. Prefer that to materialization metadata: a
    single-run backfill records the range's total on every partition it materializes."""
    shares = burglary_shares or {}
    return [
        PartitionStats(day=pd.Timestamp(k).date(), rows=int(n), burglary_share=shares.get(k))
        for k, n in rows.items()
    ]


@dataclass(frozen=True)
class LearntBounds:
    """A closed interval learnt from ``partitions`` earlier partitions; ``basis`` says which."""

    low: float
    high: float
    partitions: int
    basis: str

    def describe(self) -> str:
        return f"[{self.low:g}, {self.high:g}] from {self.partitions} {self.basis}"


def tukey_fences(values: Iterable[float], whisker: float = SHARE_WHISKER) -> tuple[float, float]:
    """``(Q1 - whisker*IQR, Q3 + whisker*IQR)`` of ``values`` (NaNs ignored)."""
    arr = np.asarray([v for v in values if v is not None], dtype=float)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        raise ValueError("tukey_fences needs at least one finite value")
    q1, q3 = np.quantile(arr, [0.25, 0.75])
    iqr = q3 - q1
    return float(q1 - whisker * iqr), float(q3 + whisker * iqr)


def row_count_bounds(
    history: Iterable[PartitionStats] | None,
    day: dt.date | pd.Timestamp,
    *,
    whisker: float = ROW_COUNT_WHISKER,
    level_days: int = LEVEL_DAYS,
    min_same_weekday: int = MIN_SAME_WEEKDAY,
    min_partitions: int = MIN_PARTITIONS,
) -> LearntBounds | None:
    """Row-count bounds for ``day`` learnt from ``history`` (see the module docstring).

    Prefers same-weekday ratios to the recent level; falls back to plain fences on the same
    weekday's counts when the history has no recent level, then on all days' counts; ``None``
    when the history is too short to learn anything. The low bound is floored at 1 (an empty
    day is always outside) and rounded down, the high bound rounded up.
    """
    target = pd.Timestamp(day).date()
    rows = pd.Series({s.day: s.rows for s in (history or []) if s.day != target}, dtype=float)
    rows = rows.sort_index()
    weekday = target.weekday()
    same = [d for d in rows.index if d.weekday() == weekday]
    today_level = _level(rows, target, level_days)
    ratios = [
        rows[d] / level
        for d in same
        if (level := _level(rows, d, level_days)) is not None and level > 0
    ]
    if today_level is not None and len(ratios) >= min_same_weekday:
        low, high = tukey_fences(ratios, whisker)
        low, high = low * today_level, high * today_level
        basis = f"{_WEEKDAYS[weekday]} relative to the median of the previous {level_days} days"
        count = len(ratios)
    elif len(same) >= min_same_weekday:
        low, high = tukey_fences(rows[same], whisker)
        basis, count = _WEEKDAYS[weekday], len(same)
    elif len(rows) >= min_partitions:
        low, high = tukey_fences(rows, whisker)
        basis, count = "days (all weekdays)", len(rows)
    else:
        return None
    return LearntBounds(
        low=float(max(1, np.floor(low))), high=float(np.ceil(high)), partitions=count, basis=basis
    )


def _level(rows: pd.Series, day: dt.date, level_days: int) -> float | None:
    """Median row count of the ``level_days`` before ``day``; None if half of them are absent."""
    window = rows[(rows.index >= day - dt.timedelta(days=level_days)) & (rows.index < day)]
    if len(window) < max(1, level_days // 2):
        return None
    return float(window.median())


def burglary_share_bounds(
    history: Iterable[PartitionStats] | None,
    day: dt.date | pd.Timestamp | None = None,
    *,
    whisker: float = SHARE_WHISKER,
    min_partitions: int = MIN_PARTITIONS,
) -> LearntBounds | None:
    """Bounds of the daily burglary share (label mean) over the history, clipped to [0, 1].

    All weekdays are pooled: the share barely depends on the weekday, while each day's share
    is noisy (a binomial on ~250 rows), so more partitions buy more than a per-weekday split.
    """
    excluded = pd.Timestamp(day).date() if day is not None else None
    shares = [
        s.burglary_share
        for s in (history or [])
        if s.burglary_share is not None and s.rows > 0 and s.day != excluded
    ]
    if len(shares) < min_partitions:
        return None
    low, high = tukey_fences(shares, whisker)
    return LearntBounds(
        low=max(0.0, round(low, 4)),
        high=min(1.0, round(high, 4)),
        partitions=len(shares),
        basis="days",
    )
