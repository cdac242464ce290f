"""A city's spec -> the client of its feed (no Dagster import: the CLI and benchmarks use it)."""

from __future__ import annotations

import os
from pathlib import Path

from superdan_assets.cities.spec import CitySpec
from superdan_assets.sources.base import CrimeSource


def build_source(spec: CitySpec, cache_dir: str | os.PathLike | None = None) -> CrimeSource:
    """The source the spec's ``[source] kind`` names; ``cache_dir`` caches parsed CSV files."""
    kind = spec.source.kind
    if kind == "csv":
        from superdan_assets.sources.export import CsvSource

        cache = Path(cache_dir) / spec.name if cache_dir else None
        return CsvSource(spec, cache_dir=cache)
    if kind == "soda":
        from superdan_assets.sources.soda import SodaSource

        return SodaSource(spec)
    if kind == "arcgis":
        from superdan_assets.sources.arcgis import ArcGISSource

        return ArcGISSource(spec)
    raise ValueError(f"city {spec.name!r}: unknown source kind {kind!r}")
