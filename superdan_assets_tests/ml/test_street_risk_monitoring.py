"""The WARN rule of street-risk monitoring: 7 consecutive days below the long-term baseline."""

from superdan_assets.ml.street_risk.monitoring import below_baseline_streak


def _records(pairs, start_day=1):
    return [
        {"day": f"2018-03-{start_day + i:02d}", "theft": {"model": m, "all_history": b}}
        for i, (m, b) in enumerate(pairs)
    ]


def test_streak_counts_recent_consecutive_days_below():
    records = _records([(0.3, 0.2)] + [(0.1, 0.2)] * 7)
    assert below_baseline_streak(records, "theft") == 7


def test_a_day_at_or_above_the_baseline_ends_the_streak():
    records = _records([(0.1, 0.2)] * 5 + [(0.2, 0.2)] + [(0.1, 0.2)] * 3)
    assert below_baseline_streak(records, "theft") == 3


def test_a_missing_day_ends_the_streak():
    records = _records([(0.1, 0.2)] * 4) + _records([(0.1, 0.2)] * 4, start_day=10)
    assert below_baseline_streak(records, "theft") == 4


def test_a_day_without_crimes_ends_the_streak():
    records = _records([(0.1, 0.2)] * 4 + [(float("nan"), float("nan"))])
    assert below_baseline_streak(records, "theft") == 0
