"""Which cities this installation serves, and how a name or a path becomes a spec.

Chicago and Rochester ship inside the package; a user brings their own city as a spec file
path. ``SUPERDAN_CITY`` names the default city (the one ``superdan pipeline`` runs without
``--city``), ``SUPERDAN_CITIES`` the comma-separated cities the Dagster code location loads
(names of packaged specs or paths; default: the default city). ``SUPERDAN_EXPORT_PATH``, kept
from before cities were configurable, points the default city at bulk CSV files instead of
its live feed.
"""

from __future__ import annotations

import os
from pathlib import Path

from superdan_assets.cities.spec import CitySpec, SpecError, load_spec_file

PACKAGED_DIR = Path(__file__).parent
DEFAULT_CITY = "chicago"


def packaged_cities() -> list[str]:
    """Names of the specs shipped with the package."""
    return sorted(p.stem for p in PACKAGED_DIR.glob("*.toml"))


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def resolve_spec(name_or_path: str | os.PathLike) -> CitySpec:
    """A packaged city by name (``"rochester"``) or a spec file by path."""
    text = str(name_or_path).strip()
    if not text:
        raise SpecError("empty city name: give a packaged city name or a spec file path")
    looks_like_path = text.endswith(".toml") or os.sep in text or "/" in text
    if not looks_like_path:
        packaged = PACKAGED_DIR / f"{text}.toml"
        if packaged.exists():
            return load_spec_file(packaged)
        raise SpecError(
            f"unknown city {text!r}: packaged cities are {packaged_cities()}; "
            "for another city pass the path of its spec file (.toml)"
        )
    return load_spec_file(text)


def default_city_name() -> str:
    """``SUPERDAN_CITY`` (a name or a path), default Chicago."""
    return _env("SUPERDAN_CITY") or DEFAULT_CITY


def apply_overrides(spec: CitySpec, *, is_default: bool) -> CitySpec:
    """Environment overrides: ``SUPERDAN_EXPORT_PATH`` switches the default city to csv files."""
    export = _env("SUPERDAN_EXPORT_PATH")
    if export and is_default:
        return spec.with_source(kind="csv", path=str(Path(export).expanduser().resolve()))
    return spec


def load_city(name_or_path: str | os.PathLike | None = None) -> CitySpec:
    """One city with the environment overrides applied (default: ``SUPERDAN_CITY``)."""
    default = default_city_name()
    wanted = str(name_or_path) if name_or_path else default
    spec = resolve_spec(wanted)
    is_default = spec.name == resolve_spec(default).name if wanted != default else True
    return apply_overrides(spec, is_default=is_default)


def load_cities() -> list[CitySpec]:
    """The cities the code location serves: ``SUPERDAN_CITIES`` (default: the default city).

    The default city is always included. Two specs with the same ``[city] name`` are an error:
    the name is the key of the city's assets, registry and endpoint.
    """
    wanted = [c.strip() for c in (_env("SUPERDAN_CITIES") or "").split(",") if c.strip()]
    default = default_city_name()
    if default not in wanted:
        wanted.insert(0, default)
    specs: dict[str, CitySpec] = {}
    default_name = resolve_spec(default).name
    for item in wanted:
        spec = resolve_spec(item)
        if spec.name in specs:
            raise SpecError(
                f"two specs define city {spec.name!r} ({specs[spec.name].spec_path} and "
                f"{spec.spec_path}); city names must be unique"
            )
        specs[spec.name] = apply_overrides(spec, is_default=spec.name == default_name)
    return list(specs.values())
