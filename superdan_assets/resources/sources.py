"""The crime data source as a Dagster resource: configuration in, a CrimeSource out.

The clients themselves live in ``superdan_assets.sources`` (no Dagster import); this resource
only chooses one by ``kind`` and hands it its settings, so the same clients serve the assets,
the container's ``superdan train`` and the benchmarks. Secrets are not fields here: the SODA
app token is read by the client from the environment variable named in ``app_token_env``, so it
never shows in the run config the Dagster UI displays.
"""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from superdan_assets.sources.base import CrimeSource


class CrimeSourceResource(ConfigurableResource):
    """Which city feed ``raw_crimes`` reads, and how."""

    kind: str = Field(default="soda", description="'soda' (live Chicago API), 'export' "
                      "(Chicago bulk CSV files) or 'arcgis' (Rochester FeatureServer)")
    export_path: str | None = Field(default=None, description="Export file or folder")
    cache_dir: str | None = Field(default=None, description="Parsed-export cache folder")
    soda_url: str = Field(default="https://data.cityofchicago.org/resource/ijzp-q8t2.json")
    arcgis_url: str = Field(
        default="https://maps.cityofrochester.gov/arcgis/rest/services/RPD/RPD_Part_I_Crime/"
        "FeatureServer/2/query"
    )
    app_token_env: str = Field(
        default="SUPERDAN_SODA_APP_TOKEN",
        description="Name of the environment variable holding the SODA app token (optional)",
    )
    page_size: int = Field(default=50_000, description="Records per API page")
    max_attempts: int = Field(default=6, description="Attempts per request before failing")
    timeout_seconds: float = Field(default=60.0, description="Per-request timeout")
    backoff_seconds: float = Field(default=1.0, description="First retry delay (doubles)")

    def build(self) -> CrimeSource:
        if self.kind == "export":
            from superdan_assets.sources.export import ExportSource

            if not self.export_path:
                raise ValueError("source kind 'export' needs export_path (SUPERDAN_EXPORT_PATH)")
            return ExportSource(self.export_path, cache_dir=self.cache_dir)
        if self.kind == "soda":
            from superdan_assets.sources.soda import SodaSource

            return SodaSource(
                url=self.soda_url,
                page_size=self.page_size,
                app_token_env=self.app_token_env,
                max_attempts=self.max_attempts,
                timeout=self.timeout_seconds,
                backoff=self.backoff_seconds,
            )
        if self.kind == "arcgis":
            from superdan_assets.sources.arcgis import ArcGISSource

            return ArcGISSource(
                url=self.arcgis_url,
                page_size=min(self.page_size, 2000),
                max_attempts=self.max_attempts,
                timeout=self.timeout_seconds,
                backoff=self.backoff_seconds,
            )
        raise ValueError(f"unknown source kind {self.kind!r}: use 'soda', 'export' or 'arcgis'")
