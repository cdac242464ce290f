"""The partitioning every daily asset shares.

Partitions are days of *occurrence* in Chicago local time: the timezone sits on the definition
(GUIDE section 5) so a partition key means the same day in the UI, the schedule and the data.
"""

from dagster import DailyPartitionsDefinition

CITY_TIMEZONE = "America/Chicago"
FIRST_DAY = "2012-01-01"

daily_partitions = DailyPartitionsDefinition(start_date=FIRST_DAY, timezone=CITY_TIMEZONE)
