"""The city spec: one TOML file that tells superdan everything city-specific.

Why a file and not code: a city is data. Its feed (kind, URL or files), which source column
holds which canonical field, how its dates are written, which offence words are a burglary or
a theft, and optionally its coordinate box. Everything else the platform needs to know about a
city (known categories, normal day volumes, the coordinate box when absent) is learnt from the
city's own stored history. The schema is typed (pydantic) and versioned (``spec_version``):
other tools and users write these files, so an error names the file, the key and the problem.

No Dagster import: the container's ``superdan train`` and ``superdan city check`` use it too.
"""

from __future__ import annotations

import re
import tomllib
from datetime import date
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

SPEC_VERSION = 1
#: Canonical fields a spec may map (``city`` comes from ``[city] name``).
MAPPABLE_FIELDS: tuple[str, ...] = (
    "id",
    "case_number",
    "date",
    "block",
    "iucr",
    "primary_type",
    "description",
    "location_description",
    "arrest",
    "domestic",
    "beat",
    "district",
    "ward",
    "community_area",
    "fbi_code",
    "x_coordinate",
    "y_coordinate",
    "latitude",
    "longitude",
    "updated_on",
)
#: A city name is used in asset keys, partitions, registry paths and endpoint names.
_CITY_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
#: Formats that are not strptime patterns.
SPECIAL_DATE_FORMATS = frozenset({"iso", "epoch_ms", "epoch_s"})


class SpecError(ValueError):
    """A city spec that cannot be used; the message names the file, the key and the problem."""


class _Strict(BaseModel):
    # Unknown keys are errors: a typo ("colums") must not silently fall back to defaults.
    model_config = ConfigDict(extra="forbid", frozen=True)


class CitySection(_Strict):
    name: str = Field(description="lower-case id used in asset keys, partitions, registry")
    timezone: str = Field(description="IANA timezone of the city's wall clock")
    first_day: date = Field(
        default=date(2012, 1, 1), description="first daily partition (local calendar)"
    )
    display_name: str | None = Field(default=None, description="name shown in the UI")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _CITY_NAME.match(value):
            raise ValueError(
                f"{value!r} must be lower-case letters, digits or '_', starting with a letter "
                "(at most 40 characters): it becomes part of asset keys and paths"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not an IANA timezone (e.g. 'America/Chicago')"
            ) from None
        return value


class SourceSection(_Strict):
    kind: Literal["soda", "arcgis", "csv"]
    path: str | None = Field(default=None, description="csv: a file or folder")
    url: str | None = Field(default=None, description="soda/arcgis: the query endpoint")
    app_token_env: str | None = Field(
        default=None, description="soda: environment variable holding an app token (optional)"
    )
    page_size: int = Field(default=50_000, ge=1)
    max_attempts: int = Field(default=6, ge=1)
    timeout_seconds: float = Field(default=60.0, gt=0)
    backoff_seconds: float = Field(default=1.0, ge=0)
    #: csv: file names starting with one of these are not incident files (code tables).
    exclude_files: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _where(self) -> SourceSection:
        if self.kind == "csv" and not self.path:
            raise ValueError("kind 'csv' needs 'path' (a file or folder of .csv/.csv.gz)")
        if self.kind in ("soda", "arcgis") and not self.url:
            raise ValueError(f"kind {self.kind!r} needs 'url' (the query endpoint)")
        return self


class DateSection(_Strict):
    format: str | list[str] = Field(
        default="iso",
        description="strptime format, 'iso', 'epoch_ms' or 'epoch_s'; a list is tried in order",
    )
    timezone: Literal["local", "UTC"] = "local"

    @property
    def formats(self) -> tuple[str, ...]:
        return (self.format,) if isinstance(self.format, str) else tuple(self.format)

    @field_validator("format")
    @classmethod
    def _format(cls, value: str | list[str]) -> str | list[str]:
        values = [value] if isinstance(value, str) else value
        if not values:
            raise ValueError("give at least one format")
        for fmt in values:
            if fmt not in SPECIAL_DATE_FORMATS and "%" not in fmt:
                raise ValueError(
                    f"{fmt!r} is neither a strptime format (with %-directives) nor one of "
                    f"{sorted(SPECIAL_DATE_FORMATS)}"
                )
        return value


def _words(values: list[str]) -> tuple[str, ...]:
    return tuple(sorted({" ".join(v.split()).casefold() for v in values if v.strip()}))


