"""Monitoring a deployed street-risk model: yesterday's forecast against what happened.

Each day the realised hit rate at 1 % of the previous day's forecast is recorded for the model
and for the long-term hot-spot baseline (all history), which the forecast frame carries. An
alert is due when the model stays below that baseline for ``run_length`` recorded days in a
row: one bad day is noise (a day has ~35 burglaries, so a 1 % hit rate moves in steps of
3 points), a week of it is a model that no longer earns its place.
"""

from __future__ import annotations

import math

import pandas as pd

from superdan_assets.ml.street_risk.evaluation import day_scores

BASELINE = "all_history"
SHARE = "1pct"


def realised_record(forecast: pd.DataFrame, day_rows: pd.DataFrame) -> dict:
    """The record of one forecast day: per crime type, crimes and hit rates of the model and
    the long-term baseline at 1 % (NaN when the day had no crime of that type)."""
    scores = day_scores(forecast, day_rows)
    day = str(pd.Timestamp(forecast["day"].iloc[0]).date())
    record: dict = {"day": day}
    for crime_type, methods in scores.items():
        record[crime_type] = {
            "model": methods["model"][SHARE],
            BASELINE: methods[BASELINE][SHARE],
        }
    return record


def below_baseline_streak(records: list[dict], crime_type: str) -> int:
    """How many of the most recent consecutive calendar days the model's hit rate was below
    the baseline's (days without crimes or without a record end the streak)."""
    streak = 0
    previous = None
    for record in sorted(records, key=lambda r: r["day"], reverse=True):
        day = pd.Timestamp(record["day"])
        if previous is not None and (previous - day).days != 1:
            break
        entry = record.get(crime_type) or {}
        model, base = entry.get("model"), entry.get(BASELINE)
        if model is None or base is None or math.isnan(model) or math.isnan(base):
            break
        if model >= base:
            break
        streak += 1
        previous = day
    return streak
