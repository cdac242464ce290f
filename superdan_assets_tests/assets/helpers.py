"""Chicago's assets pointed at files a test wrote, and the resources they run with."""

from __future__ import annotations

from pathlib import Path

from superdan_assets.assets import City
from superdan_assets.cities import resolve_spec
from superdan_assets.resources.io_managers import PartitionedParquetIOManager
from superdan_assets.resources.storage import StorageResource


def chicago_on_csv(path: Path | str) -> City:
    """Chicago with its ``[source]`` switched to the CSV file or folder at ``path``."""
    return City(resolve_spec("chicago").with_source(kind="csv", path=str(path)))


def local_resources(tmp_path: Path, data_dir: Path | None = None, **io) -> dict:
    """The IO manager and storage over one data folder (``**io``: S3 settings)."""
    data = str(data_dir or tmp_path / "data")
    return {
        "partition_io_manager": PartitionedParquetIOManager(base_dir=data, **io),
        "storage": StorageResource(
            base_dir=data,
            cache_dir=str(tmp_path / "cache"),
            docs_dir=str(tmp_path / "docs"),
            **io,
        ),
    }