class LabelsSection(_Strict):
    column: str = Field(description="the source column that names the offence")
    burglary: Annotated[list[str], Field(min_length=1)]
    theft: Annotated[list[str], Field(min_length=1)]
    drop: list[str] = Field(default_factory=list)
    #: Optional: canonical field -> values whose rows are left out (Chicago: identity-theft
    #: IUCR codes 0840-0843, which are thefts with no real place).
    exclude: dict[str, list[str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _disjoint(self) -> LabelsSection:
        both = set(_words(self.burglary)) & set(_words(self.theft))
        if both:
            raise ValueError(f"values {sorted(both)} are listed as both burglary and theft")
        for name in self.exclude:
            if name not in MAPPABLE_FIELDS:
                raise ValueError(f"exclude: {name!r} is not a canonical field")
        return self

    @property
    def burglary_words(self) -> tuple[str, ...]:
        return _words(self.burglary)

    @property
    def theft_words(self) -> tuple[str, ...]:
        return _words(self.theft)

    @property
    def drop_words(self) -> tuple[str, ...]:
        return _words(self.drop)


class BoundsSection(_Strict):
    min_latitude: float = Field(ge=-90, le=90)
    max_latitude: float = Field(ge=-90, le=90)
    min_longitude: float = Field(ge=-180, le=180)
    max_longitude: float = Field(ge=-180, le=180)

    @model_validator(mode="after")
    def _ordered(self) -> BoundsSection:
        if self.min_latitude >= self.max_latitude:
            raise ValueError("min_latitude must be below max_latitude")
        if self.min_longitude >= self.max_longitude:
            raise ValueError("min_longitude must be below max_longitude")
        return self

    def as_dict(self) -> dict[str, tuple[float, float]]:
        return {
            "latitude": (self.min_latitude, self.max_latitude),
            "longitude": (self.min_longitude, self.max_longitude),
        }


class CodesSection(_Strict):
    #: canonical code field -> zero-padding width (Chicago pads beats to 4, districts to 3).
    widths: dict[str, int] = Field(default_factory=dict)

    @field_validator("widths")
    @classmethod
    def _fields(cls, value: dict[str, int]) -> dict[str, int]:
        for name, width in value.items():
            if name not in MAPPABLE_FIELDS:
                raise ValueError(f"{name!r} is not a canonical field")
            if not 1 <= width <= 12:
                raise ValueError(f"width of {name!r} must be 1..12, got {width}")
        return value


class ServingSection(_Strict):
    #: Stable port of this city's local endpoint (absent: a free port chosen once and kept).
    port: int | None = Field(default=None, ge=1, le=65535)


class ModelSection(_Strict):
    #: A model-selection record made on this city's own history (``benchmarks/select_model.py
    #: --city <spec> --out <file>``), absolute or relative to the spec file: its winner's
    #: settings are this city's model defaults (the ``hyperparameters`` config still overrides
    #: them). Absent: the packaged Chicago selection, the only one shipped.
    selection: str | None = Field(default=None, min_length=1)


class CitySpec(_Strict):
    """A validated city spec. ``spec_path`` is where it was read from (None: built in code)."""

    spec_version: Literal[1]
    city: CitySection
    source: SourceSection
    columns: dict[str, str]
    date: DateSection = Field(default_factory=DateSection)
    labels: LabelsSection
    bounds: BoundsSection | None = None
    codes: CodesSection = Field(default_factory=CodesSection)
    serving: ServingSection = Field(default_factory=ServingSection)
    model: ModelSection = Field(default_factory=ModelSection)
    spec_path: str | None = Field(default=None, exclude=True)

    @field_validator("columns")
    @classmethod
    def _columns(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(MAPPABLE_FIELDS))
        if unknown:
            raise ValueError(
                f"unknown canonical field(s) {unknown}; the fields are {list(MAPPABLE_FIELDS)}"
            )
        if "date" not in value:
            raise ValueError("'date' must be mapped: partitions are days of occurrence")
        blank = sorted(k for k, v in value.items() if not v.strip())
        if blank:
            raise ValueError(f"empty source column name for {blank}")
        return value

    @property
    def name(self) -> str:
        return self.city.name

    @property
    def timezone(self) -> str:
        return self.city.timezone

    @property
    def title(self) -> str:
        return self.city.display_name or self.city.name.replace("_", " ").title()

    def resolve_path(self, value: str) -> Path:
        """A path from the spec: absolute, or relative to the spec file's folder."""
        path = Path(value).expanduser()
        if path.is_absolute() or self.spec_path is None:
            return path
        return (Path(self.spec_path).parent / path).resolve()

    def selection_path(self) -> Path | None:
        """The city's own model-selection record (``[model] selection``), if it names one."""
        return self.resolve_path(self.model.selection) if self.model.selection else None

    def with_source(self, **changes) -> CitySpec:
        """A copy with ``[source]`` keys replaced (validated), e.g. ``kind='csv', path=...``."""
        merged = {**self.source.model_dump(), **changes}
        try:
            source = SourceSection(**merged)
        except ValidationError as exc:
            raise SpecError(_describe(self.spec_path or self.name, exc)) from None
        return self.model_copy(update={"source": source})


def _describe(where: str, exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        key = ".".join(str(p) for p in error["loc"]) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (a typo?)"
        elif error["type"] == "missing":
            message = "required key is missing"
        problems.append(f"  {key}: {message}")
    return (
        f"city spec {where}: "
        + ("\n" if len(problems) > 1 else "")
        + "\n".join(problems).strip(" " if len(problems) == 1 else "")
    )


def parse_spec(text: str, where: str = "<string>", spec_path: str | None = None) -> CitySpec:
    """Parse and validate a spec's TOML text; :class:`SpecError` names ``where`` and the key."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"city spec {where}: not valid TOML: {exc}") from None
    if "spec_version" not in doc:
        raise SpecError(f"city spec {where}: spec_version: required key is missing (use 1)")
    if doc.get("spec_version") != SPEC_VERSION:
        raise SpecError(
            f"city spec {where}: spec_version: {doc.get('spec_version')!r} is not supported "
            f"(this superdan reads spec_version = {SPEC_VERSION})"
        )
    try:
        return CitySpec(**doc, spec_path=spec_path)
    except ValidationError as exc:
        raise SpecError(_describe(where, exc)) from None


def load_spec_file(path: str | Path) -> CitySpec:
    """Read and validate the spec at ``path``."""
    path = Path(path).expanduser().resolve()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"city spec {path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"city spec {path}: cannot read: {exc}") from None
    return parse_spec(text, where=str(path), spec_path=str(path))
