"""The partitioning every daily asset of a city shares.

Partitions are days of *occurrence* in the city's local calendar: the timezone sits on the
definition (GUIDE section 5) so a partition key means the same day in the UI, the schedule and
the data. Each city has its own definition (its timezone and first day), built once per city.
"""

from __future__ import annotations

from functools import lru_cache

from dagster import DailyPartitionsDefinition

from superdan_assets.cities.spec import CitySpec


@lru_cache(maxsize=64)
def _daily(first_day: str, timezone: str) -> DailyPartitionsDefinition:
    return DailyPartitionsDefinition(start_date=first_day, timezone=timezone)


def city_partitions(spec: CitySpec) -> DailyPartitionsDefinition:
    """Daily partitions from the city's ``first_day`` in its ``timezone``."""
    return _daily(spec.city.first_day.isoformat(), spec.timezone)
