"""City specs: everything city-specific, as data (see :mod:`superdan_assets.cities.spec`)."""

from superdan_assets.cities.catalog import load_cities, load_city, resolve_spec
from superdan_assets.cities.spec import CitySpec, SpecError, load_spec_file, parse_spec

__all__ = [
    "CitySpec",
    "SpecError",
    "load_cities",
    "load_city",
    "load_spec_file",
    "parse_spec",
    "resolve_spec",
]
