"""City specs for tests: a packaged spec with its ``[source]`` pointed elsewhere (a fake server
on 127.0.0.1 or a folder of files), written as a real TOML file as a user would."""

from __future__ import annotations

import re
from pathlib import Path

from superdan_assets.cities.catalog import PACKAGED_DIR


def spec_with_source(base: str, dest: Path, **source: object) -> Path:
    """Write ``base``'s packaged spec to ``dest`` with ``[source]`` replaced by ``source``."""
    text = (PACKAGED_DIR / f"{base}.toml").read_text()
    lines = ["[source]"] + [
        f"{key} = {value!r}".replace("'", '"') if isinstance(value, str) else f"{key} = {value}"
        for key, value in source.items()
    ]
    text, count = re.subn(
        r"^\[source\]\n.*?(?=\n\[)", "\n".join(lines) + "\n", text, flags=re.S | re.M
    )
    assert count == 1, f"no [source] section found in {base}.toml"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text)
    return dest
