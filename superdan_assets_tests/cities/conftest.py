"""Fixtures for the city-spec tests: a clean city environment and a spec writer."""

from __future__ import annotations

from pathlib import Path

import pytest

CITY_ENV = ("SUPERDAN_CITY", "SUPERDAN_CITIES", "SUPERDAN_EXPORT_PATH")

#: A small valid csv spec (the issue's example, trimmed); tests edit it with str.replace.
SPRINGFIELD = """\
spec_version = 1

[city]
name = "springfield"
timezone = "America/Chicago"

[source]
kind = "csv"
path = "exports"

[columns]
date = "occurred"
block = "address"
location_description = "premise"
primary_type = "offense"
latitude = "lat"
longitude = "lon"

[date]
format = "%Y-%m-%d %H:%M:%S"
timezone = "UTC"

[labels]
column = "offense"
burglary = ["burglary"]
theft = ["theft"]
"""


@pytest.fixture(autouse=True)
def clean_city_env(monkeypatch):
    """Each test starts with no city chosen by the developer's shell."""
    for name in CITY_ENV:
        monkeypatch.delenv(name, raising=False)


def write_spec(folder: Path, text: str = SPRINGFIELD, name: str = "springfield.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path
