"""Fixtures for the source tests: real-data locations, fast retry clients and the fakes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from superdan_assets.sources.http import JsonHttpClient, RetryPolicy
from superdan_assets_tests.conftest import SHARED_DATA
from superdan_assets_tests.fakes.arcgis_server import FakeArcGISServer
from superdan_assets_tests.fakes.soda_server import FakeSodaServer

#: Retries without real waiting; a timeout short enough for the "hang" fault, long enough
#: that a loaded 2-core machine never times out a normal local request.
FAST_POLICY = RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=0.005, timeout=1.0)


def shared_file(*parts: str) -> Path:
    """A file under ../shared/data, or a skip that says where it was looked for."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(
            f"real data file {path} not found (../shared/data beside the checkout); "
            "real-data tests need it"
        )
    return path


class RecordingSleep:
    """Stands in for ``time.sleep``: records the waits and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def fast_client(sleeps: RecordingSleep) -> Iterator[JsonHttpClient]:
    """An HTTP client with ``FAST_POLICY`` whose backoff waits are recorded, not slept."""
    with JsonHttpClient(FAST_POLICY, sleep=sleeps) as client:
        yield client


@pytest.fixture
def soda_server() -> Iterator[FakeSodaServer]:
    """A running fake SODA server with no records (tests call ``set_records``)."""
    with FakeSodaServer() as server:
        yield server


@pytest.fixture
def arcgis_server() -> Iterator[FakeArcGISServer]:
    """A running fake ArcGIS layer with no features (tests call ``set_features``)."""
    with FakeArcGISServer() as server:
        yield server
