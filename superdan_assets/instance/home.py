"""The embedded instance's ``dagster.yaml``: Dagster's SQLite layout, with batched event writes.

``scripts/main.sh`` (through ``superdan pipeline``), ``scripts/ui.sh`` and the benchmarks use
a ``DAGSTER_HOME`` on the local disk. An empty or missing ``dagster.yaml`` there is given the
storage below; it keeps Dagster's own file layout under ``DAGSTER_HOME`` (``history/``,
``schedules/``), so an instance created before this file existed reads on unchanged. A
``dagster.yaml`` with content (the cluster's Postgres one, a user's own) is never touched.

    python -m superdan_assets.instance.home "$DAGSTER_HOME"
"""

from __future__ import annotations

import sys
from pathlib import Path

EMBEDDED_DAGSTER_YAML = """\
# Written by superdan (superdan_assets/instance/home.py): Dagster's SQLite storage in
# DAGSTER_HOME, with a long backfill's events written in batches. Replace it freely.
storage:
  custom:
    module: superdan_assets.instance.storage
    class: BatchingSqliteStorage
    config:
      base_dir:
        env: DAGSTER_HOME
"""


def ensure_embedded_home(dagster_home: str | Path) -> Path:
    """Create ``dagster_home`` and give it the embedded ``dagster.yaml`` unless it has one
    with content; returns the file's path."""
    home = Path(dagster_home).expanduser()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() or not config.read_text().strip():
        config.write_text(EMBEDDED_DAGSTER_YAML)
    return config


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m superdan_assets.instance.home DAGSTER_HOME")
    print(ensure_embedded_home(sys.argv[1]))
