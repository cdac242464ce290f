"""What the two HTTP feeds (SODA, ArcGIS) share: a city's spec, its mapper and a retrying
client configured from the spec's ``[source]`` (arguments override it, e.g. in tests)."""

from __future__ import annotations

from superdan_assets.cities.mapping import SpecMapper
from superdan_assets.cities.spec import CitySpec
from superdan_assets.sources.http import JsonHttpClient, retrying_client


class SpecFeed:
    """Base of the HTTP sources: ``spec``, ``mapper``, ``city``, ``name``, ``url``,
    ``page_size`` and ``client`` from the spec, with per-argument overrides."""

    #: Suffix of the source's name (``chicago_soda``) and how errors name the kind.
    kind = "feed"
    #: The most records one request may ask for (the server's own cap), if any.
    max_page_size: int | None = None

    def _configure(
        self,
        spec: CitySpec,
        url: str | None,
        page_size: int | None,
        max_attempts: int | None,
        timeout: float | None,
        backoff: float | None,
        max_delay: float,
        client: JsonHttpClient | None,
    ) -> None:
        src = spec.source
        page_size = page_size or (
            min(src.page_size, self.max_page_size) if self.max_page_size else src.page_size
        )
        if page_size < 1:
            raise ValueError(f"page_size must be >= 1, got {page_size}")
        self.spec = spec
        self.mapper = SpecMapper(spec)
        self.city = spec.name
        self.name = f"{spec.name}_{self.kind}"
        self.url = url or src.url
        if not self.url:
            raise ValueError(f"city {spec.name!r}: a {self.kind} source needs a url")
        self.page_size = page_size
        self.client = client or retrying_client(
            max_attempts or src.max_attempts,
            timeout or src.timeout_seconds,
            src.backoff_seconds if backoff is None else backoff,
            max_delay,
        )
