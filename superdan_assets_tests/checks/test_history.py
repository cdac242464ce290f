"""Bounds learnt from history: Tukey fences, relative to the recent level, per weekday."""

from __future__ import annotations

import datetime as dt

import pytest

from superdan_assets.checks.history import (
    PartitionStats,
    burglary_share_bounds,
    history_from_counts,
    row_count_bounds,
    tukey_fences,
)

TUESDAY = dt.date(2018, 6, 5)


def days_before(day: dt.date, n: int, rows) -> list[PartitionStats]:
    return [
        PartitionStats(day=day - dt.timedelta(days=d), rows=rows(day - dt.timedelta(days=d)))
        for d in range(1, n + 1)
    ]


def test_tukey_fences_are_quantile_based_and_robust_to_one_outlier():
    assert tukey_fences([10, 11, 12, 13, 14], whisker=1.5) == pytest.approx((8.0, 16.0))
    assert tukey_fences([10, 11, 12, 13, 14, 1000], whisker=1.5)[1] < 30


def test_weekday_bounds_follow_that_weekday_and_the_recent_level():
    # Tuesdays are busy (200), other days 100; volume doubled over the last two weeks.
    def rows(d: dt.date) -> int:
        base = 200 if d.weekday() == 1 else 100
        return base * (2 if (TUESDAY - d).days <= 14 else 1)

    bounds = row_count_bounds(days_before(TUESDAY, 84, rows), TUESDAY)
    assert "Tuesdays relative to the median" in bounds.basis
    assert bounds.low <= 400 <= bounds.high  # today's expected Tuesday at the new level
    assert not bounds.low <= 200 <= bounds.high  # last quarter's Tuesday volume is now odd


def test_short_history_falls_back_then_gives_up():
    few = days_before(TUESDAY, 10, lambda d: 100)
    assert row_count_bounds(few, TUESDAY).basis == "days (all weekdays)"
    assert row_count_bounds(days_before(TUESDAY, 3, lambda d: 100), TUESDAY) is None
    assert row_count_bounds(None, TUESDAY) is None


def test_empty_day_is_always_below_the_low_bound():
    bounds = row_count_bounds(days_before(TUESDAY, 30, lambda d: 1), TUESDAY)
    assert bounds.low == 1


def test_share_bounds_pool_days_and_ignore_empty_ones():
    history = [
        PartitionStats(
            day=TUESDAY - dt.timedelta(days=d), rows=200, burglary_share=0.15 + 0.01 * (d % 3)
        )
        for d in range(1, 15)
    ]
    history.append(PartitionStats(day=TUESDAY - dt.timedelta(days=20), rows=0, burglary_share=None))
    bounds = burglary_share_bounds(history, TUESDAY)
    assert bounds.partitions == 14 and 0 <= bounds.low < 0.15 < 0.17 < bounds.high <= 1
    assert burglary_share_bounds(history[:3]) is None


def test_history_from_counts():
    history = history_from_counts({"2018-06-04": 700, "2018-06-03": 650}, {"2018-06-04": 0.2})
    assert history[0] == PartitionStats(day=dt.date(2018, 6, 4), rows=700, burglary_share=0.2)
    assert history[1].burglary_share is None
