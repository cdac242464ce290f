"""What every per-city asset builder needs: the spec, the partitions, the keys.

Why one set of assets per city (asset keys prefixed by the city, one group per city) rather
than a city x day ``MultiPartitionsDefinition``: each city keeps its own calendar (timezone and
first day) on a plain daily partitions definition, so ranged single-run backfills, the daily
schedule at the city's local morning and ``context.partition_time_window`` keep working as
they do for one city; and the UI groups everything of a city (assets, checks, jobs) together.
"""

from __future__ import annotations

from dataclasses import dataclass

from dagster import AssetKey, DailyPartitionsDefinition

from superdan_assets.cities.spec import CitySpec
from superdan_assets.partitions import city_partitions


@dataclass(frozen=True)
class City:
    """One city's spec with its partitions definition and asset-key helpers."""

    spec: CitySpec

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def partitions_def(self) -> DailyPartitionsDefinition:
        return city_partitions(self.spec)

    @property
    def group(self) -> str:
        return self.spec.name

    def key(self, asset: str) -> AssetKey:
        return AssetKey([self.spec.name, asset])

    @property
    def tags(self) -> dict[str, str]:
        return {"superdan/city": self.spec.name}
